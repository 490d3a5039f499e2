"""The one exception users see: a one-line message that names the file, key or thing at fault.

The CLI prints `error: <message>` for it and exits non-zero, with no traceback unless
SELFALIGN_DEBUG=1. Anything else escaping is a bug and keeps its traceback.
"""


class SelfAlignError(Exception):
    """A user-facing error: bad input, bad configuration, a model that cannot be loaded."""


def first_line(error: BaseException) -> str:
    """A library error's first line (they can span many): ValueError("a\nb") -> 'a'."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
