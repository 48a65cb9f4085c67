"""Babble and hallucination flags: a fine-tuned XTTS that does not stop when the text ends keeps talking
after the last word, runs long for its text, or runs to the length cap. The thresholds live in
:mod:`xtts_tune.probes.thresholds`; this module only measures and compares.

Flags (a sample may carry several):

* ``speech_after_text``: voiced audio after the text's last word (as the ASR's aligned word timestamps place
  it) over ``TAIL_SPEECH_MAX_S``. Needs a transcript (English); elsewhere only the duration flags apply.
* ``too_long`` / ``too_short``: the speech span outside the bounds the target's own speaking rate allows.
* ``hit_length_cap``: the sample is as long as its generation cap (the GPT never emitted its stop token).
* ``no_speech``: no voiced frame at all.

What they measure: whether a sample's timing fits its text. What they do not: whether extra speech is
words or noise, and a sample that swaps words in place keeps its length (CER catches that).

>>> from xtts_tune.probes.asr import Word
>>> import numpy as np
>>> voiced = np.r_[np.ones(40, bool), np.zeros(10, bool), np.ones(50, bool)]  # 1.2 s speech, 1.5 s more
>>> tail_after_text("Hello there.", [Word("Hello", 0.0, 0.5), Word("there.", 0.6, 1.2), Word("and", 1.6, 1.9)],
...                 voiced)
(1.5, 1, 1.2)
>>> decide_flags(speech_seconds=2.7, chars=10, seconds=3.0, tail_speech_s=1.5, max_seconds=2.5,
...              rate_low=0.06, rate_high=0.09)
('speech_after_text', 'too_long', 'hit_length_cap')
>>> decide_flags(speech_seconds=0.7, chars=10, seconds=0.9, tail_speech_s=0.0, max_seconds=2.5,
...              rate_low=0.06, rate_high=0.09)
()
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from xtts_tune.probes.audio import voiced_seconds_after
from xtts_tune.probes.text import last_word_index, normalize
from xtts_tune.probes.thresholds import TAIL_MARGIN_S, TAIL_SPEECH_MAX_S, duration_bounds, hit_cap

SPEECH_AFTER_TEXT = "speech_after_text"
TOO_LONG = "too_long"
TOO_SHORT = "too_short"
HIT_LENGTH_CAP = "hit_length_cap"
NO_SPEECH = "no_speech"
FLAGS = (SPEECH_AFTER_TEXT, TOO_LONG, TOO_SHORT, HIT_LENGTH_CAP, NO_SPEECH)
"""Every flag name, in the order :func:`decide_flags` lists them."""


def _hyp_words(words: Sequence) -> list[tuple[str, object]]:
    """Normalised single words of a transcript with the timestamped word each came from ("20th" -> 2 words)."""
    out = []
    for w in words:
        for piece in normalize(w.text).split():
            out.append((piece, w))
    return out


def tail_after_text(text: str, words: Sequence, voiced: np.ndarray) -> tuple[float, int, float | None]:
    """(voiced seconds after the text's last word, transcript words after it, that word's end in seconds).

    The last word is found by aligning the transcript's words with the text's; when the transcript lost it,
    the last transcribed word ends the text, and when nothing was transcribed, all voiced audio is the tail.
    """
    hyp = _hyp_words(words)
    if not hyp:
        return voiced_seconds_after(voiced, 0.0), 0, None
    idx = last_word_index(text, [h for h, _ in hyp])
    if idx is None:
        idx = len(hyp) - 1
    last = hyp[idx][1]
    extra = len({id(w) for _, w in hyp[idx + 1 :]} - {id(last)})
    end = float(last.end)
    return voiced_seconds_after(voiced, end + TAIL_MARGIN_S), extra, round(end, 3)


def decide_flags(
    *,
    speech_seconds: float | None,
    chars: int,
    seconds: float,
    tail_speech_s: float | None,
    max_seconds: float | None,
    rate_low: float,
    rate_high: float,
) -> tuple[str, ...]:
    """The babble flags of one sample (names from :data:`FLAGS`, in that order)."""
    flags = []
    if tail_speech_s is not None and tail_speech_s > TAIL_SPEECH_MAX_S:
        flags.append(SPEECH_AFTER_TEXT)
    if speech_seconds is not None:
        low, high = duration_bounds(chars, rate_low, rate_high)
        if speech_seconds > high:
            flags.append(TOO_LONG)
        elif speech_seconds < low:
            flags.append(TOO_SHORT)
    if hit_cap(seconds, max_seconds):
        flags.append(HIT_LENGTH_CAP)
    if speech_seconds is None:
        flags.append(NO_SPEECH)
    return tuple(flags)
