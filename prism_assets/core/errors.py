"""One line for an operator: what failed (the catalog database, S3, a file, the Dagster storage) and
the first line of why, never a password and never a traceback (the CLI's `--debug` shows those).

`describe(exc)` is for exceptions caught in this process (the CLI's last resort); `error_info_line`
is for a step's failure as Dagster records it (`SerializableErrorInfo`), where the cause of a
retried or wrapped error is what matters ("Exceeded max_retries of 3" names no culprit).
"""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*):[^@/\s]*@", re.I)
# exceptions that only wrap the one that explains the failure
_WRAPPERS = ("RetryRequestedFromPolicy", "DagsterExecutionStepExecutionError", "DagsterExecutionHandleOutputError",
             "DagsterExecutionLoadInputError", "DagsterUserCodeExecutionError", "DagsterExecutionResourceInitError")
_WHERE = {"DagsterExecutionHandleOutputError": "storing the output", "DagsterExecutionLoadInputError": "loading an input"}


class CatalogError(RuntimeError):
    """The catalog database failed (unreachable, refused, timed out): the message names it (password hidden)."""


def scrub(text: str) -> str:
    """Passwords in URLs (scheme://user:password@host) hidden."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}:***@", text)


def first_line(text: str, limit: int = 500) -> str:
    lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
    return scrub(lines[0] if lines else "")[:limit]


def describe(exc: BaseException) -> str:
    """One line for any exception: its kind of failure, then its first line."""
    chain = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    for e in chain:
        if isinstance(e, CatalogError):
            return first_line(e)
    for e in chain:
        mod = type(e).__module__ or ""
        name = type(e).__name__
        if mod.startswith("sqlalchemy"):
            orig = getattr(e, "orig", None)
            return f"database error ({name}): {first_line(orig if orig is not None else e)}"
        if mod.startswith(("botocore", "boto3", "s3transfer")):
            return f"S3 error ({name}): {first_line(e) or name}"
    for e in chain:
        if isinstance(e, OSError) and (e.filename or e.strerror):
            where = f" {e.filename}" if e.filename else ""
            return f"{e.strerror or type(e).__name__}:{where}".rstrip(":")
    text = first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def error_info_line(info) -> str:
    """The first line of a Dagster `SerializableErrorInfo`, past the errors that only wrap the culprit."""
    where = ""
    seen = 0
    while info is not None and seen < 10:
        seen += 1
        cause = info.cause or info.context
        if info.cls_name in _WRAPPERS and cause is not None:
            where = where or _WHERE.get(info.cls_name, "")
            info = cause
            continue
        line = first_line(info.message)
        own = f"{info.cls_name}: "
        if line.startswith("prism_assets.") and own in line:  # Prism's own errors name what failed already
            line = line.split(own, 1)[1]
        return f"{where}: {line}" if where else line
    return "step failed"
