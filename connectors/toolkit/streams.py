"""The config bases of an API connector's streams and of its connection.

A stream of an API connector reads deletions on incremental reads
(``track_deletes``) and may embed other streams' rows (``children``); a
connection holds ``streams`` whose children must name configured streams and
whose foreign keys are read with the child stream's fields. Written once here
on :mod:`~crm2erp.connectors.toolkit.config`::

    class StreamConfig(ApiStreamConfig[KeyedChildConfig]):
        sobject: ApiName
        fields: list[str]

    class SalesforceConfig(ApiConnectionConfig):
        child_key = "{sobject}Id"   # a child's foreign key unless it names one
        streams: dict[str, StreamConfig] = Field(
            default_factory=StreamConfig.defaults(DEFAULT_STREAMS))
"""

from __future__ import annotations

__all__ = ["ApiConnectionConfig", "ApiStreamConfig", "KeyedChildConfig", "NamedStreamsConfig",
           "default_streams", "over_defaults"]

import copy
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, Field, model_validator

from crm2erp.connectors.toolkit.config import (
    ChildConfig,
    ChildList,
    StrictModel,
    check_children,
    check_stream_names,
)
from crm2erp.http.config import HttpConnectionConfig

Child = TypeVar("Child", bound=ChildConfig)
Stream = TypeVar("Stream", bound="ApiStreamConfig")


class KeyedChildConfig(ChildConfig):
    """Rows of ``stream`` whose ``foreign_key`` field holds their parent's id; None: the
    connector's default (its ``foreign_key(parent, child)``)."""

    foreign_key: str | None = Field(None, description="Field of the child holding the "
                                    "parent's id; empty: the connector's default.")


class ApiStreamConfig(StrictModel, Generic[Child]):
    """What every API stream has besides its object and fields: deletions read on
    incremental reads, and other streams' rows embedded (a list of stream names
    embeds each under its own name)."""

    track_deletes: bool = Field(True, description="Read deletions on incremental reads "
                                "(the connector's page says where the API keeps them).")
    children: Annotated[dict[str, Child], ChildList] = Field(default_factory=dict)

    @classmethod
    def defaults(cls: type[Stream], specs: Mapping[str, Mapping[str, Any]]
                 ) -> Callable[[], dict[str, Stream]]:
        """The ``default_factory`` of a connection's ``streams``: each of ``specs``
        validated as this model (fresh per connection: one config's changes never
        reach another)."""
        return default_streams(cls, specs)


class NamedStreamsConfig(HttpConnectionConfig):
    """An HTTP connection with ``streams`` (declared by the subclass) whose names are
    identifiers (they appear in flows, state and dead letters); for streams without
    ``children`` to check (:class:`ApiConnectionConfig` checks both)."""

    streams: Mapping[str, Any]

    @model_validator(mode="after")
    def _stream_names(self) -> NamedStreamsConfig:
        check_stream_names(self.streams)
        return self


class ApiConnectionConfig(HttpConnectionConfig):
    """An HTTP connection with ``streams`` (declared by the subclass): stream names are
    identifiers and each child names another configured stream. Where children are
    read by foreign key (``child_key`` set), each child's key is added to its stream's
    fields."""

    #: the default foreign key of a child, formatted with its parent stream's settings
    #: (``"{sobject}Id"``: ``OpportunityId``); None: children are not read by foreign key
    child_key: ClassVar[str | None] = None
    streams: Mapping[str, Any]

    @model_validator(mode="after")
    def _children_exist(self) -> ApiConnectionConfig:
        check_children(self.streams, self.foreign_key if self.child_key else None)
        return self

    def foreign_key(self, parent: Any, child: KeyedChildConfig) -> str:
        """The field of ``child``'s stream naming its parent: the one it names, else
        ``child_key`` for ``parent``."""
        return child.foreign_key or str(self.child_key).format_map(vars(parent))


def default_streams(model: type[BaseModel],
                    specs: Mapping[str, Mapping[str, Any]]) -> Callable[[], dict[str, Any]]:
    """The ``default_factory`` of a connection's ``streams`` for any stream model (not
    only :class:`ApiStreamConfig`): every one of ``specs`` validated as ``model``, anew
    for each connection."""
    return lambda: {name: model.model_validate(spec) for name, spec in specs.items()}


def over_defaults(data: Any, specs: Mapping[str, Mapping[str, Any]]) -> Any:
    """A connection's raw settings (a ``mode="before"`` validator's input) where each
    stream named like one of ``specs`` is laid over a copy of that default: the keys it
    sets replace the default's, the others stay. Anything else is returned as it is."""
    if not isinstance(data, dict) or not isinstance(data.get("streams"), dict):
        return data
    return {**data, "streams": {
        name: ({**copy.deepcopy(dict(specs[name])), **spec}
               if name in specs and isinstance(spec, dict) else spec)
        for name, spec in data["streams"].items()}}
