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
from models import Firm, Invoice, InvoiceLine
from models.enums import BillingMode, InvoiceKind, UserErrorCode
from resolvers.base import UnitOfWork
from resolvers.invoicing import preview

# Leading characters that make Excel, LibreOffice or Google Sheets read a cell as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

HEADER = ["customer_number", "agreement", "license_type", "description", "quantity", "unit_price", "amount",
          "currency"]


def spreadsheet_text(value: str) -> str:
    """A text cell made safe to open in a spreadsheet, as OWASP's CSV Injection guidance says
    (https://owasp.org/www-community/attacks/CSV_Injection): a cell that begins with `=`, `+`,
    `-`, `@`, a tab or a carriage return gets a leading single quote, so that it is shown as text
    and never evaluated as a formula. The csv writer still quotes `"`, `,` and line breaks.
    Only for text: numbers the export formats itself (amounts may be negative) stay numbers."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def export_row(line: Line, agreement: str, currency: str) -> list[str]:
    """One CSV row: every text cell, which may hold what a customer or staff typed, goes through
    spreadsheet_text; the numbers are formatted here and written as they are."""
    return [spreadsheet_text(line.customer_number or ""), spreadsheet_text(agreement),
            spreadsheet_text(line.license_type.value if line.license_type else ""),
            spreadsheet_text(line.description), str(line.quantity), f"{line.unit_price:.2f}", f"{line.amount:.2f}",
            spreadsheet_text(currency)]


async def _issued_lines(uow: UnitOfWork, invoice_ids: list[int]) -> list[Line]:
    if not invoice_ids:
        return []
    rows = (await uow.session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id.in_(invoice_ids))
                                      .order_by(InvoiceLine.invoice_id, InvoiceLine.position))).all()
    return [Line(r.agreement_id, r.agreement_name, r.customer_number, r.description, r.license_type, r.quantity,
                 r.list_unit_price, r.discount_percent, r.unit_price, r.amount) for r in rows]


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
    issued = (await uow.session.scalars(select(Invoice).where(
        Invoice.firm_id == firm.id, Invoice.billing_account == "firm", Invoice.period_start == span.start)
        .order_by(Invoice.id))).all()
    invoice = next((i for i in issued if i.kind is InvoiceKind.INVOICE), None)
    currency = invoice.currency if invoice is not None else firm.currency
    if invoice is not None:
        # An issued month is read from its invoice, which keeps everything it shows.
        lines = await _issued_lines(uow, [invoice.id])
    else:
        lines = (await preview(uow, firm.id, Account(BillingMode.FIRM), (year, month))).lines
    # Credit notes are on the CSV of the month they were issued in (R48).
    lines += await _issued_lines(uow, [i.id for i in issued if i.kind is InvoiceKind.CREDIT_NOTE])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for line in lines:
        writer.writerow(export_row(line, line.agreement_name, currency))
    return Export(f"reinvoicing-{year:04d}-{month:02d}.csv", out.getvalue())
