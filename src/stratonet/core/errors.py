"""User-facing errors.

Every error caused by bad input derives from :class:`StratoNetError`. The CLI prints its message on one line
and exits non-zero; it never dumps a traceback for these.
"""

from __future__ import annotations


class StratoNetError(Exception):
    """Base class for errors the user can fix (bad input, bad options)."""

    exit_code = 2


class _PathError(StratoNetError):
    """An error about one file: the message is ``<path>: <reason>``."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class InputFileError(_PathError):
    """A file is missing, unreadable or corrupt. The message names the file."""


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


class OutputError(_PathError):
    """An output cannot be written: read-only location, permission denied, full disk or quota. Names the file."""


# errno -> what to tell the user; the message names the file and suggests the fix
_STORAGE_REASONS = {
    "ENOSPC": "no space left on device (free space or write elsewhere; a rerun resumes)",
    "EDQUOT": "disk quota exceeded (free space or write elsewhere; a rerun resumes)",
    "EROFS": "read-only file system (choose a writable --out)",
    "EACCES": "permission denied",
    "EPERM": "operation not permitted",
    "EISDIR": "is a folder, expected a file",
    "ENOTDIR": "a part of the path is a file, not a folder",
    "ENAMETOOLONG": "file name too long",
    "EIO": "input/output error (failing disk or network share)",
}
_STORAGE_TEXT = {"no space left on device": "ENOSPC", "disk quota exceeded": "EDQUOT",
                 "read-only file system": "EROFS", "permission denied": "EACCES"}


def storage_reason(exc: BaseException) -> str | None:
    """A one-line reason for a file-system error (full disk, read-only, permission), or None for other errors.

    Works for Python's ``OSError`` (by errno) and for pyarrow's, which often carry the text but no errno.
    """
    import errno as _errno

    if not isinstance(exc, OSError):
        return None
    name = _errno.errorcode.get(exc.errno or -1)
    if name in _STORAGE_REASONS:
        return _STORAGE_REASONS[name]
    text = str(exc).lower()
    for needle, code in _STORAGE_TEXT.items():
        if needle in text:
            return _STORAGE_REASONS[code]
    return None
