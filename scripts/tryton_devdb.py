"""Create a ready-to-sell Tryton database (SQLite) and optionally serve it.

Used by the Tryton connector tests (``tests/tryton/conftest.py``) and by
developers who want a local trytond to point crm2erp at::

    python scripts/tryton_devdb.py --dir /tmp/tryton --password admin --serve 8000

What it prepares, so a sale can go from draft to a posted invoice over
JSON-RPC: the modules ``sale`` and ``stock_forecast`` (demand forecasts) and
their dependencies, a company paying in EUR, the English minimal chart of
accounts with default receivable/payable accounts, a fiscal year of the
current year with periods and invoice sequences, a default "Direct" customer
payment term, an account category ``Goods`` (revenue/expense accounts), every
ISO 3166 country (from pycountry, without subdivisions: one ``save`` instead
of the minutes ``trytond_import_countries`` takes), the currencies the flow
packs use (EUR, the company's, with a rate; USD, GBP, CHF without), the party relation types
``Works for``/``Employs`` (contacts linked to their company), a second user
``clerk`` (same password and groups, when it has the 8 characters Tryton
requires: "an ERP user" for tests), and two
products (``P-WIDGET``, ``P-GADGET``). The setup half
runs trytond in-process through proteus, which is why it is a separate
script and not test code: importing trytond configures it globally for the
whole process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

MODULES = ("sale", "stock_forecast", "party_relationship")
CURRENCIES = ("EUR", "USD", "GBP", "CHF")   # what the packs' mappings and emulators use
RELATION = ("Works for", "Employs")          # contact -> company, and its reverse


def write_config(directory: Path, port: int | None = None) -> Path:
    """Write ``trytond.conf`` for an SQLite database kept in ``directory``."""
    conf = directory / "trytond.conf"
    lines = ["[database]", "uri = sqlite://", f"path = {directory}", "",
             "[session]", "max_attempt = 1000", "",
             "[request]", "max_size_authenticated = 100000000"]
    if port is not None:
        lines += ["", "[web]", f"listen = 127.0.0.1:{port}"]
    conf.write_text("\n".join(lines) + "\n")
    return conf


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def init_database(directory: Path, dbname: str, password: str) -> Path:
    """Create the SQLite file and install the modules with ``trytond-admin``."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = write_config(directory)
    (directory / f"{dbname}.sqlite").touch()
    passfile = directory / "admin.pass"
    passfile.write_text(password + "\n")
    env = dict(os.environ, TRYTONPASSFILE=str(passfile))
    # ``--email`` validates deliverability through DNS, which fails offline
    # (CI); so answer its prompt with an empty line ("no email") instead.
    subprocess.run([_bin("trytond-admin"), "-c", str(conf), "-d", dbname, "--all",
                    "-u", *MODULES, "--activate-dependencies"],
                   check=True, env=env, input="\n", text=True, stdout=subprocess.DEVNULL)
    return conf


def setup_business(conf: Path, dbname: str, password: str) -> None:
    """Company, chart, fiscal year, payment term, category and products (via proteus)."""
    import pycountry
    from proteus import Model, config
    from trytond.modules.account.tests.tools import (
        create_chart,
        create_fiscalyear,
        get_accounts,
    )
    from trytond.modules.account_invoice.tests.tools import (
        create_payment_term,
        set_fiscalyear_invoice_sequences,
    )
    from trytond.modules.company.tests.tools import create_company, get_company
    from trytond.modules.currency.tests.tools import get_currency

    config.set_trytond(database=dbname, config_file=str(conf))
    Country = Model.get("country.country")
    Country.save([Country(code=c.alpha_2, code3=c.alpha_3, code_numeric=c.numeric,
                          name=getattr(c, "common_name", None) or c.name)
                  for c in pycountry.countries])
    Currency = Model.get("currency.currency")
    Currency.save([Currency(code=code, name=pycountry.currencies.get(alpha_3=code).name,
                            symbol=code, rounding=Decimal("0.01"))
                   for code in CURRENCIES if code != "EUR"])
    RelationType = Model.get("party.relation.type")
    works, employs = RelationType(name=RELATION[0]), RelationType(name=RELATION[1])
    RelationType.save([works, employs])
    works.reverse, employs.reverse = employs, works
    RelationType.save([works, employs])
    Party = Model.get("party.party")
    company_party = Party(name="crm2erp Test Company")
    company_party.save()
    create_company(party=company_party, currency=get_currency("EUR"))
    company = get_company()

    create_chart(company)
    fiscalyear = set_fiscalyear_invoice_sequences(
        create_fiscalyear(company, today=dt.date.today()))
    fiscalyear.click("create_period")
    accounts = get_accounts(company)

    term = create_payment_term()
    term.save()
    AccountConfig = Model.get("account.configuration")
    acc_config = AccountConfig(1)
    acc_config.default_customer_payment_term = term
    acc_config.save()

    Category = Model.get("product.category")
    category = Category(name="Goods", accounting=True)
    category.account_revenue = accounts["revenue"]
    category.account_expense = accounts["expense"]
    category.save()

    Uom = Model.get("product.uom")
    unit, = Uom.find([("name", "=", "Unit")])
    Template = Model.get("product.template")
    for code, name, price in (("P-WIDGET", "Widget", "10.00"),
                              ("P-GADGET", "Gadget", "25.50")):
        template = Template(name=name, type="goods", salable=True, default_uom=unit,
                            sale_uom=unit, list_price=Decimal(price),
                            account_category=category)
        template.save()
        product, = template.products
        product.suffix_code = code
        product.save()

    if len(password) >= 8:   # Tryton's minimum; the admin's own password is not checked
        User = Model.get("res.user")
        admin, = User.find([("login", "=", "admin")])
        clerk = User(name="Clerk", login="clerk", password=password)
        clerk.groups.extend(Model.get("res.group").find(
            [("id", "in", [g.id for g in admin.groups])]))
        clerk.companies.append(Model.get("company.company")(admin.company.id))
        clerk.company = Model.get("company.company")(admin.company.id)
        clerk.save()


