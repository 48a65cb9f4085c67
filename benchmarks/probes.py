"""``make bench-probes``: the probes on real audio, with the time they take on this machine.

For three speakers (the CC0 real speaker in ``corpora/real-voice-kathleen``, the demo's espeak-ng target
voice and its base voice) it builds the speaker's profile from its first ``--profile`` clips, then scores its
last ``--clips`` clips (held out) as :func:`xtts_tune.probes.ceiling` does: similarity to the speaker's own
mean, similarity to the demo target's mean (another speaker, for the spread), pooled CER and WER of the
offline transcript, babble flags raised, and seconds per clip (speaker embedding alone; all probes), after
the models are loaded and warmed up. Nothing is cached, so the times are the models' own. It prints a
Markdown table with the commit and machine.

>>> row = {"speaker": "x", "profile": 2, "heldout": 1, "own": 0.9, "to_target": 0.7, "cer": 0.1, "wer": 0.2,
...        "flagged": 0, "embed_s": 0.3, "all_s": 1.0}
>>> table([row]).splitlines()[2]
'| x | 2 / 1 | 0.900 | 0.700 | 10.0 % | 20.0 % | 0 | 0.30 | 1.00 |'
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _clips(folder: Path, ext: str) -> list[tuple[Path, str]]:
    rows = [line.split("|") for line in (folder / "metadata.csv").read_text(encoding="utf-8").splitlines()]
    return [(folder / "wavs" / f"{r[0]}.{ext}", r[1]) for r in rows]


def speakers(work: Path, total: int) -> dict[str, list[tuple[Path, str]]]:
    """The three speakers' clips (the demo voices generated into ``work``; at least ``total`` clips each)."""
    from xtts_tune.data.demo import BASE_VOICE, ensure_demo_target, generate_dataset, split_demo_sentences

    base_sentences, _ = split_demo_sentences()
    base = generate_dataset(work / "base", base_sentences, BASE_VOICE, prefix="base", count=total)
    return {
        "real speaker (kathleen, 48 kHz FLAC)": _clips(ROOT / "corpora" / "real-voice-kathleen", "flac"),
        "demo target (espeak-ng en-us+f3)": _clips(ensure_demo_target(work / "target"), "wav"),
        "demo base voice (espeak-ng en-us)": _clips(base, "wav"),
    }


def measure(clips, n_profile: int, n_heldout: int, target_profile) -> dict:
    """One speaker's row: its profile from the first clips, its held-out clips scored (no cache); the
    similarity to ``target_profile`` (None: its own)."""
    from xtts_tune.probes import ceiling, reference_profile, speaker_similarity

    start = time.perf_counter()
    profile = reference_profile(clips[:n_profile])
    embed_s = (time.perf_counter() - start) / n_profile
    heldout = clips[-n_heldout:]
    start = time.perf_counter()
    own = ceiling(heldout, profile, language="en")
    all_s = (time.perf_counter() - start) / n_heldout
    other = speaker_similarity([w for w, _ in heldout], target_profile or profile)
    return {
        "profile": n_profile,
        "heldout": n_heldout,
        "own": own.similarity,
        "to_target": sum(other) / len(other),
        "cer": own.cer,
        "wer": own.wer,
        "flagged": own.n_flagged,
        "embed_s": embed_s,
        "all_s": all_s,
        "scores": own,
        "reference": profile,
    }


def table(rows: list[dict]) -> str:
    """The Markdown table of the rows."""
    lines = [
        "| speaker | clips (profile / held out) | similarity to own mean | similarity to demo target's mean "
        "| CER | WER | clips flagged | s/clip embedding | s/clip all probes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['speaker']} | {r['profile']} / {r['heldout']} | {r['own']:.3f} | {r['to_target']:.3f} "
            f"| {100 * r['cer']:.1f} % | {100 * r['wer']:.1f} % | {r['flagged']} | {r['embed_s']:.2f} "
            f"| {r['all_s']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.probes", description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=int, default=50, help="clips per speaker for its profile (default 50)")
    parser.add_argument("--clips", type=int, default=20, help="held-out clips per speaker scored (default 20)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the demo voices (default: a temp dir)")
    parser.add_argument("--verbose", action="store_true", help="print every held-out clip's transcript")
    args = parser.parse_args(argv)
    from benchmarks.search.record import provenance
    from xtts_tune.probes.provenance import installed

    work = args.work or Path(tempfile.mkdtemp(prefix="bench-probes-"))
    print(f"generating the demo voices in {work} ...", flush=True)
    voices = speakers(work, args.profile + args.clips)
    print("loading the models ...", flush=True)
    warm = next(iter(voices.values()))[0][0]
    from xtts_tune.probes.asr import transcribe
    from xtts_tune.probes.similarity import embed

    embed(warm), transcribe(warm)  # load and warm up both models, so the times below are per clip only
    rows, target_profile = [], None
    for name in ["demo target (espeak-ng en-us+f3)", *[n for n in voices if not n.startswith("demo target")]]:
        print(f"scoring {name} ...", flush=True)
        row = measure(voices[name], args.profile, args.clips, target_profile)
        target_profile = target_profile or row["reference"]
        rows.append({"speaker": name, **row})
        if args.verbose:
            for s in row["scores"].samples:
                print(f"  cer {s.cer:.2f} sim {s.similarity:.3f} {s.flags or ''} | {s.text} | {s.transcript}")
    prov = provenance(ROOT)
    print()
    print(table(rows))
    print(
        f"\ncommit {prov['commit']}{' (with uncommitted changes)' if prov['dirty'] else ''}, {prov['machine']}, "
        f"{prov['date']}"
    )
    for w in installed():
        print(f"{w['name']}: {w['package']} ({w['licence']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
