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
    """``repr(value)`` on one line, cut to about ``limit`` characters with the full size noted.

    A field of 5 MB becomes ``'aaaa...' (5,000,000 characters)``, not a 5 MB message.
    """
    text = _one_line(repr(value))
    if len(text) <= limit:
        return text
    keep = max(limit - 5, 1)
    if isinstance(value, str | bytes) and text[-1:] in ("'", '"'):
        unit = "characters" if isinstance(value, str) else "bytes"
        return f"{text[:keep]}...{text[-1]} ({len(value):,} {unit})"
    if isinstance(value, list | tuple | dict | set | frozenset):
        return f"{text[:keep]}... ({len(value):,} items)"
    return f"{text[:keep]}... ({len(text):,} characters)"


def clip(value: object, limit: int = 60) -> str:
    """``str(value)`` cut to ``limit`` characters plus "...": a name or detail in a message."""
    text = _one_line(str(value))
    return text if len(text) <= limit else f"{text[:limit]}..."


def one_line(message: str, limit: int = 500) -> str:
    """``message`` with its line breaks replaced, cut to ``limit`` characters: what is printed."""
    text = _one_line(message)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
