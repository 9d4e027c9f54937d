"""`bureau rollover`: the period change and the month's invoices (R15, R24).

Each subscription advances, and each firm is invoiced, in a transaction of its own, so a
failure touches one of them and a rerun picks up where it stopped."""

import logging
from dataclasses import dataclass
from datetime import date
from functools import partial

from sqlalchemy import select, union

from auth.principal import PLATFORM_ADMIN, Principal
from models import Order, SubscriptionPeriod
from resolvers import invoicing, periods
from resolvers.base import UnitOfWork, run_in_transaction
from resolvers.runtime import Runtime

log = logging.getLogger("bureau.rollover")
ROLLOVER_CLIENT = "bureau-rollover"


@dataclass
class RolloverReport:
    periods_started: int = 0
    changes_applied: int = 0
    invoices_issued: int = 0


async def rollover(runtime: Runtime, until: date) -> RolloverReport:
    system = Principal(client_id=ROLLOVER_CLIENT, scopes=frozenset({PLATFORM_ADMIN}))
    report = RolloverReport()

    async def due(uow: UnitOfWork) -> list[int]:
        return await periods.due_subscriptions(uow, until)

    for subscription_id in (await run_in_transaction(runtime, system, due)).value or []:
        advanced = await run_in_transaction(runtime, system, partial(periods.advance, subscription_id=subscription_id,
                                                                     until=until))
        if advanced.value is not None:
            report.periods_started += advanced.value.periods
            report.changes_applied += advanced.value.changes

    async def firms(uow: UnitOfWork) -> list[int]:
        rows = await uow.session.scalars(union(
            select(SubscriptionPeriod.firm_id).where(SubscriptionPeriod.invoice_id.is_(None),
                                                     SubscriptionPeriod.end <= until),
            select(Order.firm_id).where(Order.invoice_id.is_(None), Order.order_date < until),
        ))
        return sorted(set(rows.all()))

    for firm_id in (await run_in_transaction(runtime, system, firms)).value or []:
        issued = await run_in_transaction(runtime, system, partial(invoicing.issue_for_firm, firm_id=firm_id,
                                                                   until=until))
        report.invoices_issued += issued.value or 0
        for error in issued.errors:
            log.error("firm %s not invoiced: %s", firm_id, error.message)
    return report
