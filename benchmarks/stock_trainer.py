"""The same fine-tune through coqui's stock ``Trainer`` (coqui-tts-trainer), as coqui's XTTS v2 recipe runs it.

Only the benchmark uses this module: it is the baseline our trial loop (:mod:`xtts_tune.training.loop`) must beat.
It builds what ``recipes/ljspeech/xtts_v2/train_gpt_xtts.py`` builds — a ``GPTTrainerConfig`` with AdamW
(betas 0.9/0.96, eps 1e-8, weight decay on weights only), ``Trainer(TrainerArgs(grad_accum_steps=…), config,
model=GPTTrainer, train_samples=…, eval_samples=…)`` and ``fit()`` — on the same base weights, the same
train/validation split, the same freezing, learning rate, batch size, accumulation, clipping, seed and epochs.

What differs is what the stock path does by design: XTTSDataset reads every clip from disk and draws
training clips at random with replacement, ``format_batch_on_device`` recomputes conditioning mels and DVAE
codes every step, and the Trainer evaluates once per epoch and writes its own checkpoints and TensorBoard logs.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from xtts_tune.config import StudyConfig
from xtts_tune.model.base import LoadedBase
from xtts_tune.model.freezing import apply_freezing
from xtts_tune.training.prepare import PreparedData

logger = logging.getLogger(__name__)


@dataclass
class StockResult:
    """What the stock Trainer did: optimizer steps, wall time of ``fit()``, and every loss it computed."""

    steps: int
    micro_batches: int
    wall_seconds: float
    train_losses: list[float] = field(default_factory=list)  # one per training micro-batch, in order
    eval_losses: list[float] = field(default_factory=list)  # mean validation loss at the end of each epoch
    # the GPT's weights at the end of each epoch (with keep_epoch_states), to measure them as trials do:
    # coqui's own validation loss depends on the batch's padding (it computes DVAE codes of a padded batch)
    epoch_states: list[dict[str, torch.Tensor]] = field(default_factory=list, repr=False)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.wall_seconds if self.wall_seconds else float("nan")


def _samples(data: PreparedData, ids: list[str]) -> list[dict]:
    """Our validated clips in the dict format of coqui's formatters (what ``load_tts_samples`` returns)."""
    out = []
    for cid in ids:
        c = data.clips[cid]
        out.append(
            {
                "text": c.text,
                "audio_file": c.audio_file,
                "speaker_name": "target",
                "language": c.language,
                "root_path": str(Path(c.audio_file).parent),
                "audio_unique_name": cid,
            }
        )
    return out


