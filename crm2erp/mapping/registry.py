"""The transform registry: named value functions with validated arguments.

A transform is ``fn(value, args, ctx) -> value``. ``args`` is an instance of
the transform's pydantic args model, validated once when a mapping is
compiled (so a typo in a mapping file is a config error, not a failure on
the millionth record). ``ctx`` is a :class:`TransformContext`.

In a mapping file a transform is written as a bare name (``strip``), a
one-key mapping with a scalar (``{join: " "}`` - shorthand for the
transform's main argument) or a one-key mapping with an args mapping
(``{decimal: {places: 2}}``).

Transforms are null-safe by default: None in, None out, without calling the
function. Register with ``null_safe=False`` when None is meaningful input
(``default``, ``coalesce``...).
"""

from __future__ import annotations

__all__ = [
    "Args",
    "NoArgs",
    "TransformContext",
    "TransformDef",
    "TransformSpecError",
    "transform",
    "get_transform",
    "transform_names",
    "bind_transform",
]

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError

from crm2erp.mapping.resolver import Resolver


class Args(BaseModel):
    """Base of every transform's argument model (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoArgs(Args):
    """For transforms that take no arguments."""


@dataclass
class TransformContext:
    """What a transform may look at besides its input value.

    ``source`` is the record being mapped (a list element inside ``each``),
    ``root`` the top-level record, ``output`` what has been built so far.
    """

    source: Mapping[str, Any]
    root: Mapping[str, Any]
    output: dict[str, Any]
    resolver: Resolver | None
    system: str
    direction: str
    mapping: str
    field: str


TransformFn = Callable[[Any, Any, TransformContext], Any]


@dataclass(frozen=True)
class TransformDef:
    name: str
    fn: TransformFn
    args: type[Args]
    main: str | None
    null_safe: bool

    def __call__(self, value: Any, args: Args, ctx: TransformContext) -> Any:
        if value is None and self.null_safe:
            return None
        return self.fn(value, args, ctx)


_REGISTRY: dict[str, TransformDef] = {}


def transform(
    name: str,
    *,
    args: type[Args] = NoArgs,
    main: str | None = None,
    null_safe: bool = True,
) -> Callable[[TransformFn], TransformFn]:
    """Register ``fn`` under ``name``.

    ``main`` names the argument a scalar shorthand sets; it defaults to the
    args model's only field when it has exactly one.
    """
    if main is None and len(args.model_fields) == 1:
        main = next(iter(args.model_fields))

    def decorate(fn: TransformFn) -> TransformFn:
        if name in _REGISTRY and _REGISTRY[name].fn is not fn:
            raise ValueError(f"transform {name!r} is registered twice")
        _REGISTRY[name] = TransformDef(name, fn, args, main, null_safe)
        return fn

    return decorate


def transform_names() -> list[str]:
    return sorted(_REGISTRY)


def get_transform(name: str) -> TransformDef:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(name) from None


class TransformSpecError(Exception):
    """A transform item in a mapping is wrong.

    ``problems`` holds ``(subpath, at, message)``: the path below the item
    (``()`` is the item itself), whether the key or value is at fault, and
    what is wrong.
    """

    def __init__(self, problems: list[tuple[tuple[Any, ...], str, str]]):
        super().__init__("; ".join(msg for _, _, msg in problems))
        self.problems = problems


def _did_you_mean(name: str) -> str:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; known transforms: {', '.join(transform_names())}"


def bind_transform(item: Any) -> tuple[TransformDef, Args]:
    """Resolve one ``transforms:`` item to its definition and validated args."""
    if isinstance(item, str):
        name, raw, at_key = item, None, False
    elif isinstance(item, Mapping) and len(item) == 1:
        name, raw = next(iter(item.items()))
        at_key = True
        if not isinstance(name, str):
            raise TransformSpecError([((name,), "key", "a transform name must be a string")])
    else:
        raise TransformSpecError(
            [((), "value", "expected a transform name or a one-key mapping {name: args}")]
        )
    here: tuple[Any, ...] = (name,) if at_key else ()
    tdef = _REGISTRY.get(name)
    if tdef is None:
        message = f"unknown transform {name!r}{_did_you_mean(name)}"
        raise TransformSpecError([(here, "key" if at_key else "value", message)])
    if raw is None:
        data: dict[str, Any] = {}
    elif isinstance(raw, Mapping) and tdef.main is not None and tdef.main not in raw and (
        get_origin(tdef.args.model_fields[tdef.main].annotation) is dict
    ):  # {value_map: {a: b}} is shorthand for {value_map: {map: {a: b}}}
        data = {tdef.main: dict(raw)}
    elif isinstance(raw, Mapping):
        data = dict(raw)
    elif tdef.main is not None:
        data = {tdef.main: raw}
    else:
        fields = ", ".join(tdef.args.model_fields) or "none"
        raise TransformSpecError(
            [(here, "value", f"transform {name!r} takes no single argument; "
              f"give a mapping of its arguments ({fields})")]
        )
    try:
        return tdef, tdef.args.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "missing":
                problems.append((here, "value", f"transform {name!r} needs argument {loc[-1]!r}"))
                continue
            if err["type"] == "extra_forbidden":
                allowed = list(tdef.args.model_fields)
                close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else (
                    f"; allowed: {', '.join(allowed) or 'none'}")
                problems.append(
                    (here + loc, "key", f"transform {name!r} has no argument {loc[-1]!r}{hint}")
                )
                continue
            sub = loc if isinstance(raw, Mapping) else ()
            arg = ".".join(str(p) for p in loc) or name
            problems.append((here + sub, "value", f"transform {name!r} argument {arg!r}: "
                             f"{err['msg']}"))
        raise TransformSpecError(problems) from None
