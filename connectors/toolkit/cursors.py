"""A cursor field in the format an API writes it, read and written once.

APIs stamp changes in many forms: ISO-8601 text, Unix seconds or
milliseconds, a sequence or version number, or local time text in a pattern
of their own (``"01.07.2025 10:30"`` in Europe/Berlin). :class:`CursorCodec`
turns each value read into a position that compares correctly (ISO-8601 UTC
text with microseconds, or a number) and the engine's watermark back into
the API's own format for the "changes since" request parameter.
:class:`CursorConfig` is how a connection declares it.
"""

from __future__ import annotations

__all__ = ["CursorCodec", "CursorConfig"]

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from crm2erp.connectors.base import Cursor, TimeZoneName
from crm2erp.connectors.toolkit.config import StrictModel
from crm2erp.connectors.toolkit.timestamps import utc_instant
from crm2erp.errors import FatalError

_ISO_OUT = "%Y-%m-%dT%H:%M:%S.%fZ"


class CursorConfig(StrictModel):
    """The field that orders changes, and how to ask the API for changes since a value.

    ``format``: ``iso`` (ISO-8601), ``epoch`` / ``epoch_ms`` (Unix time),
    ``number`` (a sequence or version number), or a ``strftime`` pattern such as
    ``"%Y-%m-%d %H:%M:%S"``. Naive times are read in ``timezone``. ``param`` is
    the query parameter that filters by the cursor (left out: every read lists
    everything and the connector filters). Set ``exclusive: true`` when the
    API filters with ``>`` instead of ``>=``.
    """

    field: str
    param: str | None = None
    format: str = "iso"
    timezone: TimeZoneName = "UTC"
    exclusive: bool = False


class CursorCodec:
    """Parse an API's cursor values and format the ``since`` request parameter."""

    def __init__(self, conf: CursorConfig):
        self.conf = conf
        self.zone = zoneinfo.ZoneInfo(conf.timezone)   # checked by the config

    @property
    def numeric(self) -> bool:
        return self.conf.format == "number"

    def _moment(self, value: Any) -> dt.datetime:
        fmt = self.conf.format
        if isinstance(value, dt.datetime):
            moment = value
        elif fmt in ("epoch", "epoch_ms"):
            seconds = float(value) / (1000 if fmt == "epoch_ms" else 1)
            return dt.datetime.fromtimestamp(seconds, dt.UTC)
        elif fmt == "iso":
            return utc_instant(value, zone=self.zone, error=ValueError)
        else:
            moment = dt.datetime.strptime(str(value).strip(), fmt)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        return moment.astimezone(dt.UTC)

    def position(self, value: Any) -> Any:
        """A record's cursor value as the comparable, JSON-friendly cursor value."""
        if value in (None, ""):
            return None
        try:
            if self.numeric:
                number = Decimal(str(value))
                return int(number) if number == number.to_integral_value() else float(number)
            return self._moment(value).strftime(_ISO_OUT)
        except (ValueError, ArithmeticError):
            raise FatalError(f"cursor field {self.conf.field!r} value {value!r} does not "
                             f"match format {self.conf.format!r}; fix cursor.format") from None

    def since_position(self, cursor: Cursor) -> Any:
        """The engine's cursor (ISO-8601 or a number) as a comparable position."""
        if self.numeric:
            return self.position(cursor.value)
        return utc_instant(cursor.value, "cursor").strftime(_ISO_OUT)

    def param(self, cursor: Cursor) -> Any:
        """``cursor`` in the API's own format, for the request parameter."""
        if self.numeric:
            value = Decimal(str(cursor.value))
            return value - 1 if self.conf.exclusive else value
        moment = utc_instant(cursor.value, "cursor")
        if self.conf.exclusive:
            moment -= dt.timedelta(seconds=1)
        fmt = self.conf.format
        if fmt == "epoch":
            return int(moment.timestamp())
        if fmt == "epoch_ms":
            return int(moment.timestamp() * 1000)
        if fmt == "iso":
            return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        # the API compares in its own zone and resolution: round down to stay inclusive
        return moment.astimezone(self.zone).replace(tzinfo=None, microsecond=0).strftime(fmt)
