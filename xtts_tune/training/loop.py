"""One trial: a short, real fine-tune of the XTTS GPT with some layers frozen, evaluated on the validation split.

The loop is explicit (in the spirit of Hugging Face ``accelerate``): AdamW over the trainable parameters,
gradient accumulation and clipping, evaluation every ``eval_every`` optimizer steps and at each epoch end,
early stopping, the best weights kept and written atomically, and the whole curve recorded. Losses come from
coqui's own ``GPTTrainer.train_step`` / ``eval_step`` (``loss_mel_ce`` + weighted ``loss_text_ce``).

We do not run coqui's ``Trainer.fit()``: it turns every exception (a prune too) into ``sys.exit(1)``, samples
clips with replacement, and recomputes DVAE codes every step; this loop reuses cached features
(:mod:`xtts_tune.data.features`), draws each training clip once per epoch, and lets a callback stop it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch

from xtts_tune.config import StudyConfig
from xtts_tune.data.augmentation import choose_variant
from xtts_tune.data.features import collate, fixed_slice_rng, to_device
from xtts_tune.io import atomic_write_json
from xtts_tune.model.base import LoadedBase, load_study_base, peak_memory_bytes, reset_peak_memory
from xtts_tune.model.checkpoint import save_trial_checkpoint
from xtts_tune.model.freezing import ParamCounts, apply_freezing
from xtts_tune.training.early_stopping import EarlyStopping
from xtts_tune.training.losses import TrialLosses
from xtts_tune.training.prepare import PreparedData, prepare_data
from xtts_tune.training.result import TrialResult, optimizer_for
from xtts_tune.training.resume import python_rng_state, restore_rng, rng_states, set_python_rng_state

logger = logging.getLogger(__name__)


EvalCallback = Callable[[dict], bool | None]


class TrialRun:
    def __init__(self, cfg, base, data, run_dir, callback, progress, *, use_prefix: bool = True, resume=None):
        self.cfg, self.train = cfg, cfg.train
        self.base, self.data = base, data
        self.run_dir = run_dir
        self.callback, self.progress = callback, progress
        self.resume = resume  # a training.resume.ResumeState, or None
        self.device = next(base.gpt.parameters()).device
        self.trainer = base.trainer
        self.args = base.trainer.args
        self.silence = data.features.silence_frame()
        self.curve: list[dict] = []
        self.timings: dict[str, float] = {
            "batch_preparation": 0.0,
            "forward_backward": 0.0,
            "optimizer": 0.0,
            "evaluation": 0.0,
        }
        self.skipped = 0
        self.losses = TrialLosses(cfg, base, data, use_prefix=use_prefix)
        amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.train.precision)
        self.amp_dtype = amp if (amp is not None and self.device.type == "cuda") else None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def draw(self, ids: list[str], rng: random.Random | None) -> list[int | None]:
        """Each clip's noise variant for this draw (None: the clean clip; always clean without ``rng``)."""
        t = self.train
        return [choose_variant(rng, t.augment_prob, t.augment_variants) if rng else None for _ in ids]

    def batch(self, ids: list[str], variants: list[int | None], rng: random.Random | None) -> dict:
        """A batch of these clips (variants) in coqui's format; conditioning slices per ``conditioning_slice``."""
        t = self.train
        feats = [
            self.data.features.get(cid, v, seed=t.seed, level_range=tuple(t.noise_level_range))
            for cid, v in zip(ids, variants)
        ]
        if rng is not None and t.conditioning_slice == "fixed":
            rng = [fixed_slice_rng(t.seed, cid, v) for cid, v in zip(ids, variants)]
        return collate(feats, args=self.args, silence=self.silence, rng=rng, is_eval=rng is None)

    def freeze(self) -> ParamCounts:
        """Apply the config's freezing; that decides what the losses can take from the caches."""
        params = apply_freezing(self.base.gpt, self.train.freeze_depth, self.cfg.model)
        self.losses.ready(self.amp_dtype)
        return params

    @torch.no_grad()
    def evaluate(self, clips: list[str] | None = None) -> dict[str, float]:
        """Mean losses over ``clips`` (default: the validation split), as coqui's eval_step computes them."""
        t0 = time.perf_counter()
        gpt = self.base.gpt
        was_training = gpt.training
        gpt.eval()
        totals = {"loss": 0.0, "loss_mel_ce": 0.0, "loss_text_ce": 0.0}
        n = 0
        val = self.data.split.val if clips is None else clips
        for i in range(0, len(val), self.train.batch_size):
            ids = val[i : i + self.train.batch_size]
            batch = self.batch(ids, [None] * len(ids), None)
            with self.autocast():
                losses = self.losses.eval(ids, to_device(batch, self.device))
            for k in totals:
                totals[k] += float(losses[k]) * len(ids)
            n += len(ids)
        gpt.train(was_training)
        self.timings["evaluation"] += time.perf_counter() - t0
        return {k: v / n for k, v in totals.items()}

    def run(self) -> TrialResult:
        train, gpt = self.train, self.base.gpt
        reset_peak_memory(self.device)  # this trial's own peak, not an earlier trial's in this process
        started = time.perf_counter()
        torch.manual_seed(train.seed)
        rng = random.Random(train.seed)
        params = self.freeze()
        trainable = [p for p in gpt.parameters() if p.requires_grad]
        opt = optimizer_for(gpt, train)
        train_ids = list(self.data.split.train)
        micro = math.ceil(len(train_ids) / train.batch_size)
        steps_per_epoch = max(1, math.ceil(micro / train.grad_accum_steps))
        planned = steps_per_epoch * train.max_epochs
        if train.max_steps:
            planned = min(planned, train.max_steps)
        logger.info("%s; %d optimizer steps planned (%d per epoch)", params, planned, steps_per_epoch)
        if self.progress:
            self.progress({"event": "start", "params": params, "planned_steps": planned})

        stopper = EarlyStopping(train.patience, train.min_delta)
        best_state: dict[str, torch.Tensor] | None = None
        trainable_names = [n for n, p in gpt.named_parameters() if p.requires_grad]
        step, epoch, stop_reason = 0, 0, "completed"
        train_losses: list[float] = []
        last_grad_norm = float("nan")

        def record(epoch_pos: float) -> bool:
            nonlocal best_state
            val = self.evaluate()
            rec = {
                "step": step,
                "epoch": round(epoch_pos, 4),
                "train_loss": (sum(train_losses) / len(train_losses)) if train_losses else None,
                "val_loss": val["loss"],
                "val_loss_mel_ce": val["loss_mel_ce"],
                "val_loss_text_ce": val["loss_text_ce"],
                "lr": opt.param_groups[0]["lr"],
                "grad_norm": last_grad_norm if step else None,
                "elapsed_s": round(time.perf_counter() - started, 3),
            }
            train_losses.clear()
            self.curve.append(rec)
            improved_before = stopper.best
            stop = stopper.update(rec["val_loss"], len(self.curve) - 1)
            if rec["val_loss"] < improved_before:
                best_state = {
                    n: p.detach().to("cpu", copy=True) for n, p in gpt.named_parameters() if n in trainable_names
                }
            rec["best_val_loss"] = stopper.best
            atomic_write_json(self.run_dir / "curve.json", {"curve": self.curve, "trainable_share": params.share})
            if self.progress:
                self.progress({"event": "eval", **rec})
            asked = bool(self.callback(rec)) if self.callback else False
            # a trial that reached its planned last step ran its whole budget: it is complete, whatever a
            # pruner says there (successive halving fires at its rungs, the last step included)
            return stop, asked and step < planned

        # frozen weights never change, so only what trains is copied to restore the GPT afterwards
        initial = {n: p.detach().clone() for n, p in gpt.named_parameters() if p.requires_grad}
        saved = self.resume.load() if self.resume else None
        batches, first = None, 0
        if saved is not None:  # a killed run of this config: go on from its last saved step
            with torch.no_grad():
                for n, p in gpt.named_parameters():
                    if n in saved["trained"]:
                        p.copy_(saved["trained"][n])
            opt.load_state_dict(saved["optimizer"])
            if self.scaler and saved.get("scaler"):
                self.scaler.load_state_dict(saved["scaler"])
            step, epoch, batches, first = saved["step"], saved["epoch"], saved["batches"], saved["start"]
            best_state, self.curve[:] = saved["best"], saved["curve"]
            stopper.__dict__.update(saved["stopper"])
            train_losses[:], last_grad_norm = saved["train_losses"], saved["grad_norm"]
            set_python_rng_state(rng, saved["python_rng"])
            restore_rng(saved["rng"])
            started -= saved["elapsed"]
            logger.info("resuming from step %d (%s)", step, self.resume.path)
            if self.progress:
                self.progress(
                    {"event": "message", "text": f"resuming from step {step} of {planned} ({self.resume.path})"}
                )
        gpt.train()
        try:
            if train.eval_at_start and saved is None:
                stop, asked = record(0.0)
                if asked:
                    stop_reason = "stopped_by_callback"
            while stop_reason == "completed" and epoch < train.max_epochs and step < planned:
                if batches is None:
                    order = train_ids[:]
                    rng.shuffle(order)
                    batches = [order[i : i + train.batch_size] for i in range(0, len(order), train.batch_size)]
                    first = 0
                for start in range(first, len(batches), train.grad_accum_steps):
                    group = batches[start : start + train.grad_accum_steps]
                    t0 = time.perf_counter()
                    used = 0
                    for ids in group:
                        t1 = time.perf_counter()
                        variants = self.draw(ids, rng)
                        batch = self.batch(ids, variants, rng)
                        prep = time.perf_counter() - t1
                        self.timings["batch_preparation"] += prep
                        t0 += prep  # forward_backward counts the model only
                        with self.autocast():
                            losses = self.losses.train(ids, variants, to_device(batch, self.device))
                        loss = losses["loss"]
                        if not torch.isfinite(loss):
                            # coqui's masking approach can mask every mel target of a batch of short clips:
                            # loss_mel_ce is then NaN. Skip that micro-batch instead of poisoning the weights.
                            self.skipped += 1
                            continue
                        scaled = loss / len(group)
                        (self.scaler.scale(scaled) if self.scaler else scaled).backward()
                        train_losses.append(loss.item())
                        used += 1
                    self.timings["forward_backward"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    if used:
                        if self.scaler:
                            self.scaler.unscale_(opt)
                        clip = train.grad_clip_norm if train.grad_clip_norm > 0 else float("inf")
                        last_grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, clip))
                        if train.warmup_steps:
                            for g in opt.param_groups:
                                g["lr"] = train.learning_rate * min(1.0, (step + 1) / train.warmup_steps)
                        if self.scaler:
                            self.scaler.step(opt)
                            self.scaler.update()
                        else:
                            opt.step()
                    opt.zero_grad(set_to_none=True)
                    self.timings["optimizer"] += time.perf_counter() - t0
                    step += 1
                    epoch_pos = epoch + min(1.0, (start + len(group)) / len(batches))
                    last_of_epoch = start + train.grad_accum_steps >= len(batches)
                    if self.progress:
                        self.progress(
                            {
                                "event": "step",
                                "step": step,
                                "epoch": epoch_pos,
                                "planned_steps": planned,
                                "train_loss": train_losses[-1] if train_losses else None,
                            }
                        )
                    if step % train.eval_every == 0 or last_of_epoch or step >= planned:
                        stop, asked = record(epoch_pos)
                        if asked:
                            stop_reason = "stopped_by_callback"
                        elif stop:
                            stop_reason = "early_stopped"
                    if stop_reason != "completed" or step >= planned:
                        break
                    if self.resume and self.resume.due(step):
                        self.resume.save(
                            {
                                "trained": {
                                    n: p.detach().to("cpu", copy=True)
                                    for n, p in gpt.named_parameters()
                                    if n in trainable_names
                                },
                                "optimizer": opt.state_dict(),
                                "scaler": self.scaler.state_dict() if self.scaler else None,
                                "step": step,
                                "epoch": epoch,
                                "batches": batches,
                                "start": start + train.grad_accum_steps,
                                "best": best_state,
                                "curve": self.curve,
                                "stopper": dict(stopper.__dict__),
                                "train_losses": list(train_losses),
                                "grad_norm": last_grad_norm,
                                "python_rng": python_rng_state(rng),
                                "rng": rng_states(),
                                "elapsed": time.perf_counter() - started,
                            }
                        )
                batches = None
                epoch += 1
            if (
                stop_reason == "completed"
                and train.max_steps
                and step >= train.max_steps
                and step < steps_per_epoch * train.max_epochs
            ):
                stop_reason = "max_steps"
            if self.resume:
                self.resume.done()
        finally:
            self.data.features.save()
            if self.data.prefix_cache is not None:
                self.data.prefix_cache.save()
            checkpoint = None
            if best_state is not None and train.save_checkpoint:
                checkpoint = save_trial_checkpoint(
                    self.run_dir / "best_gpt.pth", best_state, base_fingerprint=self.base.fingerprint
                )
            with torch.no_grad():
                for n, p in gpt.named_parameters():
                    if n in initial:
                        p.copy_(initial[n])
        best_i = stopper.best_index if stopper.best_index is not None else 0
        best = self.curve[best_i] if self.curve else {"step": 0, "epoch": 0.0}
        compute = sum(v for k, v in self.timings.items() if k != "batch_preparation")
        result = TrialResult(
            curve=self.curve,
            best_val_loss=stopper.best,
            best_step=int(best["step"]),
            best_epoch=float(best["epoch"]),
            steps=step,
            planned_steps=planned,
            stop_reason=stop_reason,
            checkpoint_path=checkpoint,
            curve_path=self.run_dir / "curve.json",
            params=params,
            wall_seconds=time.perf_counter() - started,
            compute_seconds=compute,
            skipped_batches=self.skipped,
            timings=dict(self.timings),
            peak_memory_bytes=peak_memory_bytes(self.device),
        )
        atomic_write_json(
            self.run_dir / "curve.json",
            {
                "curve": self.curve,
                "trainable_share": params.share,
                "summary": result.summary(),
                "config": self.cfg.to_dict(),
            },
        )
        return result


