"""What every connector's error table starts from: the request an answer is for,
the answer's JSON body when it has one (from the answer or from its bytes), the
text of one that is not in the system's error format; the exceptions of a refused
request and of a used-up quota; and ``check()`` over every stream and over every
part of one, and the names a system lacks."""

from __future__ import annotations

__all__ = ["check_streams", "error_body", "json_or_none", "missing_names", "problems_of",
           "quota_used_up", "refused", "request_line", "status_text"]

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from crm2erp.errors import BudgetExhaustedError, ConfigError


def request_line(resp: requests.Response) -> str:
    """``"PATCH /api/data/v9.2/accounts(...)"``: the method and (decoded) path ``resp``
    answers, for error messages."""
    method = resp.request.method if resp.request is not None else "GET"
    return f"{method} {unquote(urlsplit(resp.url).path)}"


def error_body(resp: requests.Response) -> Any:
    """The decoded JSON body of ``resp``, or None when it is not JSON."""
    try:
        return resp.json()
    except ValueError:
        return None


def json_or_none(content: bytes | str | None) -> Any:
    """The decoded JSON of an answer's body (``resp.content``), or None when it is empty
    or not JSON: an error body read where only its bytes are at hand."""
    try:
        return json.loads(content or b"null")
    except ValueError:
        return None


def status_text(status: int, content: bytes | str | None) -> str:
    """``"HTTP 502: <the body's first 300 characters>"`` (``no body`` when empty): the
    reason of an error answer the system's error format does not explain."""
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content or "")
    return f"HTTP {status}: {text.strip()[:300] or 'no body'}"


def refused(system: str, resp: requests.Response, problem: str, hint: str = "", *,
            error: type[Exception] = ConfigError) -> Exception:
    """``error("<system> refused <request line>: <problem><hint>")``: a request the system
    refused for what it names (a ConfigError: the configuration must change; a
    FatalError: something else the user must fix)."""
    return error(f"{system} refused {request_line(resp)}: {problem}{hint}")


def quota_used_up(system: str, what: str, then: str, *,
                  error: type[Exception] = BudgetExhaustedError) -> Exception:
    """``error("<system>: <what>. Nothing was lost: the watermark stays at the last
    committed batch<then>")``: the run stops on a used-up quota, and the engine keeps
    the watermark of the last committed batch, so the next run resumes there."""
    return error(f"{system}: {what}. Nothing was lost: the watermark stays at the last "
                 f"committed batch{then}")


def check_streams(system: str, streams: Mapping[str, Any],
                  problem_of: Callable[[Any], str | None], hint: str = "") -> None:
    """``problem_of(stream)`` for every stream, not the first only (a ConfigError it
    raises is that stream's problem); one ConfigError naming them all, then ``hint``."""
    problems = [f"stream {name!r}: {problem}" for name, stream in streams.items()
                if (problem := _problem(problem_of, stream))]
    if problems:
        raise ConfigError(f"{system} connection: " + "; ".join(problems) + hint)


def problems_of(parts: Iterable[Any], problem_of: Callable[[Any], str | None]) -> str | None:
    """``problem_of(part)`` for every one of ``parts`` (a stream's models, DocTypes...), not
    the first only (a ConfigError it raises is that part's problem), joined by ``"; "``;
    None when none has one."""
    return "; ".join(p for part in parts if (p := _problem(problem_of, part))) or None


def missing_names(owner: str, kind: str, wanted: Iterable[str],
                  known: Collection[str]) -> str | None:
    """``"<owner> has no <kind> a, b"`` naming, sorted and once each, the ``wanted`` names
    that are not ``known`` (``"companies has no properties colour"``); None when none is
    missing."""
    missing = sorted({name for name in wanted if name not in known})
    return f"{owner} has no {kind} {', '.join(missing)}" if missing else None


def _problem(problem_of: Callable[[Any], str | None], item: Any) -> str | None:
    try:
        return problem_of(item)
    except ConfigError as exc:
        return str(exc)
