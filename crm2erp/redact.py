"""Keep the project's own credentials out of logs, messages and tracebacks.

Only *our* secrets are masked: the values registered with
:func:`register_secret` (every secret setting of ``connections.yaml`` and the
environment variables behind them, tokens the connectors obtain, the state
store password) and credentials written into URLs (``user:password@`` and
``?password=``/``token=``-style query parameters). Business data is never
rewritten: a CRM note saying ``password=hunter2`` is data, and dead letters,
conflicts and the target keep it exactly as read.
"""

from __future__ import annotations

__all__ = ["register_secret", "add_secret_listener", "redact", "redact_traceback",
           "is_secret_name", "RedactingFilter"]

import logging
import re
import threading
import traceback
from collections.abc import Callable

_lock = threading.Lock()
_secrets: set[str] = set()
_listeners: list[Callable[[str], None]] = []
_MASK = "***"
# setting names whose value is a credential (connections.yaml keys, query parameters)
_SECRET_NAME = re.compile(
    r"(?i)(?:^|[_.-])(?:password|passwd|pwd|secret|token|api[_-]?key|apikey|"
    r"authorization|(?:private|secret|access)[_-]?key|signature|sig)$")
# user:password@ in URLs
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"<>]+:)([^@\s/'\"<>]+)(@)")
# ?password=... / &api_key=... inside a URL: the parameter name says it is a credential
_URL_PARAM = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s?#'\"<>]*\?[^\s#'\"<>]*)")
_QUERY_PAIR = re.compile(r"(?i)([?&;]([^=&;#\s]+)=)([^&;#\s]*)")


def is_secret_name(name: str) -> bool:
    """Whether a setting or parameter called ``name`` holds a credential."""
    return bool(_SECRET_NAME.search(str(name)))


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` masks it everywhere."""
    if not isinstance(value, str) or len(value) < 4:
        return
    with _lock:
        new = value not in _secrets
        _secrets.add(value)
        listeners = list(_listeners)
    for listener in listeners if new else ():
        listener(value)


def add_secret_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener`` with every secret registered so far and from now on
    (Airflow's log masker is fed this way)."""
    with _lock:
        if listener in _listeners:
            return
        _listeners.append(listener)
        known = list(_secrets)
    for value in known:
        listener(value)


def _mask_query(match: re.Match[str]) -> str:
    return _QUERY_PAIR.sub(
        lambda m: m.group(1) + _MASK if is_secret_name(m.group(2)) and m.group(3)
        else m.group(0), match.group(1))


def redact(text: str) -> str:
    """``text`` with registered secrets and URL credentials masked; nothing else changes."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, _MASK)
    text = _URL_PASSWORD.sub(rf"\1{_MASK}\3", text)
    return _URL_PARAM.sub(_mask_query, text)


def redact_traceback(exc: BaseException) -> str:
    """The formatted traceback of ``exc`` (with its causes), redacted."""
    return redact("".join(traceback.format_exception(exc)))


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact_traceback(record.exc_info[1]).rstrip("\n")
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
