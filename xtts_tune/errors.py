"""The one base class of user mistakes.

Every error that a user can fix (a misspelled YAML key, a missing wav, a base folder without ``dvae.pth``, a
study that does not exist, ...) derives from :class:`UserError`. Its message is one line that names the file
and the fix; the command line prints it as ``error: <message>`` and exits with status 2. Anything else is a
bug and keeps its traceback.

>>> from xtts_tune.errors import UserError
>>> from xtts_tune.config import ConfigError
>>> issubclass(ConfigError, UserError)
True
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake the user can fix; the message is one line naming the file (or key) and the fix."""
