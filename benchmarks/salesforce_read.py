"""Salesforce read benchmark against the emulator: requests used versus the minimum.

    python benchmarks/salesforce_read.py --accounts 25000 --fault-rate 0.1

For a full read and an incremental read (after a mass update of
``--changed`` accounts), with and without injected faults, prints the
records read, the logical requests (token + pages), the attempts actually
sent (retries included), the minimum the page size allows, their ratio, and
the wall time.
"""

from __future__ import annotations

import argparse
import math
import time

from crm2erp.connectors.salesforce import SalesforceConfig, SalesforceConnector
from crm2erp.emulators.kernel.server import serve_wsgi
from crm2erp.emulators.salesforce.app import CLIENT_ID, CLIENT_SECRET, make_app


def run(accounts: int, page_size: int, fault_rate: float, changed: int) -> list[tuple]:
    app = make_app(seed=11, accounts=accounts, contacts_per_account=0,
                   opportunities_per_account=0, products=0, fault_rate=fault_rate,
                   retry_after=0)
    rows = []
    with serve_wsgi(app) as url:
        conn = SalesforceConnector(SalesforceConfig.model_validate({
            "instance_url": url, "page_size": page_size,
            "retry": {"max_attempts": 10, "backoff_base": 0.01, "backoff_max": 0.1},
            "auth": {"type": "client_credentials", "client_id": CLIENT_ID,
                     "client_secret": CLIENT_SECRET}}))
        since = None
        for label, expected in (("full", accounts), ("incremental", changed)):
            if label == "incremental":
                app.touch("accounts", changed)
            conn.client.stats.reset()
            start = time.perf_counter()
            batches = list(conn.read("accounts", since, batch_size=page_size))
            seconds = time.perf_counter() - start
            since = batches[-1].cursor
            read = sum(len(b.rows) for b in batches)
            assert read == expected, f"{label}: read {read}, expected {expected}"
            stats = conn.client.stats
            minimum = math.ceil(expected / page_size) + (1 if label == "full" else 0)
            rows.append((label, f"{fault_rate:.0%}", read, stats.calls, stats.attempts, minimum,
                         stats.calls / minimum, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=25_000)
    parser.add_argument("--page-size", type=int, default=2000)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--changed", type=int, default=3000)
    args = parser.parse_args()
    table = []
    for rate in (0.0, args.fault_rate):
        table += run(args.accounts, args.page_size, rate, args.changed)
    head = ("read", "faults", "records", "requests", "attempts", "min requests", "ratio",
            "seconds")
    print(" | ".join(f"{h:>12}" for h in head))
    for row in table:
        print(" | ".join(f"{v:>12.3f}" if isinstance(v, float) else f"{v!s:>12}" for v in row))


if __name__ == "__main__":
    main()
