"""``make bench-doctor``: does the dataset doctor (``xtts-tune check-data``) flag broken clips, and only them?

An injected-fault set is built from a real speaker (:func:`inject_faults`): clean clips copied as they are,
and clips broken in one known way each (:data:`FAULTS`): the transcript swapped for another clip's, a third
of its words deleted, the audio cut in half, 3 s of silence appended, clipped (driven to three times full
scale), another speaker saying the same text (espeak-ng's demo target voice), and a duplicate of a clean
clip under another id. The doctor runs on the whole set (its thresholds come from the set's own spread, as
they would on a user's data); per fault type the bench reports how many were flagged (recall) and by which
checks, and how many clean clips were flagged. Then the doctor runs on the real hour as it is (no fault known
to us): every clip it flags there is a false flag, and its wall time is the doctor's cost on 1,132 clips.

    python -m benchmarks.doctor --dataset kathleen --clean 40 --per-fault 5   # the committed 100 clips
    python -m benchmarks.doctor --dataset hour --clean 200 --per-fault 10 --hour-clips 1132
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from xtts_tune.io import atomic_write_json

ROOT = Path(__file__).resolve().parents[1]
KATHLEEN = ROOT / "corpora" / "real-voice-kathleen"
FAULTS = (
    "swapped transcript",
    "words deleted",
    "audio cut in half",
    "silence added",
    "clipping",
    "another speaker",
    "duplicate",
)
SILENCE_S = 3.0
OTHER_VOICE = ["-v", "en-us+f3", "-s", "140", "-p", "70"]
"""espeak-ng's arguments for the other speaker (the demo target voice, xtts_tune.data.demo.TARGET_VOICE)."""


def source_clips(dataset: str) -> list:
    """The real speaker's clips: the committed 100 (``kathleen``) or the real hour (``hour``)."""
    from xtts_tune.config import DataConfig
    from xtts_tune.data.clips import load_clips

    if dataset == "hour":
        from benchmarks.datasets import real_hour

        return load_clips(DataConfig(path=str(real_hour())), Path("."))
    return load_clips(DataConfig(path=str(KATHLEEN), formatter="coqui", metadata="metadata_coqui.csv"), Path("."))


def _slug(fault: str) -> str:
    return fault.replace(" ", "-")


def _other_speaker(text: str, rate: int) -> np.ndarray:
    """``text`` said by espeak-ng's demo voice, at ``rate`` Hz."""
    import soundfile as sf

    from xtts_tune.probes.audio import resample

    with __import__("tempfile").TemporaryDirectory() as tmp:
        path = Path(tmp) / "other.wav"
        subprocess.run(["espeak-ng", *OTHER_VOICE, "-w", str(path), "--", text], check=True, capture_output=True)
        audio, espeak_rate = sf.read(str(path), dtype="float32")
    return resample(audio * 0.5 / max(1e-6, float(np.abs(audio).max())), espeak_rate, rate)


