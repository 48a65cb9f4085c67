"""What a fine-tune forgot, by loss: every kept trial and the base model scored on the forgetting set, clips
that are not the target voice (:mod:`xtts_tune.data.forgetting` finds them), at the end of a search.

Each clip is scored on its own by the trials' evaluator (:func:`xtts_tune.training.evaluation.clip_losses`),
with the base's weights and with each kept trial's checkpoint put on them, as
:mod:`xtts_tune.search.holdout` scores the test split. Stored: on each trial its mean loss, the change
against the base's (``forget_loss_change``: +0.041 is "loss on other voices +4.1 %") and that change's
standard error from the clips' paired differences (``forget_loss_se``); on the study the set and the base's
loss (:class:`xtts_tune.record.ForgettingSet`). The judgment (what counts as beyond the noise, the
near-tie rule) is :mod:`xtts_tune.analysis.ranking.forgetting`'s.

>>> import tempfile
>>> from xtts_tune.config import load_config
>>> from xtts_tune.model.base import load_study_base
>>> cfg = load_config("studies/demo.yaml", [f"output_dir={tempfile.mkdtemp()}"])
>>> fset = prepare_forgetting(cfg, load_study_base(cfg))
>>> fset.source, len(fset.ids)
("the demo base voice's 45 held-out clips", 45)
"""

from __future__ import annotations

import hashlib
import logging
import math
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

import optuna

from xtts_tune.analysis.records import FINISHED
from xtts_tune.config import EMBEDDED_BASE, StudyConfig
from xtts_tune.data.clips import validate_clips
from xtts_tune.data.features import FeatureStore
from xtts_tune.data.forgetting import ensure_base_heldout, load_forgetting_clips
from xtts_tune.data.split import Split
from xtts_tune.io import ProgressFn
from xtts_tune.model.base import LoadedBase
from xtts_tune.record import ForgettingSet, TrialRecord, write_forgetting, write_trial_attrs
from xtts_tune.search.retention import trial_checkpoint
from xtts_tune.training.prepare import PreparedData

logger = logging.getLogger(__name__)

DEMO_SET_DIR = "forgetting-demo-base"
"""Where the demo base voice's held-out clips are generated, under the study's cache folder."""


@dataclass
class ForgettingData:
    """A forgetting set ready to score: its clips with their features, and what it is."""

    source: str
    ids: list[str]
    data: PreparedData
    languages: list[str]
    fingerprint: str


def prepare_forgetting(cfg: StudyConfig, base: LoadedBase) -> ForgettingData | None:
    """The study's forgetting set, read and checked (before any trial, so a wrong ``data.forgetting_path``
    stops the search at once with one line): ``data.forgetting_path``; else, on the embedded base, the demo
    base voice's held-out clips (generated with espeak-ng into the study's cache); else None."""
    if cfg.data.forgetting_path:
        path = cfg.resolve(cfg.data.forgetting_path)
        clips = load_forgetting_clips(path, cfg.data.language)
        source = f"{len(clips)} clips of {path}"
    elif cfg.base_model == EMBEDDED_BASE and shutil.which("espeak-ng"):
        folder = ensure_base_heldout(cfg.cache_dir / DEMO_SET_DIR)
        clips = load_forgetting_clips(folder, "en")
        source = f"the demo base voice's {len(clips)} held-out clips"
    else:
        return None
    args = base.trainer.args
    validate_clips(
        clips,
        base.tokenizer,
        sample_rate=base.config.audio.sample_rate,
        max_wav_length=args.max_wav_length,
        max_text_tokens=args.max_text_length,
        min_seconds=cfg.data.min_seconds,
        silence_rms=cfg.data.silence_rms,
        dataset=Path(clips[0].metadata).parent,
    )
    by_id = {c.id: c for c in clips}
    digest = hashlib.sha1()
    for c in clips:
        digest.update(f"{c.id}|{c.text}|{c.language}|{Path(c.audio_file).stat().st_size}\n".encode())
    fingerprint = digest.hexdigest()[:16]
    store = FeatureStore(base.trainer, by_id, base_fingerprint=base.fingerprint, cache_dir=cfg.cache_dir)
    ids = sorted(by_id)
    data = PreparedData(by_id, Split(train=[], val=ids, seed=0), fingerprint, store, cfg.split_path)
    return ForgettingData(source, ids, data, sorted({c.language for c in clips}), fingerprint)


def score_forgetting(
    study: optuna.Study, cfg: StudyConfig, base: LoadedBase, fset: ForgettingData, progress: ProgressFn | None = None
) -> ForgettingSet:
    """Score the base and every finished trial whose checkpoint is kept on ``fset``; store and return the set.
    A trial already scored on the same set (same fingerprint) is not scored again."""
    from xtts_tune.model.checkpoint import load_trained_tensors
    from xtts_tune.training.evaluation import clip_losses

    stored = ForgettingSet.from_study(study)
    same = stored is not None and stored.fingerprint == fset.fingerprint
    trials = study.get_trials(deepcopy=False)
    kept = [t for t in trials if t.state.name in FINISHED and trial_checkpoint(t) is not None]
    todo = [t for t in kept if not (same and TrialRecord.from_trial(t).forget_loss_change is not None)]
    if progress and todo:
        progress(
            {"event": "message", "text": f"forgetting: scoring {len(todo)} kept trial(s) and the base on {fset.source}"}
        )
    base_losses = clip_losses(cfg, base=base, data=fset.data, clips=fset.ids)
    base_mean = statistics.fmean(base_losses.values())
    for t in todo:
        tensors = load_trained_tensors(trial_checkpoint(t), base_fingerprint=base.fingerprint)
        losses = clip_losses(cfg, base=base, data=fset.data, clips=fset.ids, state=tensors)
        write_trial_attrs(study._storage, t._trial_id, forgetting_figures(losses, base_losses))
    fset.data.features.save()
    scored = sorted({t.number for t in kept} | (set(stored.scored) if same else set()))
    result = ForgettingSet(
        source=fset.source,
        clips=len(fset.ids),
        base_loss=base_mean,
        languages=fset.languages,
        fingerprint=fset.fingerprint,
        scored=scored,
    )
    write_forgetting(study, result)
    return result


def forgetting_figures(losses: dict[str, float], base_losses: dict[str, float]) -> dict[str, float]:
    """A trial's stored figures from its per-clip losses and the base's on the same clips: the mean, the
    change relative to the base's mean, and its standard error from the paired per-clip differences.

    >>> f = forgetting_figures({"a": 3.3, "b": 3.1, "c": 3.5}, {"a": 3.0, "b": 3.0, "c": 3.0})
    >>> round(f["forget_loss"], 3), round(f["forget_loss_change"], 3), round(f["forget_loss_se"], 3)
    (3.3, 0.1, 0.038)
    """
    ids = sorted(base_losses)
    base_mean = statistics.fmean(base_losses[c] for c in ids)
    diffs = [losses[c] - base_losses[c] for c in ids]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    mean = statistics.fmean(losses[c] for c in ids)
    return {
        "forget_loss": mean,
        "forget_loss_change": (mean - base_mean) / abs(base_mean),
        "forget_loss_se": se / abs(base_mean),
    }
