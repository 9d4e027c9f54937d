"""The benchmark's dataset, loaded quickly and the same on every run.

Each firm gets one template agreement made through the resolvers the API uses (so its rows
obey every rule), then set-based SQL copies it into the firm's other agreements, companies,
users and memberships. Sizes (issue 13):

    big    one firm: 3,000 agreements, 5,000 companies, 40,000 users, 60,000 memberships
    mid    one firm: 60 agreements x 20 companies, 5 members each, one company with 100 members
    small  50 firms: 2 agreements x 2 companies, 3 users each

`--small` divides the big firm by 50 and keeps the workloads' shapes. The manifest it writes
(JSON) names the firms, their admins and the objects the workloads read.

    .venv/bin/python -m bench.generate --database-url postgresql+asyncpg://postgres@127.0.0.1/bureau_bench
"""

import argparse
import asyncio
import json
import time
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from auth.clients import ALL_SCOPES
from auth.principal import Principal
from models import Agreement, Company, Subscription, ids
from models.db import connect
from models.enums import BillingInterval, BillingMode, FirmRole, LicenseType, Role, SalesChannel
from models.migrate import migrate
from resolvers import agreements, firms, subscriptions, users
from resolvers.agreements import NewAgreement
from resolvers.base import UnitOfWork, run_in_transaction
from resolvers.companies import NewCompany
from resolvers.runtime import Runtime


@dataclass(frozen=True)
class Shape:
    agreements: int
    companies: int
    users: int
    memberships: int  # at most 2 x users: each user works in one or two companies


@dataclass(frozen=True)
class Size:
    big: Shape
    mid_agreements: int
    mid_companies_each: int
    mid_members_each: int
    crowd: int  # members of the one crowded company of the mid firm (workload b)
    small_firms: int


FULL = Size(Shape(3000, 5000, 40000, 60000), 60, 20, 5, 100, 50)
SMALL = Size(Shape(60, 100, 800, 1200), 50, 20, 1, 100, 5)


@dataclass
class Made:
    firm: str  # global IDs, as the API shows them
    admin_email: str
    agreement: str
    company: str


async def _template(runtime: Runtime, name: str, *, named: int) -> Made:
    """A firm with its admin and one agreement, company and subscription, through the resolvers."""
    vendor = Principal(client_id="bureau-bench", scopes=frozenset(ALL_SCOPES))
    slug = name.lower().replace(" ", "-")
    admin = f"admin@{slug}.bench.example"

    async def build(uow: UnitOfWork) -> Made:
        firm = await firms.create_firm(uow, name=name, organization_number=None, country="SE", currency="SEK")
        await firms.update_firm(uow, firm, name=None, has_reseller_agreement=True, is_certified=True,
                                reseller_discount_percent=Decimal("12.50"))
        await firms.add_firm_staff(uow, firm, name=f"{name} Admin", email=admin, role=FirmRole.FIRM_ADMIN)
        agreement, company = await agreements.create_agreement(
            uow, firm, NewAgreement("Customer 00001", "00001", BillingMode.FIRM),
            NewCompany("Company 00001", None, None, "SE"))
        assert company is not None
        subscription = await subscriptions.create_subscription(
            uow, agreement, edition_code="PLUS", billing_interval=BillingInterval.MONTHLY,
            seat_counts=[(LicenseType.NAMED, named), (LicenseType.CONCURRENT, 10)],
            starts_on=date.today().replace(day=1), channel=SalesChannel.DIRECT)
        await subscriptions.set_feature(uow, subscription, feature_code="PAYROLL", enabled=True)
        await users.invite_user(uow, company, name="Template Owner", email=f"owner@{slug}.bench.example",
                                personal_identity_number=None, role=Role.ADMINISTRATOR,
                                license_type=LicenseType.NAMED, send_welcome_email=False)
        return Made(ids.of(firm), admin, ids.of(agreement), ids.of(company))

    outcome = await run_in_transaction(runtime, vendor, build)
    if outcome.errors or outcome.value is None:
        raise RuntimeError(f"{name}: {outcome.errors}")
    return outcome.value


