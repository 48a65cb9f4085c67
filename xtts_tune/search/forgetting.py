"""What a fine-tune forgot, by loss: the base model (when the search opens) and every trial that is kept when
it ends (its best checkpoint) scored on the forgetting set, clips that are not the target voice
(:mod:`xtts_tune.data.forgetting` finds them). Scoring a trial as it ends, while it is running, is what lets
its figures be stored on it (Optuna refuses attributes on a finished trial), as its listening samples are.

Each clip is scored on its own by the trials' evaluator (:func:`xtts_tune.training.evaluation.clip_losses`),
with the base's weights and with the trial's checkpoint put on them, as :mod:`xtts_tune.search.holdout`
scores the test split. Stored: on each trial its mean loss, the change
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

import dataclasses
import hashlib
import logging
import math
import shutil
import statistics
from dataclasses import dataclass
from pathlib import Path

import optuna

from xtts_tune.config import EMBEDDED_BASE, StudyConfig
from xtts_tune.data.features import FeatureStore
from xtts_tune.data.forgetting import ensure_base_heldout, load_forgetting_clips
from xtts_tune.data.split import Split
from xtts_tune.io import ProgressFn
from xtts_tune.model.base import LoadedBase
from xtts_tune.record import ForgettingSet, TrialRecord, write_forgetting, write_trial
from xtts_tune.training.prepare import PreparedData, validate_for_base

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
    validate_for_base(clips, base, cfg.data, Path(clips[0].metadata).parent)
    by_id = {c.id: c for c in clips}
    digest = hashlib.sha1()
    for c in clips:
        digest.update(f"{c.id}|{c.text}|{c.language}|{Path(c.audio_file).stat().st_size}\n".encode())
    fingerprint = digest.hexdigest()[:16]
    store = FeatureStore(base.trainer, by_id, base_fingerprint=base.fingerprint, cache_dir=cfg.cache_dir)
    ids = sorted(by_id)
    data = PreparedData(by_id, Split(train=[], val=ids, seed=0), fingerprint, store, cfg.split_path)
    return ForgettingData(source, ids, data, sorted({c.language for c in clips}), fingerprint)


class ForgettingScorer:
    """Scores trials on a forgetting set against the base, whose per-clip losses it measures once (when the
    search opens: :func:`open_forgetting`) and stores on the study (:class:`xtts_tune.record.ForgettingSet`)."""

    def __init__(self, study: optuna.Study, cfg: StudyConfig, base: LoadedBase, fset: ForgettingData):
        from xtts_tune.training.evaluation import clip_losses

        self.cfg, self.base, self.fset = cfg, base, fset
        self.base_losses = clip_losses(cfg, base=base, data=fset.data, clips=fset.ids)
        fset.data.features.save()
        self.record = ForgettingSet(
            source=fset.source,
            clips=len(fset.ids),
            base_loss=statistics.fmean(self.base_losses.values()),
            languages=fset.languages,
            fingerprint=fset.fingerprint,
        )
        write_forgetting(study, self.record)

    def figures(self, checkpoint: str | Path) -> dict[str, float]:
        """A checkpoint's figures against the base (:func:`forgetting_figures`): a trial's, or a confirmation run's."""
        from xtts_tune.model.checkpoint import load_trained_tensors
        from xtts_tune.training.evaluation import clip_losses

        tensors = load_trained_tensors(Path(checkpoint), base_fingerprint=self.base.fingerprint)
        losses = clip_losses(self.cfg, base=self.base, data=self.fset.data, clips=self.fset.ids, state=tensors)
        return forgetting_figures(losses, self.base_losses)

    def score(self, trial: optuna.Trial, record: TrialRecord, checkpoint: str | Path) -> TrialRecord:
        """Score a running trial's best checkpoint; write its figures on it and return its record with them."""
        figures = self.figures(checkpoint)
        write_trial(trial, **figures)
        return dataclasses.replace(record, **figures)


def open_forgetting(
    study: optuna.Study, cfg: StudyConfig, base: LoadedBase, progress: ProgressFn | None = None
) -> ForgettingScorer | None:
    """The study's forgetting scorer, its base figure measured and stored (None without a forgetting set):
    every trial kept when it ends is then scored with it (:mod:`xtts_tune.search.runner`)."""
    fset = prepare_forgetting(cfg, base)
    if fset is None:
        return None
    scorer = ForgettingScorer(study, cfg, base, fset)
    if progress is not None:
        text = f"forgetting: every kept trial is scored on {fset.source} (base model {scorer.record.base_loss:.4f})"
        progress({"event": "message", "text": text})
    return scorer


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
