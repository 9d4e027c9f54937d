"""Money under random activity (hypothesis), judged by the reference model in
`tests/model/billing.py` (an independent reading of DESIGN.md section 2 and R38..R41).

Two reseller firms (discounts of 12.5 % and 7.5 %, so that half cents occur) with three
agreements each, two companies per agreement holding NAMED seats. Every example gives each
agreement a subscription (random billing mode, interval, edition, seats and anchor, a 31st and a
leap February among them), then applies a random sequence of seat changes, add-on switches,
edition changes and their cancellation, billing-mode changes, company moves, days passing and
rollovers (on time, late after days without one, twice, for a past day). Each request must do
what the model says (refused with its code, an order of its amount, or a scheduled change), and
after every rollover:

- every charge of the model is on exactly one invoice, and every invoice line is a charge of the
  model: each invoice (billing account and month) holds the model's lines to the cent;
- the totals match the model's to the cent;
- each firm's invoice numbers are gapless from I000001;
- no invoice issued before changed.

The world is built once into a template database; every example runs on a fresh copy of it
(CREATE DATABASE ... TEMPLATE), so examples are independent and hypothesis can shrink a failure.
BUREAU_BILLING_EXAMPLES scales the run (default 6 examples of up to 25 steps, under a minute);
`BUREAU_BILLING_EXAMPLES=200 pytest tests/property/test_billing_property.py` is the larger run.
"""

import os
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from auth.clients import ALL_SCOPES, register_client
from models.db import connect
from models.migrate import migrate
from resolvers.rollover import rollover
from tests.api.client import Api, Firm, new_pin
from tests.conftest import create_database, drop_database
from tests.model.billing import CUSTOMER, FIRM, MONTHLY, YEARLY, Catalog, Invoice, Model, Outcome
from tests.property.test_tenancy_property import clone, serving

EXAMPLES = int(os.environ.get("BUREAU_BILLING_EXAMPLES", "6"))
START = date(2028, 1, 31)  # a 31st: the anchors below clamp to 29 February 2028
ANCHORS = [date(2028, 1, 31), date(2028, 1, 15), date(2028, 1, 1), date(2028, 1, 4)]
DISCOUNTS = ["12.5", "7.5"]
HOLDERS = [2, 1, 0, 1, 3, 0]  # NAMED seat holders of each agreement's two companies, in turn
EDITIONS = ["STANDARD", "PLUS", "PREMIUM"]
ADDONS = ["PAYROLL", "BANK_INTEGRATION", "API_ACCESS"]

INVOICE = ("number billingMode period { start end } total { amount currency } "
           "lines { quantity description unitPrice { amount } amount { amount } agreement { id } }")
EDGES = f"invoices(first: 100) {{ edges {{ node {{ id {INVOICE} }} }} }}"
INVOICES = f"query($id: ID!) {{ node(id: $id) {{ ... on Firm {{ {EDGES} }} ... on Agreement {{ {EDGES} }} }} }}"
ORDER = "order { total { amount } }"


@dataclass
class Template:
    url: str
    vendor_client_id: str
    app_client_id: str
    firms: list[Firm]
    agreements: dict[str, list[str]]  # firm ID -> its agreements
    companies: dict[str, list[tuple[str, int]]]  # agreement ID -> (company, holders)

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example: no tokens
        return f"Template({len(self.firms)} firms, {len(self.companies)} agreements)"


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 10, tzinfo=UTC)


@contextmanager
def clock(api: Api, day: date) -> Iterator[None]:
    previous = api.runtime.clock
    api.runtime.clock = lambda: at(day)
    try:
        yield
    finally:
        api.runtime.clock = previous


async def build(api: Api) -> tuple[list[Firm], dict[str, list[str]], dict[str, list[tuple[str, int]]]]:
    firms: list[Firm] = []
    agreements: dict[str, list[str]] = {}
    companies: dict[str, list[tuple[str, int]]] = {}
    holders = iter(HOLDERS * 4)
    for discount in DISCOUNTS:
        firm = await api.firm(reseller=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": discount}, "firm { id }",
                         token=await api.vendor())
        firms.append(firm)
        agreements[firm.id] = []
        for _ in range(3):
            agreement_id, first = await api.agreement(firm)
            assert first is not None
            agreements[firm.id].append(agreement_id)
            # The seat holders are invited per example, once the subscription holds their seats.
            companies[agreement_id] = [(first, next(holders)), (await api.company(firm, agreement_id), next(holders))]
    return firms, agreements, companies


