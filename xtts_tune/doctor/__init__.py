"""The dataset doctor: find the clips that will hurt a fine-tune before it starts (``xtts-tune check-data``).

What one clip measures is :mod:`~.measure` (cached by its audio content), the checks and their relative
thresholds :mod:`~.checks`, running them on clips or a study's dataset and writing the flagged ids as a
``data.exclude`` file :mod:`~.run`, the table a terminal shows :mod:`~.table`.
"""

from xtts_tune.lazy import lazy_exports

_API = {
    "ClipFinding": "xtts_tune.doctor.checks",
    "ClipLimits": "xtts_tune.doctor.checks",
    "Reason": "xtts_tune.doctor.checks",
    "DoctorReport": "xtts_tune.doctor.run",
    "check_clips": "xtts_tune.doctor.run",
    "check_dataset": "xtts_tune.doctor.run",
    "examine": "xtts_tune.doctor.run",
    "write_exclude": "xtts_tune.doctor.run",
}

__all__ = sorted(_API)
__getattr__, __dir__ = lazy_exports(__name__, _API)
