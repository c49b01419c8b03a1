"""OData ``$batch`` bodies: multipart/mixed with changesets, both directions, written once.

A batch is a list of parts; a part is one operation (reads only) or a
*changeset*: a list of operations the server applies atomically. The answer
has one part per request part, in order; a changeset that failed comes back
as ONE plain error response instead of its multipart of results (OData v2,
section 2.2.7.6; OData v4's multipart batch format is the same), which is how
a client tells which records to dead-letter. Nothing here knows a system: SAP
Gateway's writes and its emulator use it, and a Dataverse ``$batch`` would.

:func:`encode` / :func:`decode` work on :class:`Message` objects that are
either requests (``method`` and ``target`` set) or responses (``status``
set). Lines end in CRLF; decoding accepts bare LF too.
"""

from __future__ import annotations

__all__ = ["Message", "Part", "encode", "decode", "boundary_of"]

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

_BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)


@dataclass
class Message:
    """One HTTP request or response inside a batch."""

    method: str | None = None
    target: str | None = None          # e.g. "A_SalesOrder('1')" relative to the service
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def ok(self) -> bool:
        """A response with a 2xx status."""
        return 200 <= (self.status or 0) < 300

    def header(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return default


Part = Message | list[Message]


def boundary_of(content_type: str) -> str:
    match = _BOUNDARY.search(content_type or "")
    if match is None:
        raise ValueError(f"multipart content type without boundary: {content_type!r}")
    return match[1]


def _http(message: Message) -> bytes:
    if message.status is not None:
        try:
            reason = HTTPStatus(message.status).phrase
        except ValueError:
            reason = "Status"
        start = f"HTTP/1.1 {message.status} {reason}"
    else:
        start = f"{message.method} {message.target} HTTP/1.1"
    headers = dict(message.headers)
    if message.body:
        headers.setdefault("Content-Length", str(len(message.body)))
    lines = [start, *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    return "\r\n".join(lines).encode() + message.body


def _envelope(payload: bytes) -> bytes:
    return (b"Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            + payload + b"\r\n")


def encode(parts: list[Part], prefix: str = "batch") -> tuple[bytes, str]:
    """The body and the ``Content-Type`` header of a batch request or response."""
    outer = f"{prefix}_{uuid.uuid4().hex}"
    out = bytearray()
    for part in parts:
        out += f"--{outer}\r\n".encode()
        if isinstance(part, list):
            inner = f"changeset_{uuid.uuid4().hex}"
            out += f"Content-Type: multipart/mixed; boundary={inner}\r\n\r\n".encode()
            for message in part:
                out += f"--{inner}\r\n".encode() + _envelope(_http(message))
            out += f"--{inner}--\r\n\r\n".encode()
        else:
            out += _envelope(_http(part))
    out += f"--{outer}--\r\n".encode()
    return bytes(out), f"multipart/mixed; boundary={outer}"


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    """Header lines and the rest, at the first empty line (CRLF or LF)."""
    match = re.search(rb"\r?\n\r?\n", data)
    if match is None:
        return data.decode("utf-8", "replace").splitlines(), b""
    head = data[:match.start()].decode("utf-8", "replace").splitlines()
    return head, data[match.end():]


def _headers(lines: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in lines:
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def _parts(body: bytes, boundary: str) -> list[bytes]:
    delimiter = re.compile(rb"(?:^|\r?\n)--" + re.escape(boundary.encode())
                           + rb"(--)?[ \t]*(?:\r?\n|$)")
    chunks, start, closed = [], None, False
    for match in delimiter.finditer(body):
        if start is not None:
            chunks.append(body[start:match.start()])
        if match[1]:
            closed = True
            break
        start = match.end()
    if not closed:
        raise ValueError("multipart body has no closing delimiter (cut off?)")
    return chunks


def _message(payload: bytes) -> Message:
    head, body = _split_head(payload.lstrip(b"\r\n"))
    if not head:
        raise ValueError("empty HTTP message in batch part")
    start, headers = head[0].split(), _headers(head[1:])
    if start[0].upper().startswith("HTTP/"):
        return Message(status=int(start[1]), headers=headers, body=body)
    if len(start) < 2:
        raise ValueError(f"bad request line in batch part: {head[0]!r}")
    return Message(method=start[0].upper(), target=start[1], headers=headers, body=body)


def decode(body: bytes, content_type: str) -> list[Part]:
    """Parse a batch request or response body into parts (changesets as lists)."""
    parts: list[Part] = []
    for chunk in _parts(body, boundary_of(content_type)):
        head, rest = _split_head(chunk)
        part_type = Message(headers=_headers(head)).header("Content-Type", "")
        if part_type.lower().startswith("multipart/mixed"):
            parts.append([_message(_split_head(inner)[1])
                          for inner in _parts(rest, boundary_of(part_type))])
        else:
            parts.append(_message(rest))
    return parts
