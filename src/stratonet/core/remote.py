"""Remote inputs (fsspec URLs): storage options, bounded retries and one-line errors that tell "not found" from
"cannot reach".

- ``s3://`` is read anonymously (the Cell Painting Gallery is public) unless ``STRATONET_S3_ANON=0``; an S3-compatible
  endpoint (MinIO, a moto server, a local mirror) is taken from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``.
- Network failures (connection refused, DNS, timeouts, 5xx/429 replies) are retried ``STRATONET_RETRIES`` times in all
  (default 3) with a short exponential back-off, then reported as ``cannot reach HOST``. A missing object (404) is
  reported as ``not found`` at once.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit

from stratonet.core.errors import InputFileError

URL_SCHEMES = ("s3://", "gs://", "http://", "https://", "memory://", "file://", "az://", "abfs://")
T = TypeVar("T")

# HTTP statuses worth a retry: the server is overloaded or a proxy timed out.
_TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


def is_url(path: object) -> bool:
    """True when ``path`` is an fsspec URL (``s3://``, ``https://``, ...) rather than a local path."""
    return isinstance(path, str) and path.startswith(URL_SCHEMES)


def host_of(url: str) -> str:
    """The host (and port) a URL points at; for ``s3://`` with a custom endpoint, the endpoint's host."""
    if url.startswith("s3://"):
        endpoint = s3_endpoint()
        if endpoint:
            return urlsplit(endpoint).netloc or endpoint
        return "s3.amazonaws.com (bucket " + (urlsplit(url).netloc or "?") + ")"
    return urlsplit(url).netloc or url


def s3_endpoint() -> str | None:
    """The S3 endpoint URL from ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL`` (None: AWS itself)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def storage_options(url: str) -> dict:
    """fsspec keyword arguments for a URL (anonymous S3, custom endpoint, HTTP timeouts)."""
    if url.startswith("s3://"):
        opts: dict = {"anon": os.environ.get("STRATONET_S3_ANON", "1") != "0"}
        endpoint = s3_endpoint()
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        return opts
    if url.startswith(("http://", "https://")):
        timeout = float(os.environ.get("STRATONET_NET_TIMEOUT", "60"))
        return {"client_kwargs": {"timeout": _aiohttp_timeout(timeout)}}
    return {}


def _aiohttp_timeout(seconds: float):
    import aiohttp

    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


def _causes(exc: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    return chain


def _status(exc: BaseException) -> int | None:
    """HTTP status carried by an aiohttp or botocore error, if any."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(code) if code else None
    return None


def classify_error(exc: BaseException) -> str:
    """``"network"`` (host unreachable, DNS, timeout, 5xx), ``"not_found"`` (404 or missing object),
    ``"denied"`` (401/403) or ``"other"``."""
    names = {type(c).__name__ for c in _causes(exc)}
    for c in _causes(exc):
        status = _status(c)
        if status == 404:
            return "not_found"
        if status in (401, 403):
            return "denied"
        if status in _TRANSIENT_STATUS:
            return "network"
        if isinstance(c, (ConnectionError, socket.gaierror, socket.timeout, TimeoutError, asyncio.TimeoutError)):
            return "network"
    network_names = {"ClientConnectorError", "ClientConnectorDNSError", "ServerDisconnectedError", "ClientOSError",
                     "ServerTimeoutError", "ConnectionTimeoutError", "SocketTimeoutError", "EndpointConnectionError",
                     "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"}
    if names & network_names:
        return "network"
    if any(isinstance(c, FileNotFoundError) for c in _causes(exc)):
        return "not_found"
    if any(isinstance(c, PermissionError) for c in _causes(exc)):
        return "denied"
    return "other"


def _retries() -> int:
    try:
        return max(1, int(os.environ.get("STRATONET_RETRIES", "3")))
    except ValueError:
        return 3


def with_retries(url: str, action: Callable[[], T], what: str = "read") -> T:
    """Run ``action`` (an fsspec call on ``url``), retrying network errors a bounded number of times.

    Raises
    ------
    InputFileError
        ``cannot reach HOST`` after the last failed attempt at a network error, ``not found`` for a missing object,
        ``access denied`` for 401/403, ``cannot <what>`` otherwise; the message names the URL.
    """
    attempts = _retries()
    for attempt in range(attempts):
        try:
            return action()
        except InputFileError:
            raise
        except Exception as exc:
            kind = classify_error(exc)
            if kind == "network" and attempt + 1 < attempts:
                time.sleep(min(0.25 * 2 ** attempt, 4.0))
                continue
            if kind == "network":
                raise InputFileError(url, f"cannot reach {host_of(url)} after {attempts} attempt(s) "
                                          f"({_short(exc)})") from exc
            if kind == "not_found":
                raise InputFileError(url, "file not found") from exc
            if kind == "denied":
                raise InputFileError(url, "access denied (for public s3 data no credentials are needed; "
                                          "STRATONET_S3_ANON=0 uses yours)") from exc
            raise InputFileError(url, f"cannot {what} ({_short(exc)})") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _short(exc: BaseException) -> str:
    """The innermost cause, one line: what actually went wrong on the wire."""
    inner = _causes(exc)[-1]
    text = str(inner).splitlines()[0] if str(inner) else ""
    return f"{type(inner).__name__}: {text}" if text else type(inner).__name__


def read_bytes(url: str) -> bytes:
    """The whole content of a remote file (see :func:`with_retries` for the errors)."""
    import fsspec

    def action() -> bytes:
        with fsspec.open(url, "rb", **storage_options(url)) as fh:
            return fh.read()

    return with_retries(url, action, "read")


def exists(url: str) -> bool:
    """True when a remote file exists, False when the server says it does not; network errors raise."""
    import fsspec

    def action() -> bool:
        fs, path = fsspec.core.url_to_fs(url, **storage_options(url))
        fs.info(path)
        return True

    try:
        return with_retries(url, action, "check")
    except InputFileError as exc:
        if exc.reason == "file not found":
            return False
        raise


def parent_url(url: str) -> str:
    """``s3://bucket/a/b.csv`` -> ``s3://bucket/a`` (the folder relative paths in a remote table refer to)."""
    head, _, _ = url.rstrip("/").rpartition("/")
    return head
