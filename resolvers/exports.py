"""The re-invoicing basis (R25): per customer number, the lines of a month's consolidated
invoice, for the firm's own sales ledger. The same numbers as the invoice: the issued one
when the month is invoiced, else what it would hold if issued now."""

import csv
import io
from dataclasses import dataclass

from sqlalchemy import select

from auth.policy import Action, authorize, tenancy_of
from licensing.errors import RuleViolation
from licensing.invoicing import Account, Line, month_period
from models import Agreement, Firm, Invoice, InvoiceLine
from models.enums import BillingMode, UserErrorCode
from resolvers.base import UnitOfWork
from resolvers.invoicing import preview

HEADER = ["customer_number", "agreement", "license_type", "description", "quantity", "unit_price", "amount",
          "currency"]


@dataclass(frozen=True)
class Export:
    filename: str
    text: str


async def reinvoicing_csv(uow: UnitOfWork, firm_gid: str, month_text: str) -> Export:
    firm = await uow.get(Firm, firm_gid, ["firm"])
    authorize(uow.principal, Action.READ_SUBSCRIPTION, tenancy_of(firm))
    try:
        year, month = (int(part) for part in month_text.split("-"))
        span = month_period((year, month))
    except ValueError as exc:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "month must be YYYY-MM", ["month"]) from exc
    invoice = await uow.session.scalar(select(Invoice).where(
        Invoice.firm_id == firm.id, Invoice.billing_account == "firm", Invoice.period_start == span.start))
    if invoice is not None:
        rows = (await uow.session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                                          .order_by(InvoiceLine.position))).all()
        lines = [Line(r.agreement_id, r.customer_number, r.description, r.license_type, r.quantity, r.unit_price,
                      r.amount) for r in rows]
    else:
        lines = (await preview(uow, firm.id, Account(BillingMode.FIRM), (year, month))).lines
    names = {a.id: a.name for a in (await uow.session.scalars(select(Agreement).where(
        Agreement.id.in_({line.agreement_id for line in lines if line.agreement_id is not None})))).all()}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for line in lines:
        writer.writerow([line.customer_number or "", names.get(line.agreement_id or 0, "") if line.agreement_id
                         else firm.name, line.license_type.value if line.license_type else "", line.description,
                         line.quantity, f"{line.unit_price:.2f}", f"{line.amount:.2f}", firm.currency])
    return Export(f"reinvoicing-{year:04d}-{month:02d}.csv", out.getvalue())
