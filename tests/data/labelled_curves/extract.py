"""Write the labelled real curves (``demo.json``, ``demo-voice2.json``, ``kathleen.json``) from their sources.

Run from the repository root: ``python tests/data/labelled_curves/extract.py [TRIALS_FOLDER [STORAGE_URL]]``
(the kathleen search's ``runs/kathleen/kathleen/trials`` and ``sqlite:///studies/kathleen.db``).
The curves are copied unchanged from measured runs; the labels and reasons below were written by a person
reading each curve (validation and train loss per evaluation) before the verdict code was checked against
them. The search-table curves (``benchmarks/search-table-demo*.json``, recorded to their planned last step)
are cut where the demo study's early stopping (patience 4, min_delta 0.01) stops a search's trial, so each
curve is what a search on that study records. Labels: ``overfitting``, ``healthy`` (levelled off or within
its noise after the minimum), ``still-improving`` (healthy, best at its last evaluation, still falling),
``rising-at-end`` (healthy, one last evaluation above its minimum), ``under-trained`` (fell far short of the
study's best and was still falling at the study's pace), ``underfitting`` (barely learned at all).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def early_stopped(curve: list[dict], patience: int = 4, min_delta: float = 0.01) -> list[dict]:
    """The curve as xtts_tune.training.early_stopping.EarlyStopping cuts it (the step-0 evaluation never stops)."""
    reference, bad = float("inf"), 0
    for i, record in enumerate(curve):
        value = record["val_loss"]
        if value < reference - min_delta:
            reference, bad = value, 0
        else:
            bad += 1
        if bad >= patience and i > 0:
            return curve[: i + 1]
    return curve


KEEP = ("step", "epoch", "train_loss", "val_loss")


def _slim(curve: list[dict]) -> list[dict]:
    return [{k: r.get(k) for k in KEEP} for r in curve]


def from_table(name: str, labels: dict[int, tuple[str, str]]) -> dict:
    table = json.loads((ROOT / "benchmarks" / f"search-table-{name}.json").read_text())
    curves = []
    for index, (label, reason) in sorted(labels.items()):
        config = table["configs"][index]
        curves.append(
            {
                "id": f"{name}#{index}",
                "params": config["params"],
                "label": label,
                "reason": reason,
                "curve": _slim(early_stopped(config["curve"])),
            }
        )
    return {
        "source": f"benchmarks/search-table-{name}.json (commit {table['meta']['commit']}, "
        f"{table['meta']['machine']}), cut by the study's early stopping",
        "curves": curves,
    }


def from_trials(folder: Path, source: str, labels: dict[int, tuple[str, str]], storage: str | None) -> dict:
    """The curves a search wrote (``<trials>/trial-NNNN/curve.json``), with each trial's params from its study."""
    params = {}
    if storage:
        import optuna

        params = {t.number: t.params for t in optuna.load_study(study_name="kathleen", storage=storage).trials}
    curves = []
    for number, (label, reason) in sorted(labels.items()):
        data = json.loads((folder / f"trial-{number:04d}" / "curve.json").read_text())
        curves.append(
            {
                "id": f"kathleen#{number}",
                "params": params.get(number, {}),
                "label": label,
                "reason": reason,
                "curve": _slim(data["curve"]),
            }
        )
    return {"source": source, "curves": curves}


sys.path.insert(0, str(HERE))
from labels import DEMO, DEMO_VOICE2, KATHLEEN, KATHLEEN_SOURCE  # noqa: E402 (beside this script)

if __name__ == "__main__":
    (HERE / "demo.json").write_text(json.dumps(from_table("demo", DEMO), indent=1) + "\n")
    (HERE / "demo-voice2.json").write_text(json.dumps(from_table("demo-voice2", DEMO_VOICE2), indent=1) + "\n")
    if len(sys.argv) > 1 and KATHLEEN:
        storage = sys.argv[2] if len(sys.argv) > 2 else None
        (HERE / "kathleen.json").write_text(
            json.dumps(from_trials(Path(sys.argv[1]), KATHLEEN_SOURCE, KATHLEEN, storage), indent=1) + "\n"
        )
