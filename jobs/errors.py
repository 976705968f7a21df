"""Errors that end a run with a one-line message instead of a traceback."""


class UsageError(Exception):
    """Bad arguments or configuration; nothing was written (exit 2)."""


class RunError(Exception):
    """The run could not complete; nothing was half-written and a rerun is safe (exit 1)."""
