"""Source deletes reach the CRM targets, read back through each CRM's own API (issue 11).

The source is the SQLite CRM table of the engine tests with a soft-delete
column; the target is the Salesforce, HubSpot, Dynamics or declarative REST
emulator on a loopback port. Every assertion reads the emulator back over
HTTP (SOQL query, HubSpot list, Dataverse GET, REST GET): a delete the target
did not apply, or one that found nothing there, must show as a dead letter of
stage ``delete``, never as done.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
import sqlalchemy as sa

from crm2erp.emulators.kernel.server import serve_wsgi

FAST = "{max_attempts: 3, backoff_base: 0.001, backoff_max: 0.01}"
SOURCE = """
connections:
  crm:
    type: sql
    url: ${TEST_CRM_URL}
    streams:
      accounts: {table: accounts, key: id, cursor: updated_at, soft_delete_column: is_deleted}
  target:
"""
FLOW = """
flow: accounts
entity: Account
source: {connection: crm, stream: accounts, mapping: account.in.map.yaml}
target: {connection: target, stream: accounts, mapping: target.out.map.yaml}
incremental: {cursor: updated_at, lookback: 1m, batch_size: 3}
delete_policy: %s
"""
NAMES = ("Company 1", "Company 2", "Company 3")


class Target:
    """``read_back()``: name -> (target id, active) of the records the CRM's API shows;
    ``remove(id)``: delete one through that API, as a CRM user would."""

    archive_keeps = False     # archive sets a field: the record stays, inactive


class Salesforce(Target):
    """Live = returned by a SOQL query (deleted records are not); archived = Active__c false."""

    modes = ("delete", "archive")
    connection = f"""
    type: salesforce
    instance_url: ${{TARGET_URL}}
    retry: {FAST}
    auth: {{type: client_credentials, client_id: emulator-client-id,
           client_secret: emulator-client-secret}}
    streams:
      accounts: {{sobject: Account, fields: [Id, Name, Active__c], external_id_field: ERP_Id__c,
                 archive: {{field: Active__c, value: false}}}}
"""
    mapping = "ERP_Id__c: {from: id}\n  Name: {from: name}"
    archive_keeps = True

    def __init__(self):
        from crm2erp.emulators.salesforce.app import make_app
        self.app = make_app(seed=5, accounts=2, contacts_per_account=0,
                            opportunities_per_account=0, products=1)

    def _headers(self):
        token = requests.post(f"{self.app.base_url}/services/oauth2/token", data={
            "grant_type": "client_credentials", "client_id": "emulator-client-id",
            "client_secret": "emulator-client-secret"}).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def read_back(self) -> dict[str, tuple[str, bool]]:
        """Name -> (Id, active) of the records a query returns."""
        names = ", ".join(f"'{n}'" for n in NAMES)
        body = requests.get(f"{self.app.base_url}/services/data/v61.0/query",
                            headers=self._headers(), params={
                                "q": f"SELECT Id, Name, Active__c FROM Account "
                                     f"WHERE Name IN ({names})"}).json()
        return {r["Name"]: (r["Id"], r["Active__c"] is not False) for r in body["records"]}

    def remove(self, record_id: str) -> None:
        answer = requests.delete(f"{self.app.base_url}/services/data/v61.0/composite/sobjects",
                                 headers=self._headers(), params={"ids": record_id}).json()
        assert answer == [{"id": record_id, "success": True, "errors": []}]


class HubSpot(Target):
    """Live = listed without ``archived=true``; HubSpot's delete is an archive."""

    modes = ("archive",)
    connection = f"""
    type: hubspot
    base_url: ${{TARGET_URL}}
    retry: {FAST}
    search_requests_per_second: null
    auth: {{type: bearer, token: pat-eu1-00000000-emulator-private-app-token}}
    streams:
      accounts: {{object_type: companies, properties: [name, erp_id], id_property: erp_id}}
"""
    mapping = "erp_id: {from: id}\n  name: {from: name}"

    def __init__(self):
        from crm2erp.emulators.hubspot.app import TOKEN, make_app
        self.app = make_app(seed=5, companies=2)
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def read_back(self) -> dict[str, tuple[str, bool]]:
        body = requests.get(f"{self.app.base_url}/crm/v3/objects/companies",
                            headers=self.headers, params={"limit": 100, "properties": "name"}
                            ).json()
        assert "paging" not in body
        return {r["properties"]["name"]: (r["id"], not r["archived"])
                for r in body["results"] if r["properties"]["name"] in NAMES}

    def remove(self, record_id: str) -> None:
        resp = requests.post(f"{self.app.base_url}/crm/v3/objects/companies/batch/archive",
                             headers=self.headers, json={"inputs": [{"id": record_id}]})
        assert resp.status_code == 204 and resp.content == b""