def _break(fault: str, audio: np.ndarray, rate: int, text: str, donor_text: str, rng) -> tuple[np.ndarray, str]:
    """The clip's (audio, text) with ``fault`` injected."""
    if fault == "swapped transcript":
        return audio, donor_text
    if fault == "words deleted":
        words = text.split()
        n = max(2, len(words) // 3)
        start = rng.randrange(0, max(1, len(words) - n))
        return audio, " ".join(words[:start] + words[start + n :])
    if fault == "audio cut in half":
        return audio[: len(audio) // 2], text
    if fault == "silence added":
        return np.concatenate([audio, np.zeros(int(SILENCE_S * rate), dtype=audio.dtype)]), text
    if fault == "clipping":
        return np.clip(audio * (3.0 / max(1e-6, float(np.abs(audio).max()))), -1.0, 1.0), text
    if fault == "another speaker":
        return _other_speaker(text, rate), text
    raise ValueError(fault)


def inject_faults(
    clips: list, out: Path, *, clean: int, per_fault: int, faults=FAULTS, seed: int = 0
) -> dict[str, str]:
    """Write an LJSpeech folder ``out`` (``metadata.csv``, ``wavs/``): ``clean`` clips as they are and
    ``per_fault`` clips of each fault; return ``{clip id: fault or "clean"}``. A broken clip's id is
    ``<fault>-<source id>``; a duplicate copies a clean clip (which sorts before it) and its text."""
    import soundfile as sf

    rng = random.Random(seed)
    pool = sorted(clips, key=lambda c: c.id)
    rng.shuffle(pool)
    broken = [f for f in faults if f != "duplicate"]
    need = clean + per_fault * len(broken)
    if len(pool) < need + per_fault:
        raise SystemExit(f"{len(pool)} clips are too few for {clean} clean and {per_fault} per fault")
    chosen, donors = pool[:need], pool[need:]
    (out / "wavs").mkdir(parents=True, exist_ok=True)
    truth, rows = {}, []

    def write(cid: str, audio: np.ndarray, rate: int, text: str, fault: str) -> None:
        sf.write(str(out / "wavs" / f"{cid}.wav"), audio, rate, subtype="PCM_16")
        rows.append(f"{cid}|{text}|{text}")
        truth[cid] = fault

    for clip in chosen[:clean]:
        audio, rate = sf.read(clip.audio_file, dtype="float32")
        write(clip.id, audio, rate, clip.text, "clean")
    for i, clip in enumerate(chosen[clean:]):
        fault = broken[i // per_fault]
        audio, rate = sf.read(clip.audio_file, dtype="float32")
        audio, text = _break(fault, audio, rate, clip.text, donors[i % len(donors)].text, rng)
        write(f"{_slug(fault)}-{clip.id}", audio, rate, text, fault)
    if "duplicate" in faults:
        for clip in chosen[:per_fault]:  # a byte copy of a clean clip
            shutil.copy(out / "wavs" / f"{clip.id}.wav", out / "wavs" / f"duplicate-{clip.id}.wav")
            rows.append(f"duplicate-{clip.id}|{clip.text}|{clip.text}")
            truth[f"duplicate-{clip.id}"] = "duplicate"
    (out / "metadata.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return truth


def study_yaml(folder: Path, work: Path, name: str) -> Path:
    """A study YAML on ``folder`` (the embedded base: its limits), its caches under ``work``."""
    import yaml

    path = work / f"{name}.yaml"
    doc = {"study_name": name, "output_dir": str(work / "runs"), "data": {"path": str(folder), "language": "en"}}
    path.write_text(yaml.safe_dump(doc))
    return path


def score(truth: dict[str, str], report) -> dict:
    """Recall per fault type (with the checks that fired), false flags on the clean clips, precision."""
    flagged = {f.clip: f for f in report.findings}
    rows = {}
    for fault in [*FAULTS, "clean"]:
        ids = [c for c, t in truth.items() if t == fault]
        if not ids:
            continue
        hit = [c for c in ids if c in flagged]
        checks: dict[str, int] = {}
        for c in hit:
            for r in {r.check for r in flagged[c].reasons}:
                checks[r] = checks.get(r, 0) + 1
        rows[fault] = {"clips": len(ids), "flagged": len(hit), "checks": checks, "ids": hit if fault == "clean" else []}
    faulty = [c for c, t in truth.items() if t != "clean"]
    true_flags = sum(1 for c in faulty if c in flagged)
    return {
        "per_type": rows,
        "faults": len(faulty),
        "faults_flagged": true_flags,
        "precision": true_flags / max(1, len(flagged)),
        "seconds": report.seconds,
    }


def run_doctor(config: Path):
    from xtts_tune.config import load_config
    from xtts_tune.doctor.run import check_dataset
    from xtts_tune.doctor.table import render_progress

    step = {"next": 0.0}

    def progress(event):
        if event["done"] / event["total"] >= step["next"]:
            print(render_progress(event), flush=True)
            step["next"] += 0.1

    return check_dataset(load_config(config), progress=progress)


def markdown(result: dict) -> str:
    """The tables docs/doctor.md shows."""
    s = result["injected"]
    lines = [
        f"Injected-fault set: {result['dataset']} ({s['faults']} faulty clips, "
        f"{s['per_type']['clean']['clips']} clean); commit {result['commit']}, {result['machine']}.",
        "",
        "| fault | clips | flagged | recall | checks that fired |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for fault, row in s["per_type"].items():
        checks = ", ".join(f"{k} {v}" for k, v in sorted(row["checks"].items(), key=lambda kv: -kv[1])) or "-"
        rate = row["flagged"] / row["clips"]
        name = "clean (false flags)" if fault == "clean" else fault
        lines.append(f"| {name} | {row['clips']} | {row['flagged']} | {rate:.0%} | {checks} |")
    lines.append(
        f"| **all faults** | {s['faults']} | {s['faults_flagged']} | {s['faults_flagged'] / max(1, s['faults']):.0%} | "
        f"precision {s['precision']:.0%} |"
    )
    if "hour" in result:
        h = result["hour"]
        lines += [
            "",
            "| real hour | clips | flagged (false flags) | rate | wall time | per clip | checks that fired |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
            f"| first {h['clips']} clips, as recorded | {h['clips']} | {h['flagged']} | {h['flagged'] / h['clips']:.1%} | "
            f"{h['seconds']:.0f} s | {h['seconds'] / h['clips']:.2f} s | "
            + (", ".join(f"{k} {v}" for k, v in sorted(h["checks"].items(), key=lambda kv: -kv[1])) or "-")
            + " |",
            f"| the same, second run (cached) | {h['clips']} | {h['flagged']} | | {h['cached_seconds']:.1f} s | | |",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["kathleen", "hour"], default="kathleen")
    p.add_argument("--clean", type=int, default=40)
    p.add_argument("--per-fault", type=int, default=5)
    p.add_argument("--hour-clips", type=int, default=0, help="also run on the first N clips of the real hour")
    p.add_argument("--work", default="runs/bench-doctor")
    p.add_argument("--out", default="runs/bench-doctor/result.json")
    args = p.parse_args(argv)
    from benchmarks.demo import _commit

    work = Path(args.work).resolve()
    shutil.rmtree(work / "injected", ignore_errors=True)
    truth = inject_faults(source_clips(args.dataset), work / "injected", clean=args.clean, per_fault=args.per_fault)
    report = run_doctor(study_yaml(work / "injected", work, "injected"))
    result = {
        "dataset": args.dataset,
        "commit": _commit(),
        "machine": "shared 2-core CPU",
        "injected": score(truth, report),
    }
    if args.hour_clips:
        from benchmarks.datasets import real_hour

        hour = real_hour()
        folder = work / f"hour-{args.hour_clips}"
        if not folder.exists():
            (folder / "wavs").mkdir(parents=True)
            lines = (hour / "metadata.csv").read_text(encoding="utf-8").splitlines()[: args.hour_clips]
            for line in lines:
                cid = line.split("|")[0]
                (folder / "wavs" / f"{cid}.wav").symlink_to(hour / "wavs" / f"{cid}.wav")
            (folder / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        config = study_yaml(folder, work, f"hour-{args.hour_clips}")
        first = run_doctor(config)
        started = time.monotonic()
        again = run_doctor(config)
        checks: dict[str, int] = {}
        for f in first.findings:
            for r in {r.check for r in f.reasons}:
                checks[r] = checks.get(r, 0) + 1
        result["hour"] = {
            "clips": first.clips,
            "flagged": len(first.findings),
            "seconds": first.seconds,
            "cached_seconds": time.monotonic() - started,
            "checks": checks,
            "ids": [f.to_dict() for f in first.findings],
            "cached": again.cached,
        }
    atomic_write_json(Path(args.out), result)
    print(markdown(result))
    print(json.dumps(result["injected"]["per_type"].get("clean", {}), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
