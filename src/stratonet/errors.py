"""User-facing errors.

Every error caused by bad input derives from :class:`StratoNetError`. The CLI prints its message on one line
and exits non-zero; it never dumps a traceback for these.
"""

from __future__ import annotations


class StratoNetError(Exception):
    """Base class for errors the user can fix (bad input, bad options)."""

    exit_code = 2


class InputFileError(StratoNetError):
    """A file is missing, unreadable or corrupt. The message names the file."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SiteError(StratoNetError):
    """A site cannot be processed (missing channel, size mismatch, unreadable image).

    The message names the site as ``plate/well/site``.
    """

    def __init__(self, site: str, reason: str):
        self.site = site
        self.reason = reason
        super().__init__(f"site {site}: {reason}")


class ConfigError(StratoNetError):
    """An invalid option or configuration file."""


class NotAvailableError(StratoNetError):
    """A feature that this version does not provide yet."""

    exit_code = 3