# Copies of the template agreement's rows; :firm, :agreement and :subscription are the template's.
# Customer numbers (zero-padded) tie each copy to its number in the sequence.
COPY_AGREEMENTS = """
INSERT INTO agreements (firm_id, name, customer_number, billing_mode, created_at, e_invoice_enabled)
SELECT a.firm_id, 'Customer ' || lpad(g::text, 5, '0'), lpad(g::text, 5, '0'), a.billing_mode, a.created_at,
       a.e_invoice_enabled
FROM agreements a, generate_series(2, :agreements) g WHERE a.id = :agreement
"""
COPY_SUBSCRIPTIONS = """
INSERT INTO subscriptions (firm_id, agreement_id, edition_code, status, channel, billing_interval, starts_on,
                           current_period_start, current_period_end, created_at)
SELECT s.firm_id, a.id, s.edition_code, s.status, s.channel, s.billing_interval, s.starts_on,
       s.current_period_start, s.current_period_end, s.created_at
FROM subscriptions s JOIN agreements a ON a.firm_id = s.firm_id AND a.id <> s.agreement_id
WHERE s.id = :subscription
"""
_COPIES = ("JOIN subscriptions c ON c.firm_id = t.firm_id AND c.id <> t.subscription_id "
           "WHERE t.subscription_id = :subscription")