def run_stock_trainer(
    cfg: StudyConfig,
    *,
    base: LoadedBase,
    data: PreparedData,
    output_dir: Path,
    num_loader_workers: int = 0,
    keep_epoch_states: bool = False,
) -> StockResult:
    """Fine-tune ``base``'s GPT with ``cfg.train`` through coqui's ``Trainer.fit()``; the GPT is restored after.

    ``Trainer.fit()`` turns any exception into ``sys.exit(1)``; we let a ``SystemExit`` from it propagate as a
    ``RuntimeError`` so the benchmark reports it instead of silently exiting.
    """
    from trainer import Trainer, TrainerArgs

    from xtts_tune.data.audio import use_in_coqui

    use_in_coqui()  # coqui's XTTSDataset reads the clips as our trials do (no FFmpeg needed)
    train = cfg.train
    state = copy.deepcopy(base.gpt.state_dict())
    config = copy.deepcopy(base.trainer.config)
    # the recipe's settings, with our trial's values where the trial has one
    config.output_path = str(output_dir)
    config.run_name = "stock"
    config.project_name = "xtts-tune-bench"
    config.dashboard_logger = "tensorboard"
    config.batch_size = train.batch_size
    config.eval_batch_size = train.batch_size
    config.batch_group_size = 0
    config.num_loader_workers = num_loader_workers
    config.num_eval_loader_workers = 0
    config.epochs = train.max_epochs
    config.print_step = 10**9
    config.plot_step = 10**9
    config.log_model_step = 10**9
    config.save_step = 10**9
    config.save_n_checkpoints = 1
    config.save_checkpoints = True
    config.print_eval = False
    config.run_eval = True
    config.test_delay_epochs = 10**9
    config.test_sentences = []
    config.optimizer = "AdamW"
    config.optimizer_wd_only_on_weights = train.weight_decay_weights_only
    config.optimizer_params = {"betas": [0.9, 0.96], "eps": 1e-8, "weight_decay": train.weight_decay}
    config.lr = train.learning_rate
    config.lr_scheduler = None
    config.lr_scheduler_params = {}
    config.grad_clip = train.grad_clip_norm if train.grad_clip_norm > 0 else 0.0
    config.mixed_precision = False
    config.training_seed = train.seed
    config.save_best_after = 0

    model = base.trainer
    original_config = model.config
    model.config = config
    apply_freezing(base.gpt, train.freeze_depth, cfg.model)

    result = StockResult(steps=0, micro_batches=0, wall_seconds=0.0)
    # record every loss the stock path computes, without changing what it computes
    original_train_step, original_eval_step = model.train_step, model.eval_step
    eval_batch: list[tuple[float, int]] = []

    def train_step(batch, criterion, optimizer_idx=None):
        outputs, losses = original_train_step(batch, criterion, optimizer_idx)
        if base.gpt.training:  # GPTTrainer.eval_step calls train_step too, with the model in eval mode
            result.train_losses.append(losses["loss"].item())
        return outputs, losses

    def eval_step(batch, criterion, optimizer_idx=None):
        outputs, losses = original_eval_step(batch, criterion, optimizer_idx)
        eval_batch.append((losses["loss"].item(), int(batch["text_lengths"].shape[0])))
        return outputs, losses

    model.train_step, model.eval_step = train_step, eval_step
    threads = torch.get_num_threads()
    # coqui's trainer logs every step to the terminal and adds a file handler per Trainer it builds; keep its
    # log in its run folder only, and leave the "trainer" logger as we found it
    trainer_log = logging.getLogger("trainer")
    saved_handlers = list(trainer_log.handlers)
    trainer_log.handlers = [
        h for h in saved_handlers if not isinstance(h, logging.StreamHandler) or isinstance(h, logging.FileHandler)
    ]

    def on_epoch_end(_trainer):
        total = sum(n for _, n in eval_batch)
        result.eval_losses.append(sum(v * n for v, n in eval_batch) / total if total else float("nan"))
        eval_batch.clear()
        if keep_epoch_states:
            result.epoch_states.append({k: v.detach().to("cpu", copy=True) for k, v in base.gpt.state_dict().items()})

    try:
        trainer = Trainer(
            TrainerArgs(
                restore_path=None,
                skip_train_epoch=False,
                start_with_eval=False,
                grad_accum_steps=train.grad_accum_steps,
            ),
            config,
            output_path=str(output_dir),
            model=model,
            train_samples=_samples(data, data.split.train),
            eval_samples=_samples(data, data.split.val),
            parse_command_line_args=False,
            callbacks={"on_epoch_end": on_epoch_end},
        )
        # coqui's XTTS dataset module sets one thread on import; give the stock path the same threads as ours
        torch.set_num_threads(threads)
        t = time.perf_counter()
        try:
            trainer.fit()
        except SystemExit as exc:
            raise RuntimeError(f"coqui's Trainer.fit() exited with status {exc.code}; see its log above") from None
        result.wall_seconds = time.perf_counter() - t
        result.micro_batches = trainer.total_steps_done
        per_epoch = len(trainer.train_loader)
        result.steps = train.max_epochs * -(-per_epoch // train.grad_accum_steps)
    finally:
        for h in trainer_log.handlers:
            if h not in saved_handlers:
                h.close()
        trainer_log.handlers = saved_handlers
        model.train_step, model.eval_step = original_train_step, original_eval_step
        model.config = original_config
        base.gpt.load_state_dict(state)
        for p in base.gpt.parameters():
            p.requires_grad_(True)
        base.trainer.eval()
        torch.set_num_threads(threads)
    return result
