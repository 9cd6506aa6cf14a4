"""Errors a user can cause, each ending in one line on stderr and an exit code."""


class MlopsError(Exception):
    """Base class: the message is shown to the user as one line, without a traceback."""

    exit_code = 1


class UsageError(MlopsError):
    """Bad params, command-line arguments or input files (exit 2)."""

    exit_code = 2


class CheckFailed(MlopsError):
    """Data or a model failed a check that the pipeline enforces (exit 1)."""

    exit_code = 1


def shorten(value: object, limit: int = 60) -> str:
    """``value`` as text, cut to ``limit`` characters plus "..." so that an error line
    quoting user input stays one short line, whatever the input's size."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}..."
