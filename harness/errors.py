"""The project's exceptions.

`InputError` is the user's fault (a file, field or flag is wrong): the CLI prints it as one
``error:`` line and exits 2. Anything else that escapes is a bug and keeps its traceback.
Bad *model output* is never an exception: it is data (violations, ``end_reason``).
"""


class ThreadweaverError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(ThreadweaverError):
    """Bad input: say where (file:line, field or flag), what was expected, what was got."""


class CheckFailed(ThreadweaverError):
    """A check ran and failed (for example a regression gate): exit code 1."""
