"""Feature prep before the first trial: every clip's cached inputs computed once, with progress, resumably.

Without this step the first trial of a study computes the features of the clips it meets, inside its own
time (so its ETA is wrong by the prep), and two workers starting together both compute all of them. Here a
study computes, before any trial, what its trials will read: the clean features of the train, validation
and test clips, and the train clips' noisy variants when the search may augment (the clips the cost block
counts). The work holds one lock file beside the cache, so a second worker waits and then finds the work
done; it saves a shard every ``save_every`` clips, so a kill or a power loss loses at most that many and a
rerun goes on from there.

>>> from xtts_tune.config import load_config
>>> from xtts_tune.model.base import load_study_base
>>> from xtts_tune.training.prepare import prepare_data
>>> cfg = load_config("studies/demo.yaml")
>>> data = prepare_data(cfg, load_study_base(cfg))
>>> done = prepare_features(data, cfg.train, augment=False)
>>> prepare_features(data, cfg.train, augment=False)["computed"]   # a second call finds everything cached
0
"""

from __future__ import annotations

import contextlib
import time

from xtts_tune.io import ProgressFn, file_lock
from xtts_tune.schema import TrainConfig
from xtts_tune.training.prepare import PreparedData

SAVE_EVERY = 200  # clips between two saved shards during prep
EVENTS = 50  # progress events per prep, at most (plus the first and the last)


def feature_items(data: PreparedData, train: TrainConfig, *, augment: bool) -> list[tuple[str, int | None]]:
    """What the trials of a study will read: (clip id, noise variant or None) for the clean train,
    validation and test clips, and every train clip's variants when ``augment``."""
    split = data.split
    items: list[tuple[str, int | None]] = [(cid, None) for cid in [*split.train, *split.val, *split.test]]
    if augment:
        items += [(cid, v) for cid in split.train for v in range(train.augment_variants)]
    return items


def prepare_features(
    data: PreparedData,
    train: TrainConfig,
    *,
    augment: bool,
    progress: ProgressFn | None = None,
    save_every: int = SAVE_EVERY,
) -> dict:
    """Compute and save the features of :func:`feature_items` not cached yet; return ``{"computed": n,
    "total": n, "seconds": s}``. Emits ``{"event": "features", "done", "total", "elapsed_s", "eta_s"}``
    while it works, and ``{"event": "message"}`` when it waits for another worker's prep."""
    store = data.features
    level = tuple(train.noise_level_range)

    def key(item):
        return store.key(item[0], item[1], seed=train.seed, level_range=level)

    items = feature_items(data, train, augment=augment)
    started = time.perf_counter()
    if not store.use_cache or all(store.has(key(it)) for it in items):
        return {"computed": 0, "total": len(items), "seconds": 0.0}

    def waiting() -> None:
        if progress is not None:
            progress({"event": "message", "text": "features: another worker is preparing them; waiting"})

    lock = store.cache_path.with_name(store.cache_path.name + ".lock") if store.cache_path else None
    with file_lock(lock, on_wait=waiting) if lock else contextlib.nullcontext():
        store.refresh()  # what another worker saved while this one waited
        missing = [it for it in items if not store.has(key(it))]
        step = max(1, len(missing) // EVENTS)
        for i, (cid, variant) in enumerate(missing, 1):
            store.get(cid, variant, seed=train.seed, level_range=level)
            if i % save_every == 0:
                store.save()
            if progress is not None and (i == 1 or i % step == 0 or i == len(missing)):
                elapsed = time.perf_counter() - started
                progress(
                    {
                        "event": "features",
                        "done": i,
                        "total": len(missing),
                        "elapsed_s": elapsed,
                        "eta_s": elapsed / i * (len(missing) - i),
                    }
                )
        store.save()
    return {"computed": len(missing), "total": len(items), "seconds": time.perf_counter() - started}