class Dynamics(Target):
    """Live = in the entity set; archived = deactivated (statecode 1, statuscode 2)."""

    modes = ("delete", "archive")
    connection = f"""
    type: dynamics
    environment_url: ${{TARGET_URL}}
    authority_url: ${{TARGET_URL}}
    tenant_id: 72f988bf-0000-4000-8000-000000000001
    retry: {FAST}
    auth: {{type: client_credentials, client_id: 0b1c2d3e-0000-4000-8000-emulator0001,
           client_secret: emulator-client-secret}}
    streams:
      accounts: {{entity_set: accounts, logical_name: account, key: accountid,
                 alternate_key: [accountnumber], fields: [accountid, name, statecode]}}
"""
    mapping = "accountnumber: {from: id}\n  name: {from: name}"
    archive_keeps = True

    def __init__(self):
        from crm2erp.emulators.dynamics.app import make_app
        self.app = make_app(seed=5, accounts=2)

    def _headers(self):
        from crm2erp.emulators.dynamics.app import CLIENT_ID, CLIENT_SECRET, TENANT_ID
        token = requests.post(f"{self.app.base_url}/{TENANT_ID}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": f"{self.app.base_url}/.default"}).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def read_back(self) -> dict[str, tuple[str, bool]]:
        body = requests.get(f"{self.app.base_url}/api/data/v9.2/accounts",
                            headers=self._headers(),
                            params={"$select": "accountid,name,statecode,statuscode"}).json()
        assert "@odata.nextLink" not in body
        return {r["name"]: (r["accountid"], (r["statecode"], r["statuscode"]) != (1, 2))
                for r in body["value"] if r["name"] in NAMES}

    def remove(self, record_id: str) -> None:
        resp = requests.delete(f"{self.app.base_url}/api/data/v9.2/accounts({record_id})",
                               headers=self._headers())
        assert resp.status_code == 204


