"""Studies that cannot overwrite or contaminate each other (issue 12, points 1 and 2), on real tiny studies.

A study's files live in ``<output_dir>/<study_name>/`` and its report and YAML are stamped with its id; a
second study pointed at them is refused before anything is written. A resume that changes the search space,
a fixed knob or the audio is refused with one line naming the key; what only changes how the study goes on
(more trials, keep_top_k, samples, the sampler) goes on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optuna.trial import TrialState
from test_study import SPACE, make_cfg, snapshot, study_raw

from xtts_tune.errors import UserError
from xtts_tune.export import export_best
from xtts_tune.report.page import build_report
from xtts_tune.search.fingerprint import StudyMismatchError
from xtts_tune.search.runner import run_search
from xtts_tune.search.storage import load_study

CLAIM_NAME = "study.json"  # xtts_tune.search.home.CLAIM_NAME (imported where it is checked)

pytestmark = pytest.mark.slow


def files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder`` with its size and modification time."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory, demo_target, tiny_base):
    """One finished 1-trial study with its report and exported YAML where the CLI writes them."""
    root = tmp_path_factory.mktemp("isolation")
    data = root / "data"
    shutil.copytree(demo_target, data)  # the drift tests re-process one of its wavs
    raw = study_raw("demo", data, root / "runs")
    raw["train"]["max_steps"] = 2
    raw["train"]["eval_every"] = 1  # 3 evaluations: a verdict, not inconclusive, so the export has a winner
    cfg = make_cfg(raw, root)
    url = f"sqlite:///{root / 'studies' / 'demo.db'}"
    run_search(cfg, n_trials=1, storage=url, base=tiny_base)
    stored = load_study("demo", url)
    build_report(stored, cfg.report_path)
    export_best(stored, cfg.export_path)
    return root, raw, cfg, url


def test_a_study_lives_in_its_own_folder_and_claims_it(study):
    from xtts_tune.search.home import CLAIM_NAME as claim_name

    assert claim_name == CLAIM_NAME
    root, _, cfg, url = study
    assert cfg.study_dir == root / "runs" / "demo"
    assert {p.name for p in cfg.study_dir.iterdir()} == {"artifacts", "cache", CLAIM_NAME, "split.json", "trials"}
    uid = load_study("demo", url).user_attrs["uid"]
    assert yaml.safe_load((cfg.study_dir / CLAIM_NAME).read_text())["uid"] == uid
    assert f"<meta name=xtts-tune-study content={uid}>" in cfg.report_path.read_text()[:2000]
    assert yaml.safe_load(cfg.export_path.read_text())["provenance"]["study_uid"] == uid


def test_the_same_study_name_in_another_storage_is_refused_and_nothing_is_touched(study, tiny_base, tmp_path):
    root, raw, cfg, url = study

    def outputs():
        return files(root / "runs"), {p.name: p.read_bytes() for p in (cfg.report_path, cfg.export_path)}

    mine = outputs()
    before = snapshot(url, "demo")
    other = f"sqlite:///{tmp_path / 'other.db'}"
    with pytest.raises(UserError) as err:  # the drill: `search --storage <another db>`
        run_search(make_cfg(raw, root), n_trials=1, storage=other, base=tiny_base)
    message = str(err.value)
    assert message.startswith(f"{cfg.study_dir} belongs to study 'demo' in {url} (id ")
    assert f"not to this new study 'demo' in {other}; nothing was changed" in message
    assert "--set study_name=demo-2" in message and f"--storage '{url}' to continue that study" in message

    # from the command line the report and YAML it would write are checked too, before the search starts
    def cli_line(name: str, doc: dict) -> str:
        (root / "studies" / name).write_text(yaml.safe_dump(doc))
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "xtts_tune.cli",
                "search",
                "--config",
                str(root / "studies" / name),
                "--trials",
                "1",
                "--storage",
                other,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 2 and "Traceback" not in out.stderr
        (line,) = out.stderr.strip().splitlines()
        return line

    assert cli_line("same.yaml", raw).startswith(
        f"error: {cfg.study_dir}, {cfg.report_path} and {cfg.export_path} belong to study 'demo' in {url} (id "
    )
    assert cli_line("other.yaml", {**raw, "output_dir": str(tmp_path / "runs")}).startswith(
        f"error: {cfg.report_path} and {cfg.export_path} belong to another study named 'demo' (id "
    )
    assert outputs() == mine
    assert snapshot(url, "demo") == before
    assert not (tmp_path / "other.db").exists() and not (tmp_path / "runs").exists()


def test_a_folder_of_a_study_no_longer_in_its_storage_is_kept_and_refused(study, tiny_base, tmp_path):
    root, raw, cfg, url = study
    gone = tmp_path / "gone.db"
    shutil.copy(root / "studies" / "demo.db", gone)
    runs = tmp_path / "runs"
    shutil.copytree(root / "runs", runs)
    # the claim names the copied storage, which is then deleted: the folder belongs to a study that is gone
    claim = yaml.safe_load((runs / "demo" / CLAIM_NAME).read_text())
    claim["storage"] = f"sqlite:///{gone}"
    (runs / "demo" / CLAIM_NAME).write_text(json.dumps(claim))
    gone.unlink()
    kept = files(runs)
    with pytest.raises(UserError) as err:
        run_search(
            make_cfg({**raw, "output_dir": str(runs), "study_name": "demo"}, tmp_path),
            n_trials=1,
            storage=f"sqlite:///{gone}",
            base=tiny_base,
        )
    assert "which that storage no longer holds" in str(err.value) and f"delete {runs / 'demo'}" in str(err.value)
    assert files(runs) == kept  # nothing deleted: today the trial folder was removed "left over from an earlier study"
    # a study of its own name gets a folder of its own next to it
    summary = run_search(
        make_cfg({**raw, "output_dir": str(runs), "study_name": "demo-2"}, tmp_path),
        n_trials=1,
        storage=f"sqlite:///{gone}",
        base=tiny_base,
    )
    assert summary.trials_dir == str(runs / "demo-2" / "trials") and files(runs / "demo") == {
        k[len("demo/") :]: v for k, v in kept.items() if k.startswith("demo/")
    }


@pytest.mark.parametrize(
    "change, key, old, new",
    [
        (
            {"space": {**SPACE, "learning_rate": {"low": 1.0e-6, "high": 1.0e-2, "log": True}}},
            "search.space.learning_rate",
            "float in [1e-06, 0.003] log",
            "float in [1e-06, 0.01] log",
        ),
        (
            {"space": {**SPACE, "grad_accum_steps": {"choices": [1, 2]}}},
            "search.space.grad_accum_steps",
            "not searched",
            "choices [1, 2]",
        ),
        ({"space": {**SPACE, "max_epochs": 2}}, "search.space.max_epochs", "1", "2"),
        ({"train": {"max_steps": 3}}, "train.max_steps", "2", "3"),
        ({"train": {"batch_size": 4}}, "train.batch_size", "8", "4"),
        ({"model": {"freeze_text_head": True}}, "model.freeze_text_head", "False", "True"),
        (
            {"space": {**SPACE, "learning_rate": {"choices": [1.0e-4, 1.0e-3]}}},  # crashed with a FAIL trial
            "search.space.learning_rate",
            "float in [1e-06, 0.003] log",
            "choices [0.0001, 0.001]",
        ),
    ],
)
def test_drift_is_refused_with_the_key_and_both_values(study, tiny_base, change, key, old, new):
    root, raw, _, url = study
    changed = {**raw, "search": {**raw["search"], **{k: v for k, v in change.items() if k == "space"}}}
    for section in ("train", "model"):
        if section in change:
            changed[section] = {**raw.get(section, {}), **change[section]}
    before = snapshot(url, "demo")
    with pytest.raises(UserError) as err:  # StudyDriftError
        run_search(make_cfg(changed, root), n_trials=1, storage=url, base=tiny_base)
    assert type(err.value).__name__ == "StudyDriftError"
    assert f"{key} changed (stored {old}, now {new})" in str(err.value)
    assert "--set study_name=demo-2" in str(err.value) and "nothing was changed" in str(err.value)
    assert snapshot(url, "demo") == before  # no new trial, no FAIL trial


def test_growth_goes_on_and_a_knob_kind_change_via_the_cli_is_one_line(study, tiny_base):
    root, raw, cfg, url = study
    grown = {
        **raw,
        "search": {**raw["search"], "keep_top_k": 1, "samples": 0, "sampler": {"seed": 7}, "pruner": "none"},
        "train": {**raw["train"], "num_threads": 1, "device": "cpu"},
        "diagnosis": {"spike_factor": 2.0},
    }
    summary = run_search(make_cfg(grown, root), n_trials=1, storage=url, base=tiny_base)
    assert summary.trials_run == [1] and summary.rows[-1].state in ("COMPLETE", "PRUNED")
    kind = {**raw, "search": {**raw["search"], "space": {**SPACE, "weight_decay": {"choices": [0.0, 0.1]}}}}
    (root / "studies" / "kind.yaml").write_text(yaml.safe_dump(kind))
    before = snapshot(url, "demo")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "xtts_tune.cli",
            "search",
            "--config",
            str(root / "studies" / "kind.yaml"),
            "--trials",
            "1",
            "--storage",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert (
        line.startswith("error: study 'demo'")
        and "search.space.weight_decay changed (stored float in [0.0, 0.2]" in line
    )
    assert snapshot(url, "demo") == before
    assert not [t for t in load_study("demo", url).trials if t.state == TrialState.FAIL]


def test_re_processed_audio_of_the_same_size_is_another_dataset(study, tiny_base):
    root, raw, _, url = study
    wav = sorted((root / "data" / "wavs").iterdir())[0]
    data = bytearray(wav.read_bytes())
    kept = bytes(data)
    data[4000:4100] = bytes(100)
    try:
        wav.write_bytes(bytes(data))
        with pytest.raises(StudyMismatchError, match=r"dataset .* changed \(stored [0-9a-f]{16}, now [0-9a-f]{16}\)"):
            run_search(make_cfg(raw, root), n_trials=1, storage=url, base=tiny_base)
    finally:
        wav.write_bytes(kept)


def test_a_worker_that_read_no_study_yet_is_not_refused_by_the_claim_its_sibling_just_made(tmp_path):
    """Workers started together: one reads "no database, no study", then its sibling creates the database, the
    study and the folder's claim. The late one's check must see its own study there, not a foreign one (seen
    under load: the fourth of four workers stopped with "runs/demo belongs to study 'demo'")."""
    import optuna

    from xtts_tune.config import StudyConfig
    from xtts_tune.record import write_study
    from xtts_tune.search.home import StudyHomeError, check_home, claim_home
    from xtts_tune.search.storage import open_storage

    cfg = StudyConfig(output_dir=str(tmp_path / "runs"))
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    # the sibling, after this worker read uid None: database, study, record and claim
    study = optuna.create_study(study_name=cfg.study_name, storage=open_storage(url))
    write_study(study, uid="a1b2c3d4e5f6")
    claim_home(cfg, url, "a1b2c3d4e5f6")
    check_home(cfg, url, None)  # the late worker's check, with what it read before: not refused
    # a claim of a study in another storage is still foreign
    with pytest.raises(StudyHomeError, match="belongs to study 'demo'"):
        check_home(cfg, f"sqlite:///{tmp_path / 'other.db'}", None)
