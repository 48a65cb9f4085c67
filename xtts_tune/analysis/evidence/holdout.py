"""The one number a user wants: did the search beat the guide's recipe on clips selection never saw?

The validation split drives early stopping, pruning and ranking, so the winner's validation loss is
optimistic. After a search, :mod:`xtts_tune.search.holdout` scores the recommended trial and the guide's
configuration (trial 0) on the test split and stores the figures in the study's record
(:class:`~xtts_tune.record.TestComparison`); this module turns them into the sentence the summary, the report, the dashboard note and the
export show (no torch here).

>>> print(describe_test_comparison({"clips": 15, "winner": 7, "winner_loss": 3.2, "guide": 0, "guide_loss": 3.8,
...                                 "base_loss": 4.0}, recommended=7))
on 15 unseen test clips: trial 7 (recommended) 3.2000 vs the guide's recipe (trial 0) 3.8000, 15.8% lower; base model 4.0000
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xtts_tune.record import TestComparison


def describe_test_comparison(comparison: TestComparison | Mapping[str, Any] | None, recommended: int | None) -> str:
    """One sentence; says so when the comparison is missing or was measured for another recommendation.
    ``comparison``: the study's :class:`~xtts_tune.record.TestComparison` (or its stored dict)."""
    comparison = TestComparison.parse(comparison)
    if comparison is None:
        return "not measured on unseen clips yet (the search scores the winner on the test split when it ends)"
    if not comparison.clips:
        return comparison.note or "no test split (data.test_fraction: 0): nothing selection never saw"
    winner = comparison.winner
    text = f"on {comparison.clips} unseen test clips: trial {winner}"
    text += " (recommended)" if winner == recommended else ""
    text += f" {comparison.winner_loss:.4f}"
    guide, guide_loss = comparison.guide, comparison.guide_loss
    if guide_loss is not None and guide != winner:
        change = (guide_loss - comparison.winner_loss) / guide_loss
        word = "lower" if change >= 0 else "higher"
        text += f" vs the guide's recipe (trial {guide}) {guide_loss:.4f}, {abs(change):.1%} {word}"
    elif guide == winner:
        text += " (the guide's recipe itself won)"
    elif guide is None:  # not enqueued, or only on a cheap rung of search.fidelity
        text += " (no trial on all the train clips ran the guide's recipe)"
    else:
        text += " (the guide's recipe has no checkpoint to score)"
    if comparison.base_loss is not None:
        text += f"; base model {comparison.base_loss:.4f}"
    text += _by_ear(comparison.sound)
    if recommended is not None and winner != recommended:
        text += (
            f" [measured for trial {winner}; the recommendation is now trial {recommended}: "
            "run the search again (--trials 0) to score it]"
        )
    return text


def _by_ear(sound: Mapping[str, Any] | None) -> str:
    """``"; by ear on 6 test texts: similarity 0.83 / guide 0.75 / base 0.61, CER 8% / 10% / 12%"``."""
    if not sound:
        return ""
    roles = [r for r in ("winner", "guide", "base") if isinstance(sound.get(r), Mapping)]
    if not roles:
        return ""

    def row(key: str, pattern: str) -> str:
        values = [sound[r].get(key) for r in roles]
        return " / ".join(
            f"{r} " + ("-" if v is None else format(v, pattern)) for r, v in zip(roles, values, strict=True)
        )

    return (
        f"; by ear on {sound.get('texts')} test texts, each conditioned on one training clip: similarity "
        f"{row('similarity', '.2f')}; CER {row('cer', '.0%')}"
    )