class Rest(Target):
    """Live = ``active_flag`` true in ``GET /v1/organizations/{id}`` (Pipedrive keeps
    deleted organizations readable)."""

    modes = ("delete",)
    connection = f"""
    type: rest
    base_url: ${{TARGET_URL}}
    retry: {FAST}
    auth: {{type: client_credentials, client_id: demo-crm-client, client_secret: demo-crm-secret,
           token_url: /oauth/token}}
    streams:
      accounts:
        path: /v1/organizations
        records: data
        write:
          mode: lookup
          key: ref
          find: {{path: /v1/organizations/find, param: ref, records: data}}
          create: {{method: POST, path: /v1/organizations}}
          update: {{method: PUT, path: "/v1/organizations/{{id}}"}}
          id_path: data.id
          error_path: error
          delete: {{method: DELETE, path: "/v1/organizations/{{id}}"}}
"""
    mapping = "ref: {from: id}\n  name: {from: name}"

    def __init__(self):
        from crm2erp.emulators.rest.app import make_app
        self.app = make_app(seed=5, organizations=2)

    def _headers(self):
        from crm2erp.emulators.rest.app import CLIENT_ID, CLIENT_SECRET
        token = requests.post(f"{self.app.base_url}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET}).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}

    def read_back(self) -> dict[str, tuple[str, bool]]:
        found = {}
        for org_id in range(1, 6):
            resp = requests.get(f"{self.app.base_url}/v1/organizations/{org_id}",
                                headers=self._headers())
            if resp.status_code == 200 and resp.json()["data"]["name"] in NAMES:
                org = resp.json()["data"]
                if org["active_flag"]:
                    found[org["name"]] = (str(org["id"]), True)
        return found

    def remove(self, record_id: str) -> None:
        resp = requests.delete(f"{self.app.base_url}/v1/organizations/{record_id}",
                               headers=self._headers())
        assert resp.json() == {"success": True, "data": {"id": int(record_id)}}


CASES = [(kind, mode) for kind in (Salesforce, HubSpot, Dynamics, Rest) for mode in kind.modes]


@pytest.fixture(params=CASES, ids=[f"{k.__name__.lower()}-{m}" for k, m in CASES])
def crm_target(request, systems, project_writer, monkeypatch):
    kind, mode = request.param
    target = kind()
    with systems.crm.begin() as conn:
        conn.execute(sa.text("ALTER TABLE accounts ADD COLUMN is_deleted BOOLEAN "
                             "NOT NULL DEFAULT 0"))
    connection = "\n".join("    " + line[4:] if line.strip() else line
                           for line in target.connection.strip("\n").splitlines())
    project_writer(systems.project, **{
        "connections.yaml": SOURCE + connection + "\n",
        "accounts.flow.yaml": FLOW % mode,
        "target.out.map.yaml": ("mapping: target_out\ndirection: outbound\nentity: Account\n"
                                f"fields:\n  {target.mapping}\n"),
        "contacts.flow.yaml": None})
    (systems.project / "contacts.flow.yaml").unlink()
    with serve_wsgi(target.app):
        monkeypatch.setenv("TARGET_URL", target.app.base_url)
        yield systems, target, mode


def _delete_in_source(systems, *ids, at):
    with systems.crm.begin() as conn:
        conn.execute(sa.text("UPDATE accounts SET is_deleted = 1, updated_at = :t "
                             "WHERE id IN :ids").bindparams(sa.bindparam("ids", expanding=True)),
                     {"t": at, "ids": list(ids)})


def test_a_source_delete_reaches_the_crm_and_a_missing_record_is_a_dead_letter(
        crm_target, account, engine_for, t0):
    s, target, mode = crm_target
    s.add_accounts(account(1), account(2), account(3))
    first = engine_for(s).run("accounts")
    assert first.status == "succeeded", first
    before = target.read_back()
    assert set(before) == set(NAMES) and all(live for _, live in before.values())

    target.remove(before["Company 3"][0])        # someone deletes it in the CRM meanwhile
    later = t0 + dt.timedelta(hours=1)
    _delete_in_source(s, "A002", "A003", at=later)
    engine = engine_for(s)
    result = engine.run("accounts")

    kept = {"Company 1": before["Company 1"]}
    if mode == "archive" and target.archive_keeps:
        kept["Company 2"] = (before["Company 2"][0], False)   # there, deactivated
    assert target.read_back() == kept                    # 2 deleted or archived, 3 gone
    assert result.status == "partial" and result.counts["deleted"] == 1
    [letter] = engine.store.dead_letters("accounts")
    assert (letter.source_key, letter.stage) == ("A003", "delete")
    assert "not found" in letter.error and before["Company 3"][0].lower() in letter.error.lower()
    mark = engine.store.get_watermark("accounts", "accounts")
    assert str(mark.value).startswith(later.isoformat()), mark  # moved, the letter recorded

    again = engine_for(s).run("accounts")                 # the lookback reads both again
    assert again.counts["deleted"] == 0                   # the applied delete is not resent
    assert target.read_back() == kept
    [still] = engine.store.dead_letters("accounts")
    assert still.id == letter.id                          # the same letter, not a new one
