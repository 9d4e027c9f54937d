"""The embedded default: the `bureau` command and the API's core path on an SQLite file."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import create_app
from models.db import connect
from resolvers.runtime import Runtime
from settings import Settings
from tests.api.client import Api

ROOT = Path(__file__).resolve().parents[2]


def bureau(tmp_path: Path, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}",
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli", *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
async def sqlite_api(tmp_path: Path) -> Any:
    bureau(tmp_path, "migrate")
    vendor = json.loads(bureau(tmp_path, "clients", "create", "--name", "vendor", "--scopes",
                               "platform:admin firms:read firms:write agreements:read agreements:write "
                               "companies:read subscriptions:read subscriptions:write users:read users:write"))
    token = bureau(tmp_path, "tokens", "issue", "--client-id", vendor["client_id"], "--scopes",
                   "platform:admin firms:read firms:write agreements:read agreements:write companies:read "
                   "subscriptions:read subscriptions:write users:read users:write")
    database = connect(f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}")
    runtime = Runtime.create(database, Settings())
    transport = httpx.ASGITransport(app=create_app(runtime=runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
        api = Api(http, runtime, vendor_client_id=vendor["client_id"], app_client_id=vendor["client_id"])
        api._vendor = token
        yield api
    await database.dispose()


async def test_core_path_on_sqlite(sqlite_api: Api, tmp_path: Path) -> None:
    api = sqlite_api
    vendor = await api.vendor()
    firm = await api.mutate("createFirm", {"name": "Lite", "country": "SE", "currency": "SEK"}, "firm { id }",
                            token=vendor)
    firm_id = firm["firm"]["id"]
    await api.mutate("addFirmStaff", {"firmId": firm_id, "name": "A", "email": "a@lite.example",
                                      "role": "FIRM_ADMIN"}, "firmMember { id }", token=vendor)
    created = await api.mutate("createAgreement", {"firmId": firm_id, "name": "C", "customerNumber": "1",
                                                   "billingMode": "CUSTOMER",
                                                   "company": {"name": "C AB", "country": "SE"}},
                               "agreement { id } company { id }", token=vendor)
    agreement_id, company_id = created["agreement"]["id"], created["company"]["id"]
    duplicate = await api.mutate("createAgreement", {"firmId": firm_id, "name": "D", "customerNumber": "1",
                                                     "billingMode": "CUSTOMER"}, "agreement { id }", token=vendor,
                                 expect_errors=True)
    assert [e["code"] for e in duplicate["userErrors"]] == ["DUPLICATE_CUSTOMER_NUMBER"]
    subscription = (await api.mutate("createSubscription", {"ownerId": agreement_id, "editionCode": "PLUS",
                                                            "billingInterval": "MONTHLY",
                                                            "seats": [{"licenseType": "NAMED", "count": 1}]},
                                     "subscription { id }", token=vendor))["subscription"]["id"]
    await api.invite(vendor, company_id, email="u@lite.example")
    full = await api.invite(vendor, company_id, email="v@lite.example", expect_errors=True)
    assert [e["code"] for e in full["userErrors"]] == ["SEAT_LIMIT_REACHED"]
    data = await api.ok("""query($id: ID!) { firm(id: $id) { agreements(first: 5) { edges { node {
        subscription { monthlyPrice { amount currency } seats { inUse available } }
        companies(first: 5) { edges { node { members(first: 5) { edges { node { user { email } } } } } } } } } } } }""",
                        {"id": firm_id}, token=vendor)
    agreement = data["firm"]["agreements"]["edges"][0]["node"]
    assert agreement["subscription"]["monthlyPrice"] == {"amount": "249.00", "currency": "SEK"}
    assert agreement["subscription"]["seats"] == [{"inUse": 1, "available": 0}]
    # a seat added: its situation is read side by side (models.side_by_side: FULL JOIN ON false, SQLite 3.39+)
    added = await api.mutate("changeSeats", {"subscriptionId": subscription, "licenseType": "NAMED", "seats": 2},
                             "subscription { seats { licenseType purchased } }", token=vendor)
    assert added["subscription"]["seats"] == [{"licenseType": "NAMED", "purchased": 2}]
    await api.invite(vendor, company_id, email="v@lite.example")
    # the firm admin's token, issued by the command line for a staff user
    admin = bureau(tmp_path, "tokens", "issue", "--client-id", api.vendor_client_id, "--user-email",
                   "A@lite.example", "--scopes", "firms:read")
    viewer = await api.ok("{ viewer { firms { edges { node { name } } } } }", token=admin)
    assert viewer["viewer"]["firms"]["edges"] == [{"node": {"name": "Lite"}}]
    # the period change and invoicing on the embedded database, twice: the second run does nothing
    first = json.loads(bureau(tmp_path, "rollover", "--date", "2028-01-01"))
    again = json.loads(bureau(tmp_path, "rollover", "--date", "2028-01-01"))
    assert first["periodsStarted"] > 0 and first["invoicesIssued"] > 0
    assert again["periodsStarted"] == 0 and again["invoicesIssued"] == 0


def test_schema_export_writes_the_sdl(tmp_path: Path) -> None:
    bureau(tmp_path, "schema", "export", str(tmp_path / "out.graphql"))
    assert (tmp_path / "out.graphql").read_text() == (ROOT / "schema.graphql").read_text()


def test_tokens_are_refused_for_scopes_the_client_lacks(tmp_path: Path) -> None:
    bureau(tmp_path, "migrate")
    client = json.loads(bureau(tmp_path, "clients", "create", "--name", "narrow", "--scopes", "firms:read"))
    env = {**os.environ, "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bureau.db'}", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "cli", "tokens", "issue", "--client-id", client["client_id"],
                           "--scopes", "firms:write"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0 and "firms:write" in done.stderr


async def test_a_deleted_rows_id_is_never_handed_out_again(sqlite_api: Api) -> None:
    """R62: SQLite without AUTOINCREMENT gives the newest row's id, once deleted, to the next row."""
    api = sqlite_api
    vendor = await api.vendor()
    firm = (await api.mutate("createFirm", {"name": "Lite", "country": "SE", "currency": "SEK"}, "firm { id }",
                             token=vendor))["firm"]["id"]
    new = {"firmId": firm, "name": "Gone", "billingMode": "CUSTOMER"}
    first = (await api.mutate("createAgreement", new, "agreement { id }", token=vendor))["agreement"]["id"]
    deleted = await api.mutate("deleteAgreement", {"agreementId": first}, "deletedAgreementId", token=vendor)
    assert deleted["deletedAgreementId"] == first
    second = (await api.mutate("createAgreement", {**new, "name": "Next"}, "agreement { id }",
                               token=vendor))["agreement"]["id"]
    assert second != first
    old = await api.ok("query($id: ID!) { node(id: $id) { id } }", {"id": first}, token=vendor)
    assert old["node"] is None
