"""The study record: every attribute xtts-tune stores in an Optuna study, with its key, type and default,
defined once (the model: Optuna's ``optuna/storages/_rdb/models.py`` owns its stored schema).

The study is the seam between the torch side (the search writes) and the torch-free side (analysis, report,
export and the CLI read). Nothing outside this package reads or writes a study's or trial's attribute dicts:
writers call :func:`write_trial` / :func:`write_study` / :func:`write_test_comparison` /
:func:`write_confirmation_run`, readers parse with :meth:`TrialRecord.from_trial`,
:meth:`StudyRecord.from_study`, :meth:`TestComparison.from_study`, :meth:`ForgettingSet.from_study` and :func:`read_confirmations`.
No torch here.

>>> from xtts_tune.record import TrialRecord
>>> TrialRecord.from_attrs({"steps": 4, "best_val_loss": "oops"}).best_val_loss is None
True
"""

from xtts_tune.record.forgetting import (
    FORGET_EAR_BASE_KEY,
    FORGETTING_KEY,
    ForgettingSet,
    read_ear_base,
    write_ear_base,
    write_forgetting,
)
from xtts_tune.record.study import (
    CONFIRMATIONS_KEY,
    TEST_COMPARISON_KEY,
    StudyRecord,
    TestComparison,
    read_confirmations,
    stored_study_record,
    write_confirmation_run,
    write_study,
    write_test_comparison,
)
from xtts_tune.record.trial import (
    FULL_DATA,
    LONG_ATTR_PREFIX,
    SampleEntry,
    TrialRecord,
    enqueue_attrs,
    optuna_enqueued,
    retry_attrs,
    write_trial,
    write_trial_attrs,
)

__all__ = [
    "CONFIRMATIONS_KEY",
    "FULL_DATA",
    "FORGETTING_KEY",
    "FORGET_EAR_BASE_KEY",
    "ForgettingSet",
    "LONG_ATTR_PREFIX",
    "TEST_COMPARISON_KEY",
    "SampleEntry",
    "StudyRecord",
    "TestComparison",
    "TrialRecord",
    "enqueue_attrs",
    "optuna_enqueued",
    "read_confirmations",
    "retry_attrs",
    "stored_study_record",
    "write_confirmation_run",
    "read_ear_base",
    "write_ear_base",
    "write_forgetting",
    "write_study",
    "write_test_comparison",
    "write_trial",
    "write_trial_attrs",
]
