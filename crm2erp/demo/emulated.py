"""``crm2erp demo --systems salesforce-sap``: a shipped flow pack against API emulators.

The Salesforce and SAP emulators run in this process (threads serving real
HTTP on loopback ports) and the ``mappings/packs/salesforce-sap`` project
syncs between them exactly as it would between real systems: accounts to
business partners, won opportunities to sales orders, then SAP's billing run
(played by :func:`bill_new_orders`) and the billing documents back to
Salesforce as ``ERP_Invoice__c`` records.

The emulators keep their data in memory, so they live as long as one
invocation. Rather than pretend that a state store describes emulators that
were restarted empty, one invocation runs the whole sync ``runs`` times
(default 2) against the same emulators with the same state store: the second
run finds nothing to change. Each invocation starts again from freshly seeded
emulators and a fresh state store (``state-<pack>.db`` in the demo folder).

The Salesforce org is seeded deterministically and then made messy the way
real orgs are (stray blanks, country names typed by hand, local phone
numbers, one invalid phone number), so the demo shows normalisation and a
dead letter too.
"""

from __future__ import annotations

__all__ = ["EMULATED_PACKS", "NEGATIVE_REVENUE", "EmulatedDemoResult", "run_emulated_demo",
           "bill_new_orders", "seed_salesforce", "seed_sap", "mess_up_org", "SAP_MATERIALS"]

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.engine import Engine, RunResult
from crm2erp.errors import ConfigError
from crm2erp.mapping import load_project
from crm2erp.mappings import pack_dir
from crm2erp.store import StateStore

#: packs the emulated demo can run, and their flows in run order
EMULATED_PACKS = {"salesforce-sap": ["sf_sap_accounts", "sf_sap_orders", "sf_sap_invoices"]}


@dataclass
class EmulatedDemoResult:
    directory: Path
    pack: str
    runs: list[list[RunResult]] = field(default_factory=list)
    invoices_billed: list[int] = field(default_factory=list)
    state_url: str = ""

    def changed(self, run: int = -1) -> int:
        """Records written by run ``run`` (default: the last)."""
        return sum(r.changed for r in self.runs[run]) if self.runs else 0


def _phone(rng: random.Random, country: str) -> str:
    """A valid number of ``country`` (ISO code) in one of the ways people write them."""
    base = phonenumbers.example_number_for_type(country, PhoneNumberType.FIXED_LINE)
    digits = str(base.national_number)
    for _ in range(50):
        candidate = phonenumbers.parse(f"+{base.country_code}{digits[:-3]}"
                                       f"{rng.randint(0, 999):03d}")
        if phonenumbers.is_valid_number(candidate):
            base = candidate
            break
    style = rng.choice([PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL,
                        PhoneNumberFormat.E164])
    return phonenumbers.format_number(base, style)


#: the annual revenue :func:`mess_up_org` gives the org's tenth account (by Id)
NEGATIVE_REVENUE = -2_500_000.0


def mess_up_org(org, rng: random.Random) -> None:
    """Make a seeded Salesforce org look typed by people: blanks, country names,
    phone numbers in national or international form, shouting city names, one
    phone number that is no number (it ends in the dead letters), and one
    negative annual revenue (valid data, bad business data: the salesforce-sap
    pack's quality rule ``annual revenue is not negative`` quarantines it)."""
    countries = {"Germany": ("DE", ["Deutschland", "DE", " germany"]),
                 "United Kingdom": ("GB", ["UK", "Great Britain", "England"]),
                 "United States": ("US", ["USA", "U.S.A.", "US"]),
                 "France": ("FR", ["FR", "france"]), "Italy": ("IT", ["IT", "Italia"]),
                 "Portugal": ("PT", ["PT", "portugal"])}
    with org.lock:
        accounts = sorted(org.tables["Account"].values(), key=lambda r: r["Id"])
        for i, rec in enumerate(accounts):
            code, spellings = countries.get(rec["BillingCountry"], ("DE", ["Germany"]))
            rec["Phone"] = _phone(rng, code)
            if i % 3 == 0:
                rec["Name"] = f"  {rec['Name'].replace(' ', '  ', 1)} "
            if i % 4 == 1:
                rec["BillingCountry"] = rng.choice(spellings)
            if i % 7 == 3:
                rec["BillingCity"] = rec["BillingCity"].upper() + " "
        if len(accounts) > 5:
            accounts[5]["Phone"] = "ask reception"
        if len(accounts) > 9:
            accounts[9]["AnnualRevenue"] = NEGATIVE_REVENUE
        for rec in org.tables["Contact"].values():
            account = org.tables["Account"].get(rec["AccountId"])
            rec["Phone"] = account["Phone"] if account and account["Phone"].startswith("+") \
                else None


