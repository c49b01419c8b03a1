"""Value types of configuration files, shared by the core and the connectors.

The strict base of every connector's config, IANA time-zone names and durations
(``30s``, ``5m``, ``2h``, ``1d``) are written once here; the flow model
(:mod:`crm2erp.mapping.models`), the store's lock lease and connector configs
use them. :mod:`crm2erp.contract` re-exports :class:`ConnectorConfig` and
:data:`TimeZoneName` with the rest of the connector contract.
"""

from __future__ import annotations

__all__ = ["ConnectorConfig", "TimeZoneName", "Duration", "parse_duration"]

import datetime as dt
import re
import zoneinfo
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema


class ConnectorConfig(BaseModel):
    """Base for connector configs: validated at the edge, unknown keys refused."""

    model_config = ConfigDict(extra="forbid")


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name "
                         "such as UTC or Europe/Berlin") from None
    return value


#: A config field naming an IANA time zone, checked when the config is loaded.
TimeZoneName = Annotated[str, AfterValidator(_known_zone)]

_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> dt.timedelta:
    """``"30s"``, ``"5m"``, ``"2h"``, ``"1d"`` or seconds as a number, to a timedelta.

    Raises ValueError naming the value otherwise (pydantic reports it at the
    field's position).
    """
    if isinstance(value, dt.timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return dt.timedelta(seconds=value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a duration like '30s', '5m', '2h' or '1d', got {value!r}")
    return dt.timedelta(seconds=int(match.group(1)) * _SECONDS[match.group(2)])


#: A config field holding a duration.
Duration = Annotated[
    dt.timedelta,
    BeforeValidator(parse_duration),
    WithJsonSchema({"type": "string", "pattern": r"^\s*\d+\s*[smhd]\s*$"}),
]