# Tryton checks that an e-mail domain accepts mail (a DNS MX query) before it
# stores an e-mail contact. Machines without DNS (CI sandboxes) fail every
# such check, so the test server can run with the syntax check only.
_NO_EMAIL_DNS = """
import functools
import trytond.tools.email_ as email_
email_.validate_email = functools.partial(email_.validate_email, check_deliverability=False)
"""

# Tryton hashes passwords with argon2 at its default cost: each login spends about
# 0.25 s of CPU verifying the password, on purpose. A test server that sees dozens
# of logins can use argon2's lowest cost instead (1 pass over 8 KiB, about 1 ms):
# the password is still hashed and verified by argon2, and the stored hashes of the
# default cost are rehashed at their first login (Tryton's own upgrade of old hashes).
# Patched in pwdlib before trytond imports it (trytond.res.user makes its hasher at
# import, and importing it here would read trytond's configuration too early).
_CHEAP_PASSWORD_HASH = """
import functools
import pwdlib.hashers.argon2 as argon2_
argon2_.Argon2Hasher.__init__ = functools.partialmethod(
    argon2_.Argon2Hasher.__init__, time_cost=1, memory_cost=8, parallelism=1)
"""

_MAIN = """
import sys
from trytond.cli import main
sys.argv[0] = "trytond"
sys.exit(main())
"""


def serve(conf: Path, dbname: str, port: int, *, email_dns: bool = True,
          cheap_passwords: bool = False, output: Any = None) -> subprocess.Popen:
    """Start ``trytond`` on 127.0.0.1:``port`` serving only ``dbname``.

    ``-d`` matters: without it trytond 8.2.1 refuses every login. ``email_dns``
    False keeps Tryton's e-mail check to the syntax; ``cheap_passwords`` hashes
    passwords at argon2's lowest cost (a test server: logins cost ~1 ms of CPU,
    not ~0.25 s). ``output`` (a file) receives the server's log instead of this
    process's stdout/stderr.
    """
    write_config(conf.parent, port)
    args = ["-c", str(conf), "-d", dbname]
    patches = (_NO_EMAIL_DNS if not email_dns else "") + \
        (_CHEAP_PASSWORD_HASH if cheap_passwords else "")
    command = [sys.executable, "-c", patches + _MAIN, *args] if patches else \
        [_bin("trytond"), *args]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                            stderr=subprocess.STDOUT if output is not None else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, type=Path, help="where the database lives")
    parser.add_argument("--db", default="crm2erp", help="database name")
    parser.add_argument("--password", default="admin", help="password of user admin")
    parser.add_argument("--serve", type=int, metavar="PORT",
                        help="after setup, run trytond on this port until Ctrl-C")
    parser.add_argument("--no-email-dns", action="store_true",
                        help="serve without the DNS check of e-mail domains (offline machines)")
    parser.add_argument("--setup-only", action="store_true",
                        help="skip trytond-admin (database already initialised)")
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    started = time.monotonic()
    if args.setup_only:
        conf = directory / "trytond.conf"
    else:
        conf = init_database(directory, args.db, args.password)
    setup_business(conf, args.db, args.password)
    sys.stderr.write(f"tryton database {args.db!r} ready in {directory} "
                     f"({time.monotonic() - started:.1f}s)\n")
    if args.serve:
        proc = serve(conf, args.db, args.serve, email_dns=not args.no_email_dns)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            return proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
