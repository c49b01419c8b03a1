"""Keep secrets out of logs, reports, dead letters and exception messages."""

from __future__ import annotations

__all__ = ["register_secret", "redact", "RedactingFilter"]

import logging
import re
import threading

_lock = threading.Lock()
_secrets: set[str] = set()
_MASK = "***"
# key=value / "key": "value" pairs whose key says it is a secret
_SECRET_PAIR = re.compile(
    r"(?i)((?:password|passwd|secret|token|api[_-]?key|authorization|client_secret)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\"'\s&,;}]+)"
)
# user:password@ in URLs
_URL_PASSWORD = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s]+)(@)")


def register_secret(value: str | None) -> None:
    """Remember a secret value so that :func:`redact` masks it everywhere."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """Return ``text`` with registered secrets and secret-looking pairs masked."""
    if not text:
        return text
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, _MASK)
    text = _URL_PASSWORD.sub(rf"\1{_MASK}\3", text)
    return _SECRET_PAIR.sub(rf"\1{_MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's rendered message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
