"""Ears: score synthesized speech offline by how it sounds, not by its loss.

Three probes, all with weights that ship inside registry packages (a run never downloads):

* **speaker similarity** (:mod:`~xtts_tune.probes.similarity`): cosine of a sample's Resemblyzer embedding
  to the mean embedding of the target's training clips;
* **intelligibility** (:mod:`~xtts_tune.probes.asr`, :mod:`~xtts_tune.probes.text`): CER and WER of a
  Whisper transcript against the text in its language (tiny.en for English, Whisper base for the others;
  a language Whisper does not know gets "n/a");
* **babble** (:mod:`~xtts_tune.probes.babble`): speech after the text's last word, a length outside the
  target's speaking-rate range, a sample that ran to its length cap.

The entry points are :func:`reference_profile`, :func:`score_samples`, :func:`ceiling` and
:func:`speaker_similarity`; the results are
:class:`ReferenceProfile` and :class:`ProbeScores` (JSON round trip with ``to_dict``/``from_dict``, importable
without torch). Thresholds live in :mod:`~xtts_tune.probes.thresholds`, sample texts in
:mod:`~xtts_tune.probes.texts`, the weights' provenance in :mod:`~xtts_tune.probes.provenance`.

>>> from xtts_tune.probes import ProbeScores, SAMPLE_TEXTS
>>> ProbeScores.from_samples([], language="de", asr="n/a", asr_note="n/a: no ASR").summary()["cer"] is None
True
"""

from xtts_tune.probes.records import ProbeScores, ReferenceProfile, SampleScore
from xtts_tune.probes.score import ceiling, reference_profile, score_samples, speaker_similarity
from xtts_tune.probes.texts import SAMPLE_TEXTS, sample_texts
from xtts_tune.probes.thresholds import PROBE_VERSION

__all__ = [
    "PROBE_VERSION",
    "SAMPLE_TEXTS",
    "ProbeScores",
    "ReferenceProfile",
    "SampleScore",
    "ceiling",
    "reference_profile",
    "sample_texts",
    "score_samples",
    "speaker_similarity",
]