#: materials of the SAP emulator's seed: the products the Salesforce org sells
SAP_MATERIALS = [f"TG{n}" for n in range(11, 19)]


def seed_salesforce(accounts: int = 40, seed: int = 7):
    """A Salesforce emulator with ``accounts`` accounts, about a third of them with a
    won opportunity of two line items on SAP materials, made messy by :func:`mess_up_org`."""
    from crm2erp.emulators.salesforce.app import make_app

    app = make_app(seed=seed, accounts=accounts, contacts_per_account=1,
                   opportunities_per_account=2, line_items_per_opportunity=2,
                   product_codes=SAP_MATERIALS)
    mess_up_org(app.org, random.Random(seed))
    return app


def seed_sap(seed: int = 11):
    """An S/4HANA emulator holding a few customers of its own and no orders yet."""
    from crm2erp.emulators.sap.app import make_app

    return make_app(seed=seed, business_partners=6, sales_orders=0, billing_documents=0,
                    requirements=0)


def bill_new_orders(sap_app) -> int:
    """SAP's billing run: one billing document (F2) per sales order not billed yet.

    A billing document bills the order's items at their net amounts (tax 19 %).
    An order without items has nothing to bill and is left alone, as SAP's
    billing due list would. Called between flows, when no request is in flight.
    """
    from crm2erp.emulators.sap.model import TYPES

    store = sap_app.store
    billed = {item["SalesDocument"]
              for item in store.tables["A_BillingDocumentItem"].values()}
    created = 0
    for (number,), order in sorted(store.tables["A_SalesOrder"].items()):
        if number in billed:
            continue
        items = store.children(TYPES["A_SalesOrder"], order, "to_Item")
        if not items:
            continue
        store.tick(60)
        net = sum((Decimal(it["NetAmount"] or 0) for it in items), Decimal(0))
        store.create("A_BillingDocument", {
            "BillingDocumentType": "F2", "SDDocumentCategory": "M",
            "BillingDocumentDate": store.clock, "SoldToParty": order["SoldToParty"],
            "PayerParty": order["SoldToParty"],
            "TransactionCurrency": order["TransactionCurrency"] or "EUR",
            "TotalNetAmount": str(net),
            "TotalTaxAmount": str((net * Decimal("0.19")).quantize(Decimal("0.01"))),
            "CustomerPaymentTerms": "0001", "AccountingPostingStatus": "C",
            "OverallBillingStatus": "C", "BillingDocumentIsCancelled": False,
            "to_Item": [{"Material": it["Material"],
                         "BillingQuantity": str(it["RequestedQuantity"]),
                         "BillingQuantityUnit": "PC", "NetAmount": str(it["NetAmount"]),
                         "TransactionCurrency": order["TransactionCurrency"] or "EUR",
                         "SalesDocument": number,
                         "SalesDocumentItem": it["SalesOrderItem"]} for it in items]})
        created += 1
    return created


def run_emulated_demo(directory: Path, *, pack: str = "salesforce-sap", accounts: int = 40,
                      runs: int = 2, progress: Callable[[RunResult], None] | None = None,
                      ) -> EmulatedDemoResult:
    """Seed the emulators, serve them, and run the pack's flows ``runs`` times."""
    if pack not in EMULATED_PACKS:
        raise ConfigError(f"no emulated demo for {pack!r}; choose one of "
                          f"{', '.join(EMULATED_PACKS)} (or leave --systems out for the "
                          "SQLite demo)")
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    state_db = directory / f"state-{pack}.db"
    state_db.unlink(missing_ok=True)   # the emulators start empty: so does the state
    outcome = EmulatedDemoResult(directory, pack, state_url=f"sqlite:///{state_db}")
    sf_app, sap_app = seed_salesforce(accounts), seed_sap()
    with contextlib.ExitStack() as stack:
        env = {"SF_INSTANCE_URL": stack.enter_context(serve_wsgi(sf_app)),
               "SAP_BASE_URL": stack.enter_context(serve_wsgi(sap_app))}
        project = load_project(pack_dir(f"packs/{pack}"), env=env)
        store = StateStore.open(outcome.state_url)
        stack.callback(store.close)
        engine = stack.enter_context(Engine(project, store))
        for _ in range(runs):
            results, billed = [], 0
            for name in EMULATED_PACKS[pack]:
                if name == "sf_sap_invoices":
                    billed = bill_new_orders(sap_app)
                results.append(engine.run(name, progress=progress))
            outcome.runs.append(results)
            outcome.invoices_billed.append(billed)
    return outcome

