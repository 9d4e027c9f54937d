"""`bureau rollover`: the period change and the month's invoices (R15, R24).

Each subscription advances, and each firm is invoiced, in a transaction of its own, so a
failure touches one of them: it is logged with its firm, every other firm is still
invoiced, the report names the failed firms (the command then exits non-zero), and a rerun
picks up where it stopped."""

import logging
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from sqlalchemy import func, select, union

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
    failed_firms: list[int] = field(default_factory=list)


async def rollover(runtime: Runtime, until: date) -> RolloverReport:
    system = Principal(client_id=ROLLOVER_CLIENT, scopes=frozenset({PLATFORM_ADMIN}))
    report = RolloverReport()

    async def due(uow: UnitOfWork) -> list[tuple[int, int]]:
        return await periods.due_subscriptions(uow, until)

    failed: set[int] = set()
    for subscription_id, firm_id in (await run_in_transaction(runtime, system, due)).value or []:
        try:
            advanced = await run_in_transaction(runtime, system, partial(
                periods.advance, subscription_id=subscription_id, until=until))
        except Exception:  # noqa: BLE001 - one firm's failure must not stop the others
            log.exception("rollover: subscription %s of firm %s did not advance", subscription_id, firm_id)
            failed.add(firm_id)
            continue
        if advanced.value is not None:
            report.periods_started += advanced.value.periods
            report.changes_applied += advanced.value.changes

    async def firms(uow: UnitOfWork) -> list[int]:
        rows = await uow.session.scalars(union(
            select(SubscriptionPeriod.firm_id).where(
                SubscriptionPeriod.settled_at.is_(None),
                func.coalesce(SubscriptionPeriod.cut_on, SubscriptionPeriod.end) <= until),
            select(Order.firm_id).where(Order.settled_at.is_(None), Order.order_date < until),
        ))
        return sorted(set(rows.all()))

    for firm_id in (await run_in_transaction(runtime, system, firms)).value or []:
        if firm_id in failed:
            continue  # its periods did not all advance: invoicing it now could leave a period out
        try:
            issued = await run_in_transaction(runtime, system, partial(invoicing.issue_for_firm, firm_id=firm_id,
                                                                       until=until))
        except Exception:  # noqa: BLE001 - one firm's failure must not stop the others
            log.exception("rollover: firm %s not invoiced", firm_id)
            failed.add(firm_id)
            continue
        report.invoices_issued += issued.value or 0
        for error in issued.errors:
            log.error("rollover: firm %s not invoiced: %s", firm_id, error.message)
            failed.add(firm_id)
    report.failed_firms = sorted(failed)
    return report