COPY_POOLS = f"""
INSERT INTO seat_pools (firm_id, subscription_id, license_type, purchased, purchased_at_period_start)
SELECT t.firm_id, c.id, t.license_type, t.purchased, t.purchased_at_period_start FROM seat_pools t {_COPIES}
"""
COPY_FEATURES = f"""
INSERT INTO subscription_features (firm_id, subscription_id, feature_code, enabled, paid_through_period_start,
                                   enabled_at)
SELECT t.firm_id, c.id, t.feature_code, t.enabled, t.paid_through_period_start, t.enabled_at
FROM subscription_features t {_COPIES}
"""
COPY_PERIODS = f"""
INSERT INTO subscription_periods (firm_id, subscription_id, agreement_id, start, "end", edition_code,
    billing_interval, billing_mode, named_seats, concurrent_seats, client_user_seats, features, created_at,
    currency, seat_price, feature_prices, discount_percent, cut_on)
SELECT t.firm_id, c.id, c.agreement_id, t.start, t."end", t.edition_code, t.billing_interval, t.billing_mode,
       t.named_seats, t.concurrent_seats, t.client_user_seats, t.features, t.created_at, t.currency,
       t.seat_price, t.feature_prices, t.discount_percent, t.cut_on
FROM subscription_periods t {_COPIES}
"""
# Orders numbered G-<subscription>, a series of their own: the firm's next real order number is untouched.
COPY_ORDERS = f"""
INSERT INTO orders (firm_id, subscription_id, number, order_date, billing_mode, currency, total, created_at,
                    list_total)
SELECT t.firm_id, c.id, 'G-' || c.id, t.order_date, t.billing_mode, t.currency, t.total, t.created_at,
       t.list_total
FROM orders t {_COPIES}
"""
COPY_ORDER_LINES = """
INSERT INTO order_lines (firm_id, order_id, position, description, license_type, feature_code, quantity,
                         unit_price, amount, list_unit_price, list_amount, discount_percent)
SELECT l.firm_id, o.id, l.position, l.description, l.license_type, l.feature_code, l.quantity, l.unit_price,
       l.amount, l.list_unit_price, l.list_amount, l.discount_percent
FROM order_lines l JOIN orders t ON t.id = l.order_id AND t.subscription_id = :subscription
JOIN orders o ON o.firm_id = t.firm_id AND o.number LIKE 'G-%'
"""
# Company k belongs to agreement ((k - 1) mod n) + 1: every agreement has one, the first ones two or more.
COPY_COMPANIES = """
INSERT INTO companies (firm_id, agreement_id, name, country, created_at)
SELECT t.firm_id, a.id, 'Company ' || lpad(g::text, 5, '0'), t.country, t.created_at
FROM companies t, generate_series(2, :companies) g
JOIN agreements a ON a.firm_id = :firm AND a.customer_number = lpad((((g - 1) % :agreements) + 1)::text, 5, '0')
WHERE t.id = :company
"""
ADD_USERS = """
INSERT INTO users (name, email, email_normalized, status, created_at)
SELECT 'Person ' || g, 'person' || g || '.' || :tag || '@bench.example',
       'person' || g || '.' || :tag || '@bench.example', 'ACTIVE', now()
FROM generate_series(1, :users) g
"""
# User u works in company u mod c, and the first (memberships - users) of them also in the next
# one: (user, company) stays unique. The first member of each company administers it; one in
# five holds a concurrent licence; one in twenty is still invited.
ADD_MEMBERSHIPS = """
WITH people AS (
  SELECT u.id, row_number() OVER (ORDER BY u.id) - 1 AS n FROM users u
  WHERE u.email LIKE '%.' || CAST(:tag AS text) || '@bench.example'
), places AS (
  SELECT c.id, row_number() OVER (ORDER BY c.id) - 1 AS n FROM companies c WHERE c.firm_id = :firm
), wanted AS (
  SELECT p.id AS user_id, (p.n + r) % :companies AS place, p.n, r FROM people p, generate_series(0, 1) r
  WHERE r = 0 OR p.n < CAST(:memberships AS int) - CAST(:users AS int)
)
INSERT INTO memberships (firm_id, company_id, user_id, role, license_type, status, invited_at, activated_at,
                         created_at, ended_by_archive)
SELECT :firm, c.id, w.user_id,
       CASE WHEN w.r = 0 AND w.n < :companies THEN 'ADMINISTRATOR' WHEN w.n % 3 = 0 THEN 'APPROVER' ELSE 'REPORTER' END,
       CASE WHEN w.n % 5 = 0 THEN 'CONCURRENT' ELSE 'NAMED' END,
       CASE WHEN w.n % 20 = 19 THEN 'INVITED' ELSE 'ACTIVE' END,
       now(), CASE WHEN w.n % 20 = 19 THEN NULL ELSE now() END, now(), false
FROM wanted w JOIN places c ON c.n = w.place
"""
ADD_AUDIT = """
INSERT INTO audit_events (firm_id, company_id, occurred_at, action, summary, subject_id)
SELECT c.firm_id, c.id, c.created_at + (e || ' minutes')::interval, 'company.updated',
       'Company ' || c.name || ' updated', 'Company:' || c.id
FROM companies c, generate_series(1, 3) e WHERE c.firm_id = :firm
"""


async def _run(connection: AsyncConnection, sql: str, **values: Any) -> int:
    names = {key: value for key, value in values.items() if f":{key}" in sql}
    result = await connection.execute(text(sql), names)
    return int(result.rowcount or 0)


async def _fill(connection: AsyncConnection, made: Made, tag: str, shape: Shape) -> None:
    """Copies the template agreement of `made` into a firm of `shape`."""
    firm_id = ids.decode_as(made.firm, "Firm")
    agreement_id = ids.decode_as(made.agreement, "Agreement")
    company_id = ids.decode_as(made.company, "Company")
    subscription_id = await connection.scalar(
        select(Subscription.id).where(Subscription.agreement_id == agreement_id))
    values = dict(firm=firm_id, agreement=agreement_id, company=company_id, subscription=subscription_id,
                  tag=tag, **asdict(shape))
    for sql in (COPY_AGREEMENTS, COPY_SUBSCRIPTIONS, COPY_POOLS, COPY_FEATURES, COPY_PERIODS, COPY_ORDERS,
                COPY_ORDER_LINES, COPY_COMPANIES, ADD_USERS, ADD_MEMBERSHIPS, ADD_AUDIT):
        await _run(connection, sql, **values)