def run_trial(
    cfg: StudyConfig,
    *,
    base: LoadedBase | None = None,
    data: PreparedData | None = None,
    run_dir: Path | None = None,
    callback: EvalCallback | None = None,
    progress: Callable[[dict], None] | None = None,
    resume=None,
) -> TrialResult:
    """Fine-tune the base model's GPT with ``cfg.train``; return the curve, best loss and checkpoint.

    ``base`` and ``data`` may be passed in to share them between trials (the study does); the GPT is left
    with the weights it had on entry (only the tensors the trial trains are copied to restore it). The
    checkpoint (``best_gpt.pth``) holds the trained tensors of the best evaluation
    (:mod:`xtts_tune.model.checkpoint`).
    ``callback`` gets each evaluation record and returns True to stop the trial (pruning). ``resume`` (a
    :class:`~xtts_tune.training.resume.ResumeState`) saves a resumable state every N steps and continues from one.

    >>> import tempfile
    >>> from xtts_tune.config import load_config
    >>> cfg = load_config("studies/demo.yaml", [f"output_dir={tempfile.mkdtemp()}", "max_steps=2", "eval_every=1"])
    >>> result = run_trial(cfg)
    >>> result.steps, [r["step"] for r in result.curve], result.checkpoint_path.name
    (2, [0, 1, 2], 'best_gpt.pth')
    """
    # importing coqui's XTTS trainer dataset module calls torch.set_num_threads(1); undo that here
    torch.set_num_threads(cfg.train.num_threads or os.cpu_count() or 1)
    base = load_study_base(cfg, base)
    if data is None:
        data = prepare_data(cfg, base)
        if progress and data.audio_summary:
            progress({"event": "message", "text": data.audio_summary})
    run_dir = run_dir or cfg.study_dir / time.strftime("trial-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        return TrialRun(cfg, base, data, run_dir, callback, progress, resume=resume).run()
    finally:
        for p in base.gpt.parameters():
            p.requires_grad_(True)
