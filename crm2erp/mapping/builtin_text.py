"""Text and list transforms: strip, case, split/join, defaults, replace...

Text transforms accept any scalar and work on its ``str()``; list transforms
(``join``, ``concat``, ``coalesce``) take the list a multi-field
``from: [a, b]`` produces and ignore its None items.
"""

from __future__ import annotations

__all__: list[str] = []

import re
from typing import Any

from pydantic import Field, model_validator

from crm2erp.mapping.registry import Args, NoArgs, TransformContext, transform

_SPACES = re.compile(r"\s+")


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | tuple | dict):
        return not value
    return False


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


@transform("strip")
def strip(value: Any, args: NoArgs, ctx: TransformContext) -> str:
    return _text(value).strip()


@transform("lower")
def lower(value: Any, args: NoArgs, ctx: TransformContext) -> str:
    return _text(value).lower()


@transform("upper")
def upper(value: Any, args: NoArgs, ctx: TransformContext) -> str:
    return _text(value).upper()


@transform("title")
def title(value: Any, args: NoArgs, ctx: TransformContext) -> str:
    return _text(value).title()


@transform("collapse_spaces")
def collapse_spaces(value: Any, args: NoArgs, ctx: TransformContext) -> str:
    """Runs of whitespace become one space; ends are stripped."""
    return _SPACES.sub(" ", _text(value)).strip()


class SplitArgs(Args):
    sep: str = ","
    strip: bool = True
    drop_empty: bool = True


@transform("split", args=SplitArgs, main="sep")
def split(value: Any, args: SplitArgs, ctx: TransformContext) -> list[str]:
    parts = _text(value).split(args.sep)
    if args.strip:
        parts = [p.strip() for p in parts]
    if args.drop_empty:
        parts = [p for p in parts if p]
    return parts


class JoinArgs(Args):
    sep: str = " "


@transform("join", args=JoinArgs)
def join(value: Any, args: JoinArgs, ctx: TransformContext) -> str | None:
    """Join the non-empty items with ``sep``; None when there are none."""
    parts = [_text(v) for v in _items(value) if not _is_empty(v)]
    return args.sep.join(parts) if parts else None


class ConcatArgs(Args):
    sep: str = ""


@transform("concat", args=ConcatArgs)
def concat(value: Any, args: ConcatArgs, ctx: TransformContext) -> str | None:
    return join(value, JoinArgs(sep=args.sep), ctx)


@transform("coalesce", null_safe=False)
def coalesce(value: Any, args: NoArgs, ctx: TransformContext) -> Any:
    """The first item that is not None, an empty or blank string or empty list."""
    for item in _items(value):
        if not _is_empty(item):
            return item
    return None


class ValueArgs(Args):
    value: Any


@transform("default", args=ValueArgs, null_safe=False)
def default(value: Any, args: ValueArgs, ctx: TransformContext) -> Any:
    """``value`` when the input is None or a blank string."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return args.value
    return value


@transform("constant", args=ValueArgs, null_safe=False)
def constant(value: Any, args: ValueArgs, ctx: TransformContext) -> Any:
    return args.value


class ReplaceArgs(Args):
    old: str
    new: str = ""
    regex: bool = False

    @model_validator(mode="after")
    def _check_regex(self) -> ReplaceArgs:
        if self.regex:
            try:
                re.compile(self.old)
            except re.error as exc:
                raise ValueError(f"'old' is not a valid regular expression: {exc}") from None
        return self


@transform("replace", args=ReplaceArgs)
def replace(value: Any, args: ReplaceArgs, ctx: TransformContext) -> str:
    if args.regex:
        return re.sub(args.old, args.new, _text(value))
    return _text(value).replace(args.old, args.new)


class TruncateArgs(Args):
    length: int = Field(ge=0)


@transform("truncate", args=TruncateArgs)
def truncate(value: Any, args: TruncateArgs, ctx: TransformContext) -> str:
    return _text(value)[: args.length]


class TextArgs(Args):
    text: str


@transform("prefix", args=TextArgs)
def prefix(value: Any, args: TextArgs, ctx: TransformContext) -> str:
    return args.text + _text(value)


@transform("suffix", args=TextArgs)
def suffix(value: Any, args: TextArgs, ctx: TransformContext) -> str:
    return _text(value) + args.text
