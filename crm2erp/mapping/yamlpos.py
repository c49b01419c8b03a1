"""YAML loading that remembers where every key and value came from.

pydantic reports errors by *location* (a tuple of keys and list indices);
users need *file:line:column*. :func:`load_yaml` therefore walks the node
tree from :func:`yaml.compose` itself and returns, next to the plain data, a
:class:`YamlDoc` with two tables: path -> position of the key, and path ->
position of the value. :meth:`YamlDoc.issue` turns any path (even one that
only partly exists, e.g. a missing key) into a :class:`ConfigIssue`.

Two deliberate departures from PyYAML's YAML 1.1 defaults:

* only ``true``/``false`` are booleans - ``NO`` (Norway), ``yes`` and ``on``
  stay strings, so country codes and value maps are not silently mangled;
* duplicate keys are reported instead of the last one silently winning.

Hostile files stay cheap: a file over :data:`MAX_BYTES`, or one whose aliases
(``*name``) and merge keys would expand to more than :data:`MAX_NODES` nodes
(a "billion laughs" alias bomb), or nested too deeply, is one issue naming the
file; it is never expanded.

:func:`interpolate_env` expands ``${VAR}`` and ``${VAR:-default}`` in string
values (connection files only); ``$${`` gives a literal ``${``.
"""

from __future__ import annotations

__all__ = ["YamlDoc", "DataPath", "load_yaml", "interpolate_env", "format_path",
           "MAX_BYTES", "MAX_NODES"]

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from crm2erp.errors import ConfigIssue

DataPath = tuple[Any, ...]
Position = tuple[int, int]

_BOOL_TAG = "tag:yaml.org,2002:bool"
MAX_BYTES = 10_000_000   # no configuration file comes near this
MAX_NODES = 1_000_000    # keys and values after expanding aliases and merge keys


def _yaml12_booleans(loader: Any) -> Any:
    """Make ``loader``'s booleans YAML 1.2's: true/false only."""
    loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(
        _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
    )
    return loader


@_yaml12_booleans
class _Loader(yaml.SafeLoader):
    """The pure-Python SafeLoader: it words the syntax errors users see."""


#: libyaml's parser (about 15x faster, same node positions) when PyYAML has it;
#: a file it refuses is parsed again by :class:`_Loader` for the error message.
_FastLoader: type | None = None
if getattr(yaml, "__with_libyaml__", False):
    @_yaml12_booleans
    class _FastLoader(yaml.CSafeLoader):  # type: ignore[no-redef]
        """CSafeLoader with YAML 1.2 booleans."""


