"""User-facing errors: one clear line naming the path or value that is wrong."""

from __future__ import annotations


class FsadError(Exception):
    """An error the user can fix (bad path, bad value, bad layout).

    The CLI prints ``str(error)`` as a single line and exits with status 2, without a
    traceback. Library callers can catch it like any exception.
    """


class DataError(FsadError, ValueError):
    """A dataset folder, image file or few-shot request that cannot be used."""


class ConfigError(FsadError, ValueError):
    """A configuration value (backbone, resolution, method, ...) that is not valid."""