@pytest.fixture(scope="module")
async def template() -> AsyncIterator[Template]:
    url = await create_database("bureau_billing")
    await migrate(url)
    database = connect(url)
    async with database.sessions.begin() as session:
        vendor = await register_client(session, name="vendor back office", scopes=list(ALL_SCOPES))
        app_client = await register_client(session, name="partner app", scopes=list(ALL_SCOPES))
    await database.dispose()
    async with serving(url, vendor.client_id, app_client.client_id) as api:
        with clock(api, START):
            firms, agreements, companies = await build(api)
    yield Template(url, vendor.client_id, app_client.client_id, firms, agreements, companies)
    await drop_database(url)


# ---------------------------------------------------------------------------- the run


class Run:
    """One example: the server (through HTTP) and the model, side by side."""

    def __init__(self, api: Api, template: Template, model: Model) -> None:
        self.api = api
        self.t = template
        self.model = model
        self.today = START
        self.admin = {a: f.admin for f in template.firms for a in template.agreements[f.id]}
        self.subscription: dict[str, str] = {}
        self.seen: dict[str, dict[str, Any]] = {}  # invoice ID -> as it read when first seen
        self.log: list[str] = []

    async def mutate(self, name: str, input: dict[str, Any], selection: str, agreement: str) -> dict[str, Any]:
        with clock(self.api, self.today):
            return await self.api.mutate(name, input, selection, token=self.admin[agreement], expect_errors=True)

    def expect(self, label: str, payload: dict[str, Any], outcome: Outcome) -> None:
        self.log.append(f"{self.today} {label} -> {outcome}")
        event(f"{label.split()[0]}: {outcome.error or ('order' if outcome.order else outcome.scheduled or 'done')}")
        codes = [e["code"] for e in payload["userErrors"]]
        assert codes == ([outcome.error] if outcome.error else []), self.explain(f"{label}: {codes}")
        if "order" in payload:
            order = payload["order"]
            got = Decimal(order["total"]["amount"]) if order else None
            assert got == outcome.order, self.explain(f"{label}: order {got}, the model {outcome.order}")
        if "scheduledChange" in payload:
            kind = (payload["scheduledChange"] or {}).get("kind")
            assert kind == outcome.scheduled, self.explain(f"{label}: scheduled {kind}")

    def explain(self, message: str) -> str:
        return message + "\n" + "\n".join(self.log[-30:])

    # ------------------------------------------------------------------ set-up

    async def subscribe(self, data: st.DataObject) -> None:
        for firm in self.t.firms:
            for agreement in self.t.agreements[firm.id]:
                held = sum(n for _, n in self.t.companies[agreement])
                mode = data.draw(st.sampled_from([CUSTOMER, FIRM]), label="mode")
                interval = data.draw(st.sampled_from([MONTHLY, YEARLY]), label="interval")
                edition = data.draw(st.sampled_from(EDITIONS), label="edition")
                seats = data.draw(st.integers(max(held, 1), held + 4), label="seats")
                anchor = data.draw(st.sampled_from(ANCHORS), label="anchor")
                if mode == FIRM:  # no subscription yet: the mode holds at once
                    changed = await self.mutate("updateAgreement", {"agreementId": agreement, "billingMode": FIRM},
                                                "agreement { billingMode }", agreement)
                    assert changed["agreement"]["billingMode"] == FIRM, changed
                created = await self.mutate("createSubscription", {
                    "ownerId": agreement, "editionCode": edition, "billingInterval": interval,
                    "startsOn": anchor.isoformat(), "seats": [{"licenseType": "NAMED", "count": seats}]},
                    "subscription { id }", agreement)
                assert created["userErrors"] == [], created
                self.subscription[agreement] = created["subscription"]["id"]
                self.model.subscribe(agreement, interval=interval, starts_on=anchor, edition=edition, seats=seats,
                                     mode=mode)
                self.log.append(f"{self.today} {agreement} {mode} {interval} {edition} {seats} from {anchor}")
                for company, holders in self.t.companies[agreement]:
                    for _ in range(holders):  # without an email, an invitation holds its seat (R51)
                        with clock(self.api, self.today):
                            await self.api.invite(self.admin[agreement], company, personalIdentityNumber=new_pin())

    # ------------------------------------------------------------------ steps

    def agreements(self) -> list[str]:
        return list(self.subscription)

    async def seats(self, data: st.DataObject) -> None:
        agreement = data.draw(st.sampled_from(self.agreements()), label="agreement")
        count = data.draw(st.integers(1, 9), label="seats")
        payload = await self.mutate("changeSeats", {"subscriptionId": self.subscription[agreement],
                                                    "licenseType": "NAMED", "seats": count},
                                    f"{ORDER} scheduledChange {{ kind }}", agreement)
        self.expect(f"changeSeats {agreement} {count}", payload, self.model.change_seats(agreement, count))

    async def addon(self, data: st.DataObject) -> None:
        agreement = data.draw(st.sampled_from(self.agreements()), label="agreement")
        code = data.draw(st.sampled_from(ADDONS), label="add-on")
        enabled = data.draw(st.booleans(), label="enabled")
        payload = await self.mutate("setFeature", {"subscriptionId": self.subscription[agreement],
                                                   "featureCode": code, "enabled": enabled}, ORDER, agreement)
        self.expect(f"setFeature {agreement} {code} {enabled}", payload,
                    self.model.set_addon(agreement, code, enabled))

    async def edition(self, data: st.DataObject) -> None:
        pending = [a for a, sub in self.model.subscriptions.items() if sub.pending_edition is not None]
        # Half the time one with a change pending: a second change and a cancellation get their turn.
        prefer_pending = bool(pending) and data.draw(st.booleans(), label="pending")
        agreement = data.draw(st.sampled_from(pending if prefer_pending else self.agreements()), label="agreement")
        sub = self.model.subscriptions[agreement]
        if sub.pending_edition is not None and data.draw(st.booleans(), label="cancel"):
            payload = await self.mutate("cancelScheduledChange", {"subscriptionId": self.subscription[agreement],
                                                                  "kind": "EDITION_CHANGE"}, "subscription { id }",
                                        agreement)
            self.expect(f"cancel edition change {agreement}", payload, self.model.cancel_edition_change(agreement))
            return
        code = data.draw(st.sampled_from([e for e in EDITIONS if e != sub.edition]), label="edition")
        payload = await self.mutate("changeEdition", {"subscriptionId": self.subscription[agreement],
                                                      "editionCode": code}, "subscription { id }", agreement)
        self.expect(f"changeEdition {agreement} {code}", payload, self.model.change_edition(agreement, code))

    async def billing_mode(self, data: st.DataObject) -> None:
        agreement = data.draw(st.sampled_from(self.agreements()), label="agreement")
        mode = data.draw(st.sampled_from([CUSTOMER, FIRM]), label="mode")
        payload = await self.mutate("updateAgreement", {"agreementId": agreement, "billingMode": mode},
                                    "agreement { billingMode }", agreement)
        self.expect(f"billingMode {agreement} {mode}", payload, self.model.change_billing_mode(agreement, mode))
        assert payload["agreement"]["billingMode"] == self.model.billing_mode(agreement), self.explain("mode shown")

    async def move(self, data: st.DataObject) -> None:
        # Half the time into an agreement whose seats a period change just lowered: seats counted
        # before the day's rollover must be the new period's (R8, R38).
        cut = [(company, target) for company, agreement in self.model.company_agreement.items()
               for target, sub in self.model.subscriptions.items()
               if sub.cut and target != agreement and self.model.holders[company]
               and self.model.firm_of[target] == self.model.firm_of[agreement]]
        into_a_cut = bool(cut) and data.draw(st.booleans(), label="into a cut")
        if into_a_cut:
            company, target = data.draw(st.sampled_from(cut), label="move")
            current = self.model.company_agreement[company]
        else:
            firm = data.draw(st.sampled_from(self.t.firms), label="firm")
            company = data.draw(st.sampled_from([c for a in self.t.agreements[firm.id]
                                                 for c, _ in self.t.companies[a]]), label="company")
            current = self.model.company_agreement[company]
            target = data.draw(st.sampled_from([a for a in self.t.agreements[firm.id] if a != current]), label="to")
        payload = await self.mutate("moveCompany", {"companyId": company, "toAgreementId": target},
                                    "company { id }", current)
        self.expect(f"moveCompany {company} {current} -> {target}", payload, self.model.move_company(company, target))

    async def days(self, data: st.DataObject) -> None:
        days = data.draw(st.sampled_from([1, 3, 10, 29, 31, 45, 95]), label="days")
        self.today += timedelta(days=days)
        self.model.set_today(self.today)
        self.log.append(f"{self.today} (+{days} days)")

    async def run_rollover(self, data: st.DataObject) -> None:
        how = data.draw(st.sampled_from(["on time", "twice", "for a past day"]), label="rollover")
        until = self.today - timedelta(days=data.draw(st.integers(1, 40), label="back")) \
            if how == "for a past day" else self.today
        await self.rollover(until, twice=how == "twice")

    async def rollover(self, until: date, *, twice: bool = False) -> None:
        self.log.append(f"{self.today} rollover --date {until}{' (twice)' if twice else ''}")
        for _ in range(2 if twice else 1):
            with clock(self.api, self.today):
                report = await rollover(self.api.runtime, until)
            assert not report.failed_firms, report
            issued = self.model.rollover(until)
            event(f"rollover: {'invoices' if issued else 'none'}, late charges "
                  f"{'yes' if any(c.month < i.month for i in issued for c in i.charges) else 'no'}")
        await self.check_invoices()

    # ------------------------------------------------------------------ the oracle

    async def read_invoices(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every invoice of both firms, with its firm and billing account."""
        found = []
        for firm in self.t.firms:
            for owner, account in [(firm.id, (FIRM, firm.id))] + [(a, (CUSTOMER, a))
                                                                    for a in self.t.agreements[firm.id]]:
                data = await self.api.ok(INVOICES, {"id": owner}, token=firm.admin)
                for edge in data["node"]["invoices"]["edges"]:
                    found.append((firm.id, f"{account[0]} {account[1]}", edge["node"]))
        return found

    async def check_invoices(self) -> None:
        found = await self.read_invoices()
        for _, _, invoice in found:  # no issued invoice changed
            before = self.seen.setdefault(invoice["id"], invoice)
            assert invoice == before, self.explain(f"invoice {invoice['number']} changed: {before} -> {invoice}")
        for firm in self.t.firms:  # one gapless series per firm
            numbers = sorted(i["number"] for f, _, i in found if f == firm.id)
            assert numbers == [f"I{n:06d}" for n in range(1, len(numbers) + 1)], self.explain(f"numbers {numbers}")
        server = Counter(server_key(account, invoice) for _, account, invoice in found)
        model = Counter(model_key(invoice) for invoice in self.model.invoices)
        assert server == model, self.explain(
            f"invoices differ:\n only on the server {dict(server - model)}\n only in the model {dict(model - server)}")


Key = tuple[str, str, tuple[tuple[str, int, str, str], ...], str]


def server_key(account: str, invoice: dict[str, Any]) -> Key:
    """An invoice as compared: its account, month, lines (agreement, quantity, unit price,
    amount) and total."""
    lines = sorted((line["agreement"]["id"], line["quantity"], line["unitPrice"]["amount"], line["amount"]["amount"])
                   for line in invoice["lines"])
    assert sum(Decimal(line[3]) for line in lines) == Decimal(invoice["total"]["amount"]), invoice
    return (account, invoice["period"]["start"], tuple(lines), invoice["total"]["amount"])


def model_key(invoice: Invoice) -> Key:
    lines = sorted((a, q, str(u), str(amount)) for a, q, u, amount in (c.line() for c in invoice.charges))
    return (f"{invoice.account[0]} {invoice.account[1]}", invoice.month.isoformat(), tuple(lines), str(invoice.total))


STEPS = ["seats", "seats", "addon", "addon", "edition", "billing_mode", "move", "days", "days", "days",
         "run_rollover", "run_rollover"]


@asynccontextmanager
async def fresh(template: Template) -> AsyncIterator[Api]:
    url = await clone(template.url)
    try:
        async with serving(url, template.vendor_client_id, template.app_client_id) as api:
            yield api
    finally:
        await drop_database(url)


async def catalog(api: Api, firm: Firm) -> Catalog:
    data = await api.ok("{ catalog { editions { code seatPrice { amount } } "
                        "features { code monthlyPrice { amount } } } }", token=firm.admin)
    return Catalog({e["code"]: Decimal(e["seatPrice"]["amount"]) for e in data["catalog"]["editions"]},
                   {f["code"]: Decimal(f["monthlyPrice"]["amount"]) for f in data["catalog"]["features"]})


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=list(Phase) if os.environ.get("BUREAU_BILLING_SHRINK", "1") == "1" else [Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_a_year_of_random_activity_costs_what_the_model_says(template: Template, data: st.DataObject) -> None:
    async with fresh(template) as api:
        model = Model(await catalog(api, template.firms[0]), START)
        for firm, discount in zip(template.firms, DISCOUNTS, strict=True):
            model.add_firm(firm.id, Decimal(discount))
            for agreement in template.agreements[firm.id]:
                model.add_agreement(firm.id, agreement)
                for company, holders in template.companies[agreement]:
                    model.add_company(agreement, company, holders)
        run = Run(api, template, model)
        await run.subscribe(data)
        for _ in range(data.draw(st.integers(5, 25), label="steps")):
            await getattr(run, data.draw(st.sampled_from(STEPS), label="step"))(data)
        # A year on at least, so that yearly periods end and are invoiced too; then once more.
        run.today = max(run.today, START + timedelta(days=400)) + timedelta(days=1)
        run.model.set_today(run.today)
        await run.rollover(run.today)
        await run.rollover(run.today, twice=True)
        assert run.model.invoices, "a year of activity invoices something"
