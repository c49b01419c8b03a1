"""Config types every API connector shares: one strict base, one URL type, one
name type, one stream-name check, one ``children`` form and its check, and a
retired setting refused or dropped with a warning.

Durations (``parse_duration``) and dict merging (``deep_merge``) are core
concerns (flow schedules, lookbacks, connection overrides): connectors use the
engine's, never a copy.
"""

from __future__ import annotations

__all__ = ["ChildConfig", "ChildList", "StrictModel", "WebUrl", "check_children",
           "check_stream_names", "children_as_dict", "name_type", "retired_setting",
           "selected_names", "web_url"]

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationInfo

from crm2erp.connectors.base import ConnectorConfig

#: the strict base (unknown keys refused) for a connector's nested models too
StrictModel = ConnectorConfig

log = logging.getLogger(__name__)
_URL = re.compile(r"^https?://[^/\s]+")
_STREAM_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def web_url(example: str) -> Any:
    """A ``str`` field holding an http(s) URL, trailing ``/`` removed; ``example`` is
    shown when a value is not one: ``base_url: web_url("https://api.example.com")``."""

    def check(value: str, info: ValidationInfo) -> str:
        if not _URL.match(value):
            raise ValueError(f"{info.field_name} must look like {example}")
        return value.rstrip("/")

    return Annotated[str, AfterValidator(check)]


#: an http(s) URL without a particular example
WebUrl = web_url("https://host.example.com")


def name_type(pattern: re.Pattern[str], what: str) -> Any:
    """A ``str`` field that must match ``pattern`` (an API's name for an object or
    field): ``ApiName = name_type(_NAME, "a Salesforce API name (letters, digits, _)")``."""

    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return Annotated[str, AfterValidator(check)]


def selected_names(names: list[str], needed: Iterable[str | None], pattern: re.Pattern[str],
                   problem: Callable[[list[str]], str], also: Iterable[str] = ()) -> list[str]:
    """A stream's list of fields to read: each of ``names`` (and ``also``) must match
    ``pattern`` (else a ValueError saying ``problem(bad)``); the ``needed`` ones (key,
    cursor, external id; ``None`` skipped) are added; repeats dropped, order kept."""
    bad = [n for n in [*names, *also] if not pattern.match(n)]
    if bad:
        raise ValueError(problem(bad))
    return list(dict.fromkeys([*names, *(n for n in needed if n)]))


def children_as_dict(value: Any) -> Any:
    """``[stream, ...]`` is short for ``{stream: {stream: stream}, ...}``."""
    if isinstance(value, list):
        return {name: {"stream": name} for name in value}
    return value


#: ``children: Annotated[dict[str, ChildConfig], ChildList]`` also takes a list of names
ChildList = BeforeValidator(children_as_dict)


class ChildConfig(StrictModel):
    """Records of ``stream`` related to the parent, embedded as a list."""

    stream: str


def check_stream_names(streams: Mapping[str, Any]) -> None:
    """Stream names are identifiers (they appear in flows, state and dead letters)."""
    for name in streams:
        if not _STREAM_NAME.match(name):
            raise ValueError(f"stream name {name!r} must be letters, digits and _")


def check_children(streams: Mapping[str, Any],
                   foreign_key: Callable[[Any, Any], str] | None = None) -> None:
    """Each stream's ``children`` name other configured streams (and the names are valid);
    with ``foreign_key(parent, child)``, that field is added to the child stream's
    ``fields`` (it is read to group children under their parents)."""
    check_stream_names(streams)
    for name, stream in streams.items():
        for embed, child in stream.children.items():
            if child.stream == name:
                raise ValueError(f"stream {name!r} cannot embed itself")
            if child.stream not in streams:
                raise ValueError(f"stream {name!r}: child {embed!r} names stream "
                                 f"{child.stream!r}, which is not configured (streams: "
                                 f"{', '.join(sorted(streams))})")
    if foreign_key:
        for stream in streams.values():
            for child in stream.children.values():
                fields = streams[child.stream].fields
                key = foreign_key(stream, child)
                if key not in fields:
                    fields.append(key)


def retired_setting(data: Any, name: str, message: str, *, refuse: bool,
                    logger: logging.Logger = log) -> Any:
    """A connection's raw settings (a ``mode="before"`` validator's input) without the
    retired setting ``name``: when it is there, a ValueError saying ``message``
    (``refuse``), or ``message`` logged as a warning on ``logger`` and the setting
    dropped. Anything else is returned as it is."""
    if not isinstance(data, dict) or name not in data:
        return data
    if refuse:
        raise ValueError(message)
    logger.warning(message)
    return {key: value for key, value in data.items() if key != name}
