"""``crm2erp init``: scaffold a project folder to fill in and run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import typer

from crm2erp.cli.output import console, literal
from crm2erp.errors import ConfigError

CONNECTIONS = """\
# A CSV folder (the CRM export) -> a SQLite or other SQL database (the ERP).
# Every setting that differs per installation comes from the environment:
# copy .env.example, fill it in and export it before running crm2erp.
connections:
  crm:
    type: file
    path: ${CRM_CSV_DIR}            # folder with accounts.csv
    streams:
      accounts: {file: accounts.csv, key: id, cursor: updated_at}
  erp:
    type: sql
    url: ${ERP_DATABASE_URL}        # e.g. sqlite:////abs/path/erp.db
    streams:
      # the table needs a primary key or unique constraint on crm_ref
      customers: {table: customers, key: crm_ref}
"""

FLOW = """\
flow: accounts
description: CRM accounts (accounts.csv) become ERP customers.
entity: Account
source: {connection: crm, stream: accounts, mapping: maps/accounts.in.map.yaml}
target: {connection: erp, stream: customers, mapping: maps/customers.out.map.yaml}
incremental: {cursor: updated_at, batch_size: 500}
delete_policy: ignore
"""

INBOUND = """\
mapping: accounts_in
direction: inbound
entity: Account
description: The CSV's columns to the canonical Account.
fields:
  name: {from: name, transforms: [strip, collapse_spaces], required: true}
  email: {from: email, transforms: [email]}
  billing_address.city: {from: city, transforms: [strip]}
  billing_address.country: {from: country, transforms: [country]}
  updated_at: {from: updated_at, transforms: [{datetime: {tz: UTC}}]}
"""

OUTBOUND = """\
mapping: customers_out
direction: outbound
entity: Account
description: The canonical Account to the ERP's customers table.
fields:
  crm_ref: {from: id}
  name: {from: name}
  email: {from: email}
  city: {from: billing_address.city}
  country: {from: billing_address.country}
"""

ENV_EXAMPLE = """\
# Copy to .env, fill in, then: set -a; . ./.env; set +a
CRM_CSV_DIR=/absolute/path/to/csv-folder
ERP_DATABASE_URL=sqlite:////absolute/path/to/erp.db
"""

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def init(
    directory: Path = typer.Argument(Path("."), help="Folder to create the project in."),
    from_pack: str = typer.Option(None, "--from-pack", metavar="PACK",
                                  help="Start from a shipped flow pack, e.g. salesforce-sap."),
) -> None:
    """Create a project: connections.yaml with ${VAR} placeholders, flows, both
    mappings, .env.example and crm2erp.yaml (where the state lives)."""
    directory = directory.resolve()
    taken = [p.name for p in (directory / "connections.yaml", directory / "crm2erp.yaml")
             if p.exists()]
    if taken:
        raise ConfigError(f"{directory} already has {', '.join(taken)}; "
                          "init writes into a new or empty project folder")
    files = _from_pack(from_pack) if from_pack else {
        "connections.yaml": CONNECTIONS, "accounts.flow.yaml": FLOW,
        "maps/accounts.in.map.yaml": INBOUND, "maps/customers.out.map.yaml": OUTBOUND,
        ".env.example": ENV_EXAMPLE}
    state = json.dumps(f"sqlite:///{directory / 'state.db'}")   # quoted: any folder name
    files["crm2erp.yaml"] = ("# settings shared by every crm2erp command run on this "
                             f"project\nstate: {state}\n")
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(literal(f"wrote {path}"))
    console.print(literal(f"next: fill in {directory / '.env.example'} (as .env), export it, "
                          f"then run crm2erp -p {directory} check"), soft_wrap=True)


def _from_pack(name: str) -> dict[str, str]:
    """A pack's connections and flows; their mappings copied into ``maps/``."""
    from crm2erp.mapping import load_flow
    from crm2erp.mappings import pack_dir

    try:
        folder = pack_dir(f"packs/{name}")
    except ConfigError:
        known = sorted(p.name for p in pack_dir("packs").iterdir() if p.is_dir()
                       and (p / "connections.yaml").is_file())
        raise ConfigError(f"no flow pack {name!r} (packs: {', '.join(known)})") from None
    connections = (folder / "connections.yaml").read_text(encoding="utf-8")
    files = {"connections.yaml": connections}
    for flow_path in sorted(folder.glob("*.flow.yaml")):
        text = flow_path.read_text(encoding="utf-8")
        spec = load_flow(flow_path)
        for ref in {spec.source.mapping, spec.target.mapping}:
            source = (folder / ref).resolve()
            mapped = f"maps/{source.parent.name}/{source.name}"
            files[mapped] = source.read_text(encoding="utf-8")
            text = text.replace(f"mapping: {ref}", f"mapping: {mapped}")
        files[flow_path.name] = text
    env = {}
    for var, default in _VAR.findall(connections):
        env.setdefault(var, default)
    files[".env.example"] = ("# Copy to .env, fill in, then: set -a; . ./.env; set +a\n"
                             "# (the values shown are the defaults: the local emulators)\n"
                             + "".join(f"{k}={v}\n" for k, v in env.items()))
    return files