def format_path(path: DataPath) -> str:
    """``('fields', 'email', 'transforms', 0)`` -> ``fields.email.transforms[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(document)"


@dataclass
class YamlDoc:
    """Parsed YAML data plus the 1-based position of every key and value."""

    file: str
    data: Any = None
    keys: dict[DataPath, Position] = field(default_factory=dict)
    values: dict[DataPath, Position] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)

    def position(self, path: DataPath, *, at: str = "value") -> Position | None:
        """Position of ``path``'s key (``at="key"``) or value.

        A path that does not exist (a missing key) falls back to the value of
        its longest existing prefix: the mapping the key should be in.
        """
        path = tuple(path)
        if at == "key" and path in self.keys:
            return self.keys[path]
        while path not in self.values and path:
            path = path[:-1]
        return self.values.get(path)

    def issue(self, path: DataPath, message: str, *, at: str = "value") -> ConfigIssue:
        pos = self.position(path, at=at)
        line, col = pos if pos else (None, None)
        return ConfigIssue(self.file, line, col, message)

    def data_path(self, loc: tuple[Any, ...]) -> DataPath:
        """Keep only the elements of a pydantic ``loc`` that exist in the data.

        pydantic inserts union tags (``'str'``, ``'list[str]'``...) and the
        missing key itself; neither is a place in the file.
        """
        cur = self.data
        out: list[Any] = []
        for part in loc:
            if isinstance(cur, Mapping) and part in cur:
                out.append(part)
                cur = cur[part]
            elif isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
                out.append(part)
                cur = cur[part]
        return tuple(out)


def _pos(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _yaml_issue(file: str, exc: yaml.YAMLError) -> ConfigIssue:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        parts = [p for p in (exc.context, exc.problem) if p]
        text = "; ".join(parts) or str(exc)
    else:
        text = str(exc)
    line = col = None
    if mark is not None:
        line, col = mark.line + 1, mark.column + 1
    elif hasattr(exc, "position"):  # ReaderError: bad characters
        line, col = 1, None
    return ConfigIssue(file, line, col, f"YAML syntax error: {text}")


def _expanded_size(root: Node, limit: int) -> int:
    """How many nodes ``root`` expands to (aliases repeat their target), counted
    once per distinct node, so an alias bomb costs no more than its text; stops
    counting above ``limit``."""
    sizes: dict[int, int] = {}

    def size(node: Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        total = 1
        if isinstance(node, MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, SequenceNode):
            children = node.value
        else:
            children = []
        for child in children:
            total += size(child)
            if total > limit:
                break
        sizes[id(node)] = total
        return total

    return size(root)


def _build(node: Node, path: DataPath, doc: YamlDoc, loader: _Loader) -> Any:
    doc.values[path] = _pos(node)
    if isinstance(node, MappingNode):
        loader.flatten_mapping(node)  # resolves `<<` merge keys
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode, deep=True)
            try:
                hash(key)
            except TypeError:
                line, col = _pos(knode)
                doc.issues.append(ConfigIssue(doc.file, line, col, "a key must be a scalar"))
                continue
            if key in out:
                first = doc.keys[path + (key,)]
                line, col = _pos(knode)
                doc.issues.append(
                    ConfigIssue(
                        doc.file, line, col,
                        f"duplicate key {key!r} (first defined at line {first[0]}); "
                        "remove one of them",
                    )
                )
                continue
            doc.keys[path + (key,)] = _pos(knode)
            out[key] = _build(vnode, path + (key,), doc, loader)
        return out
    if isinstance(node, SequenceNode):
        return [_build(child, path + (i,), doc, loader) for i, child in enumerate(node.value)]
    assert isinstance(node, ScalarNode)
    return loader.construct_object(node, deep=True)


def load_yaml(source: str | os.PathLike[str], *, text: str | None = None) -> YamlDoc:
    """Parse one YAML file (or ``text`` reported as ``source``).

    Never raises for bad YAML: syntax problems land in ``doc.issues`` with
    their position and ``doc.data`` is None. A missing or unreadable file is
    an issue too.
    """
    file = str(source)
    doc = YamlDoc(file)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            doc.issues.append(ConfigIssue(file, None, None, "file not found"))
            return doc
        except (OSError, UnicodeDecodeError) as exc:
            doc.issues.append(ConfigIssue(file, None, None, f"cannot read file: {exc}"))
            return doc
    if len(text) > MAX_BYTES:
        doc.issues.append(ConfigIssue(file, None, None, f"file is larger than {MAX_BYTES:,} "
                                      "characters; a configuration file never needs that"))
        return doc
    if _FastLoader is not None:
        try:
            return _parse(YamlDoc(file), text, _FastLoader)
        except (yaml.YAMLError, RecursionError):
            pass  # worded (and placed) by the pure-Python parser below
    try:
        return _parse(doc, text, _Loader)
    except yaml.YAMLError as exc:
        doc.issues.append(_yaml_issue(file, exc))
        doc.data = None
    except RecursionError:
        doc.issues.append(ConfigIssue(file, None, None, "YAML is nested too deeply to read; "
                                      "flatten the structure"))
        doc.data = None
    return doc


def _parse(doc: YamlDoc, text: str, loader_class: type) -> YamlDoc:
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, MAX_NODES) > MAX_NODES:
            line, col = _pos(node)
            doc.issues.append(ConfigIssue(
                doc.file, line, col, f"YAML expands to more than {MAX_NODES:,} values "
                "through aliases (*name) or merge keys (<<), like an alias bomb; refused "
                "without expanding it: write the values out or use fewer aliases"))
        elif node is not None:
            doc.data = _build(node, (), doc, loader)
        else:
            doc.values[()] = (1, 1)
    finally:
        loader.dispose()
    return doc


_ENV_RX = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


#: What a variable that is not set reads as when loading must not fail on it (DAG
#: parsing: an Airflow Connection may provide the value at run time).
UNSET = "\x00crm2erp-unset:{}\x00"
UNSET_RX = re.compile("\x00crm2erp-unset:([^\x00]*)\x00")


def unset_positions(doc: YamlDoc) -> set[tuple[int | None, int | None]]:
    """The (line, column) of every string value that still holds an :data:`UNSET` marker."""
    found: set[tuple[int | None, int | None]] = set()

    def walk(value: Any, path: DataPath) -> None:
        if isinstance(value, str):
            if UNSET_RX.search(value):
                issue = doc.issue(path, "")
                found.add((issue.line, issue.column))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, path + (i,))

    walk(doc.data, ())
    return found


def interpolate_env(doc: YamlDoc, env: Mapping[str, str],
                    used: list[tuple[DataPath, str, str]] | None = None) -> list[ConfigIssue]:
    """Expand ``${VAR}`` / ``${VAR:-default}`` in every string value, in place.

    Returns one issue per missing variable (with the value's position);
    ``used`` collects ``(path, name, value)`` of each variable expanded.
    """
    issues: list[ConfigIssue] = []

    def expand(value: str, path: DataPath) -> str:
        def sub(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name, default = match.group(1), match.group(2)
            if name in env:
                if used is not None:
                    used.append((path, name, env[name]))
                return env[name]
            if default is not None:
                return default
            issues.append(
                doc.issue(
                    path,
                    f"environment variable {name!r} is not set; export it or write "
                    f"${{{name}:-default}}",
                )
            )
            return ""

        return _ENV_RX.sub(sub, value)

    def walk(value: Any, path: DataPath) -> Any:
        if isinstance(value, str):
            return expand(value, path)
        if isinstance(value, dict):
            for key in list(value):
                value[key] = walk(value[key], path + (key,))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                value[i] = walk(item, path + (i,))
        return value

    doc.data = walk(doc.data, ())
    return issues
