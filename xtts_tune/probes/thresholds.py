"""Every number the probes decide with, in one place: the babble flags' thresholds, the length cap and the
probe version (part of every cache key, so changing a measurement here re-scores instead of reusing).

A sample is flagged when it

* **babbles on**: more than :data:`TAIL_SPEECH_MAX_S` seconds of speech (voice activity) after the text's last
  word, as the ASR's word timestamps place it (plus :data:`TAIL_MARGIN_S` for timestamp error);
* **is too long for its text**: its speech span exceeds the slowest reference clip's seconds per character
  times the characters, times ``1 +`` :data:`RATE_SLACK`, plus :data:`ABSOLUTE_SLACK_S` (a 1-word text gets
  the absolute slack, which is where real speech is slowest per character);
* **is too short for its text**: under the fastest reference rate times the characters, times
  ``1 -`` :data:`RATE_SLACK`, minus :data:`ABSOLUTE_SLACK_S` (words dropped);
* **ran to the length cap**: it is at least :data:`CAP_FRACTION` of the cap long (the GPT never stopped).

>>> default_max_seconds("Hello there.")  # the cap xtts_tune.model.speak applies when none is given
2.8
>>> hit_cap(2.75, 2.8), hit_cap(1.2, 2.8), hit_cap(5.0, None)
(True, False, False)
"""

from __future__ import annotations

PROBE_VERSION = 2
"""Bumped whenever a cached per-sample measurement would change (model, normalisation, VAD settings, decoding:
2 caps a transcript's tokens, :data:`xtts_tune.probes.asr.TOKENS_PER_SECOND`)."""

TAIL_SPEECH_MAX_S = 0.6
"""Seconds of voiced audio allowed after the text's last word before a sample counts as babbling."""

TAIL_MARGIN_S = 0.25
"""Voiced audio this close after the last word's end timestamp is that word's own tail (timestamp error)."""

RATE_SLACK = 0.25
"""Relative slack around the reference clips' seconds-per-character range."""

ABSOLUTE_SLACK_S = 0.6
"""Absolute slack in seconds (a short text's fixed overhead: onset, final lengthening)."""

CAP_FRACTION = 0.95
"""A sample at least this fraction of its length cap long ran to the cap."""

CAP_SECONDS_BASE = 1.0
CAP_SECONDS_PER_CHAR = 0.15


def default_max_seconds(text: str) -> float:
    """The length cap a sample of ``text`` gets when none is given: 1 s + 0.15 s per character (about twice a
    normal speaking rate), as :func:`xtts_tune.model.speak.speak` applies it."""
    return CAP_SECONDS_BASE + CAP_SECONDS_PER_CHAR * len(text.strip())


def hit_cap(seconds: float, max_seconds: float | None) -> bool:
    """Whether a sample ``seconds`` long ran to a cap of ``max_seconds`` (None: no cap, never)."""
    return max_seconds is not None and seconds >= CAP_FRACTION * max_seconds


def duration_bounds(chars: int, rate_min: float, rate_max: float) -> tuple[float, float]:
    """(shortest, longest) plausible speech span in seconds for a text of ``chars`` characters, given the
    reference clips' seconds-per-character range.

    >>> duration_bounds(40, 0.06, 0.08)
    (1.2, 4.6)
    """
    low = max(0.0, rate_min * chars * (1 - RATE_SLACK) - ABSOLUTE_SLACK_S)
    high = rate_max * chars * (1 + RATE_SLACK) + ABSOLUTE_SLACK_S
    return round(low, 6), round(high, 6)