CROWD = """
WITH crowd AS (
  INSERT INTO users (name, email, email_normalized, status, created_at)
  SELECT 'Crowd ' || g, address, address, 'ACTIVE', now()
  FROM generate_series(1, :crowd) g,
       LATERAL (SELECT 'crowd' || g || '@' || CAST(:tag AS text) || '.bench.example') a(address)
  RETURNING id
)
INSERT INTO memberships (firm_id, company_id, user_id, role, license_type, status, invited_at, activated_at,
                         created_at, ended_by_archive)
SELECT :firm, :company, id, 'REPORTER', 'CONCURRENT', 'ACTIVE', now(), now(), now(), false FROM crowd
"""


async def generate(url: str, size: Size) -> dict[str, Any]:
    await migrate(url)
    database = connect(url)
    runtime = Runtime.create(database)
    try:
        big = await _template(runtime, "Big Firm", named=100)
        mid = await _template(runtime, "Mid Firm", named=200)
        smalls = [await _template(runtime, f"Small Firm {n:02}", named=10) for n in range(1, size.small_firms + 1)]
        async with database.engine.begin() as connection:
            await _fill(connection, big, "big", size.big)
            mid_companies = size.mid_agreements * size.mid_companies_each
            await _fill(connection, mid, "mid", Shape(size.mid_agreements, mid_companies,
                                                     mid_companies * size.mid_members_each,
                                                     mid_companies * size.mid_members_each))
            crowded = await connection.scalar(
                select(Company.id).where(Company.firm_id == ids.decode_as(mid.firm, "Firm"))
                .order_by(Company.id).offset(1).limit(1))
            await _run(connection, CROWD, firm=ids.decode_as(mid.firm, "Firm"), company=crowded, tag="mid",
                       crowd=size.crowd)
            for number, small in enumerate(smalls, 1):
                await _fill(connection, small, f"small{number}", Shape(2, 4, 3, 6))
        async with database.engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("VACUUM ANALYZE")
            counts = {table: int(await connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                      for table in ("firms", "agreements", "companies", "users", "memberships", "subscriptions",
                                    "seat_pools", "orders", "audit_events")}
        async with database.sessions() as session:
            def first(model: Any, firm: str) -> Any:
                return select(model.id).where(model.firm_id == ids.decode_as(firm, "Firm")).order_by(model.id)

            big_company = await session.scalar(first(Company, big.firm))
            mid_agreement = await session.scalar(first(Agreement, mid.firm))
            big_subscription = await session.scalar(select(Subscription.id).where(
                Subscription.agreement_id == ids.decode_as(big.agreement, "Agreement")))
            assert big_company and mid_agreement and crowded and big_subscription
            admins = {name: made.admin_email for name, made in (("big", big), ("mid", mid))}
            return {
                "firms": {"big": big.firm, "mid": mid.firm, "small": [s.firm for s in smalls]},
                "admins": admins,
                "objects": {
                    "company": ids.encode("Company", big_company),
                    "crowded_company": ids.encode("Company", crowded),
                    "mid_agreement": ids.encode("Agreement", mid_agreement),
                    "big_subscription": ids.encode("LicenseSubscription", big_subscription),
                    "big_company_for_invites": big.company,
                },
                "counts": counts,
            }
    finally:
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True, help="an empty PostgreSQL database (postgresql+asyncpg://)")
    parser.add_argument("--small", action="store_true", help="a dataset that loads in seconds")
    parser.add_argument("--manifest", default="-", help="where to write the manifest (JSON); - is stdout")
    args = parser.parse_args()
    started = time.monotonic()
    manifest = asyncio.run(generate(args.database_url, SMALL if args.small else FULL))
    manifest["seconds"] = round(time.monotonic() - started, 1)
    out = json.dumps(manifest, indent=2)
    if args.manifest == "-":
        print(out)
    else:
        with open(args.manifest, "w") as f:
            f.write(out + "\n")


if __name__ == "__main__":
    main()
