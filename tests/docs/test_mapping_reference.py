"""docs/mapping-reference.md is run, not just read.

Every YAML example is loaded (and every mapping compiled) by the real
loaders; the worked example is applied and its output compared; every
transform in the registry and every key of the YAML models must be in the
page; the captured CLI output is produced again from the shipped demo; and
the links of README.md and of the page lead somewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from crm2erp.jsonutil import to_jsonable
from crm2erp.mapping import (
    compile_mapping,
    load_connections,
    load_flow,
    load_mapping,
    transform_names,
)
from crm2erp.mapping.models import (
    Condition,
    ConnectionEntry,
    Endpoint,
    FieldSpec,
    FlowSpec,
    Incremental,
    MappingSpec,
    Partitions,
    WriteBack,
)
from crm2erp.mapping.registry import bind_transform
from crm2erp.quality.gx.config import QualityConfig, QualityRule
from crm2erp.schemas import entity_model
from tests.clirunner import run

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "mapping-reference.md"
README = ROOT / "README.md"
TEXT = DOC.read_text(encoding="utf-8")
DOC_PROJECT = "/tmp/crm2erp-doc/shop"  # where the broken demo copy lived when captured


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    line: int
    body: str


_FENCE = re.compile(r"^```([A-Za-z]*)([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def blocks(text: str = TEXT) -> list[Block]:
    out = []
    for m in _FENCE.finditer(text):
        title = re.search(r'title="([^"]*)"', m.group(2))
        out.append(Block(m.group(1), title.group(1) if title else None,
                         text.count("\n", 0, m.start()) + 1, m.group(3)))
    return out


def yaml_blocks() -> list[Block]:
    return [b for b in blocks() if b.lang == "yaml"]


def _kind(block: Block) -> str:
    data = yaml.safe_load(block.body)
    keys = set(data) if isinstance(data, dict) else set()
    for kind in ("mapping", "flow", "connections"):
        if kind in keys:
            return kind
    return "other"


class _AnyEnv(Mapping[str, str]):
    """Every ${VAR} of the examples is set."""

    def __getitem__(self, key: str) -> str:
        return f"value-of-{key}"

    def __contains__(self, key: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_SUFFIX = {"mapping": ".map.yaml", "flow": ".flow.yaml"}


def _load(block: Block, tmp_path: Path):
    kind = _kind(block)
    if kind == "connections":
        path = tmp_path / "connections.yaml"
    else:
        path = tmp_path / f"example-line{block.line}{_SUFFIX[kind]}"
    path.write_text(block.body, encoding="utf-8")
    if kind == "mapping":
        spec = load_mapping(path)
        return spec, compile_mapping(spec, system="doc")
    if kind == "flow":
        return load_flow(path), None
    return load_connections(path, env=_AnyEnv()), None


@pytest.mark.parametrize("block", yaml_blocks(), ids=lambda b: f"line{b.line}")
def test_yaml_example_loads(block, tmp_path):
    assert _kind(block) != "other", (
        f"docs/mapping-reference.md line {block.line}: a ```yaml block must be a whole "
        "mapping, flow or connections file (so it can be tested)")
    loaded, compiled = _load(block, tmp_path)
    assert loaded
    if compiled is not None:
        assert compiled.name == loaded.mapping


def test_examples_cover_every_file_kind():
    kinds = [_kind(b) for b in yaml_blocks()]
    assert kinds.count("mapping") >= 3 and kinds.count("flow") >= 2
    assert "connections" in kinds


def test_worked_example_gives_the_documented_output(tmp_path):
    found = blocks()
    titles = [b.title for b in found]
    given = found[titles.index("input")]
    expected = found[titles.index("output")]
    source = next(b for b in reversed(found[:titles.index("input")])
                  if b.lang == "yaml" and _kind(b) == "mapping")
    spec, compiled = _load(source, tmp_path)
    record = json.loads(given.body)
    assert compiled.matches(record)
    out = compiled.apply(record)
    assert to_jsonable(out) == json.loads(expected.body)
    entity_model(spec.entity).model_validate({**out, "id": "doc"})  # a valid canonical record
    assert not compiled.matches({**record, "test_account": "yes"})  # the `where:` filter


# -- the page cannot fall behind the code --------------------------------------------------

def _section(title: str) -> str:
    start = TEXT.index(f"\n## {title}\n")
    end = TEXT.find("\n## ", start + 1)
    return TEXT[start:end if end != -1 else None]


def _transform_rows() -> list[list[str]]:
    rows = []
    for line in _section("Transforms").splitlines():
        if re.match(r"^\| `[a-z_]+` \|", line):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def test_every_registered_transform_has_a_row():
    documented = [row[0].strip("`") for row in _transform_rows()]
    missing = sorted(set(transform_names()) - set(documented))
    assert not missing, f"transforms missing from docs/mapping-reference.md: {missing}"
    unknown = sorted(set(documented) - set(transform_names()))
    assert not unknown, f"documented transforms that do not exist: {unknown}"
    assert len(documented) == len(set(documented)), "a transform is documented twice"


@pytest.mark.parametrize("row", _transform_rows(), ids=lambda r: r[0].strip("`"))
def test_transform_row_example_is_valid(row):
    name, example = row[0].strip("`"), row[-1]
    assert example.startswith("`") and example.endswith("`"), row
    item = yaml.safe_load(example.strip("`"))
    tdef, _ = bind_transform(item)
    assert tdef.name == name


def _keys(model) -> set[str]:
    return {info.alias or name for name, info in model.model_fields.items()}


@pytest.mark.parametrize("model", [FlowSpec, Endpoint, Incremental, Partitions, WriteBack,
                                   MappingSpec, FieldSpec, Condition, ConnectionEntry,
                                   QualityConfig, QualityRule],
                         ids=lambda m: m.__name__)
def test_every_yaml_key_is_documented(model):
    missing = sorted(k for k in _keys(model) if f"`{k}`" not in TEXT)
    assert not missing, f"{model.__name__} keys missing from the reference: {missing}"


# -- captured CLI output -------------------------------------------------------------------

def crm2erp(*args: str, cwd: Path, env: dict[str, str], columns: int = 200):
    base = {k: v for k, v in os.environ.items() if k != "CRM2ERP_DEMO_DIR"}
    return run(args, cwd=cwd, env={**base, **env, "COLUMNS": str(columns)})


def _console_blocks() -> list[str]:
    return [b.body for b in blocks() if b.lang == "console"]


def _demo_copy(tmp_path: Path) -> Path:
    from crm2erp.mappings import pack_dir

    shop = tmp_path / "shop"
    shutil.copytree(pack_dir("demo"), shop, ignore=shutil.ignore_patterns("__pycache__"))
    edits = {  # the five mistakes the page describes
        "maps/crm_account.in.map.yaml": [
            ("[strip, upper], default: EUR", "[strip, uper], default: EUR"),
            ("  tax_id: {from: vat_id", "  tax_id: {form: vat_id"),
        ],
        "accounts.flow.yaml": [("connection: erp, stream: customers",
                                "connection: erpp, stream: customers")],
        "contacts.flow.yaml": [("lookback: 5m", "lookback: 5 minutes")],
    }
    for rel, changes in edits.items():
        path = shop / rel
        text = path.read_text(encoding="utf-8")
        for old, new in changes:
            assert text.count(old) == 1, f"the demo changed: re-capture the doc's output ({rel})"
            text = text.replace(old, new)
        path.write_text(text, encoding="utf-8")
    return shop


def test_validate_output_is_what_the_demo_prints(tmp_path):
    from crm2erp.mappings import pack_dir

    ok = crm2erp("-p", str(pack_dir("demo")), "mappings", "validate", cwd=tmp_path,
                 env={"CRM2ERP_DEMO_DIR": str(tmp_path)})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip() in _console_blocks()[0].splitlines()

    shop = _demo_copy(tmp_path)
    no_env = crm2erp("-p", str(shop), "mappings", "validate", cwd=tmp_path, env={})
    with_env = crm2erp("-p", str(shop), "mappings", "validate", cwd=tmp_path,
                       env={"CRM2ERP_DEMO_DIR": str(tmp_path)})
    assert no_env.returncode == 2 and with_env.returncode == 2
    real = {line.replace(str(shop), DOC_PROJECT)
            for line in (no_env.stdout + with_env.stdout).splitlines()
            if line.startswith(str(shop))}
    documented = {line for line in TEXT.splitlines() if line.startswith(DOC_PROJECT)}
    assert documented == real
    summary = no_env.stdout.strip().splitlines()[-1]
    assert summary in _console_blocks()[1].splitlines()


def test_explain_output_is_what_the_demo_prints(tmp_path):
    from crm2erp.mappings import pack_dir

    block = next(b for b in _console_blocks() if "explain demo_contacts" in b)
    command = " ".join(line.strip() for line in block.splitlines()
                       if not line.startswith(("inbound:", "outbound:", "┏", "┃", "┡", "│",
                                               "└", "$ export")))
    record = re.search(r"--record '(\{.*\})'", command).group(1)
    doc_table = block[block.index("inbound:"):].rstrip().splitlines()
    result = crm2erp("-p", str(pack_dir("demo")), "--state", f"sqlite:///{tmp_path}/s.db",
                     "mappings", "explain", "demo_contacts", "--record", record,
                     cwd=tmp_path, env={"CRM2ERP_DEMO_DIR": str(tmp_path)}, columns=110)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.rstrip() for line in result.stdout.rstrip().splitlines()] == doc_table

    skip = next(b for b in _console_blocks() if "explain demo_orders" in b)
    record = re.search(r"--record '(\{.*\})'", skip).group(1)
    result = crm2erp("-p", str(pack_dir("demo")), "--state", f"sqlite:///{tmp_path}/s.db",
                     "mappings", "explain", "demo_orders", "--record", record,
                     cwd=tmp_path, env={"CRM2ERP_DEMO_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == skip.strip().splitlines()[-1]


# -- links ---------------------------------------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_readme_doc_links_exist():
    links = [m.group(1) for m in _LINK.finditer(README.read_text(encoding="utf-8"))]
    docs = [link.split("#")[0] for link in links if link.startswith("docs/")]
    assert "docs/mapping-reference.md" in docs
    missing = [d for d in docs if not (ROOT / d).is_file()]
    assert not missing, f"README.md links to missing doc pages: {missing}"


def test_reference_links_and_anchors_resolve():
    anchors = {_slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", TEXT, re.M)}
    broken = []
    for m in _LINK.finditer(TEXT):
        target = m.group(1)
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        if path and not (DOC.parent / path).is_file():
            broken.append(target)
        elif not path and anchor not in anchors:
            broken.append(target)
    assert not broken, f"broken links in docs/mapping-reference.md: {broken}"


TYPOS_PROJECT = "/tmp/crm2erp-doc/typos"  # where the demo copy with typos lived when captured


def _typos_copy(tmp_path: Path) -> tuple[Path, Path]:
    """The demo with the three typos the page describes, next to its databases."""
    from crm2erp.demo.sample import sample_crm_rows
    from crm2erp.demo.systems import create_systems
    from crm2erp.mappings import pack_dir

    typos, data = tmp_path / "typos", tmp_path / "data"
    shutil.copytree(pack_dir("demo"), typos, ignore=shutil.ignore_patterns("__pycache__"))
    data.mkdir()
    create_systems(f"sqlite:///{data}/crm.db", f"sqlite:///{data}/erp.db",
                   sample_crm_rows(accounts=5))
    edits = {"maps/crm_account.in.map.yaml": ("  email: {from: email,", "  email: {from: emial,"),
             "maps/erp_customer.out.map.yaml": ("  vat: {from: tax_id}", "  vta: {from: tax_id}"),
             "accounts.flow.yaml": ("delete_policy: ignore", "delete_policy: archive")}
    for rel, (old, new) in edits.items():
        path = typos / rel
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"the demo changed: re-capture the doc's output ({rel})"
        path.write_text(text.replace(old, new), encoding="utf-8")
    return typos, data


def _documented(block: str, command: str) -> list[str]:
    """The lines a console block shows for ``$ command`` (up to the next prompt)."""
    lines = block.splitlines()
    start = lines.index(f"$ {command}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("$ ")), len(lines))
    return lines[start:end]


def test_typos_output_is_what_validate_and_status_print(tmp_path):
    typos, data = _typos_copy(tmp_path)
    env = {"CRM2ERP_DEMO_DIR": str(data)}
    block = next(b for b in _console_blocks() if f"{TYPOS_PROJECT} mappings validate\n" in b)
    for extra in ([], ["--offline"]):
        result = crm2erp("-p", str(typos), "mappings", "validate", *extra, cwd=tmp_path,
                         env=env)
        assert result.returncode == 2
        shown = result.stdout.replace(str(typos), TYPOS_PROJECT).splitlines()
        command = " ".join(["crm2erp -p", TYPOS_PROJECT, "mappings validate", *extra])
        assert shown == _documented(block, command)

    state = ["--state", f"sqlite:///{tmp_path}/state.db"]
    run = crm2erp("-p", str(typos), *state, "sync", "run", "demo_accounts", cwd=tmp_path,
                  env=env)
    assert run.returncode == 1, run.stderr      # the `vta` column dead-letters every record
    status = crm2erp("-p", str(typos), *state, "status", cwd=tmp_path, env=env)
    assert status.returncode == 0, status.stderr
    block = next(b for b in _console_blocks() if f"{TYPOS_PROJECT} status" in b)
    warning = _documented(block, f"crm2erp -p {TYPOS_PROJECT} status")[-1]
    assert warning in status.stdout.splitlines()
