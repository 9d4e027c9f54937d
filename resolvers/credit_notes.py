"""Correction invoices (R48): the vendor credits an issued invoice with a credit note.

A credit note is an invoice of its own (kind CREDIT_NOTE) with negative lines, each naming
the line of the credited invoice it corrects; it takes the next number of the firm's one
gapless series, belongs to the month it is issued in (so it is on that month's re-invoicing
CSV), is listed with the account's invoices, and is audited. The credited invoice is left
untouched, and no line is ever credited for more than its amount, over all its credit notes.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select, update

from licensing.errors import RuleViolation
from licensing.invoicing import month_period
from licensing.periods import month_of
from licensing.validation import require_text
from models import Firm, Invoice, InvoiceLine
from models import ids as global_ids
from models.enums import InvoiceKind, UserErrorCode
from resolvers.base import UnitOfWork


@dataclass(frozen=True)
class Credit:
    """How much of one line to credit: `amount` None means all that is left of it."""

    position: int
    amount: Decimal | None = None


async def issue_credit_note(uow: UnitOfWork, invoice: Invoice, credits: Sequence[Credit], reason: str,
                            field: Sequence[str] = ("input",)) -> Invoice:
    field = list(field)
    why = require_text(reason, [*field, "reason"])
    if invoice.kind is not InvoiceKind.INVOICE:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "A credit note itself cannot be credited.",
                            [*field, "invoiceId"])
    if not credits:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Name at least one line to credit.", [*field, "lines"])
    firm = await uow.session.scalar(select(Firm).where(Firm.id == invoice.firm_id).with_for_update())
    assert firm is not None
    lines = {row.position: row for row in (await uow.session.scalars(
        select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))).all()}
    credited = dict((await uow.session.execute(
        select(InvoiceLine.credited_line_id, func.sum(InvoiceLine.amount))
        .where(InvoiceLine.credited_line_id.in_([row.id for row in lines.values()]))
        .group_by(InvoiceLine.credited_line_id))).all())
    negative: list[tuple[InvoiceLine, int, Decimal, Decimal]] = []
    seen: set[int] = set()
    for index, credit in enumerate(credits):
        at = [*field, "lines", str(index)]
        line = lines.get(credit.position)
        if line is None or credit.position in seen:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "No such line on the invoice, or named twice.",
                                [*at, "position"])
        seen.add(credit.position)
        left = line.amount + Decimal(credited.get(line.id) or 0)  # credits are negative
        amount = left if credit.amount is None else credit.amount
        if amount <= 0 or amount > left or amount != amount.quantize(Decimal("0.01")):
            raise RuleViolation(UserErrorCode.CREDIT_EXCEEDS_INVOICE,
                                f"A credit of this line must be more than 0 and at most {left} (what is left of it), "
                                "in cents.", [*at, "amount"])
        whole = amount == line.amount  # nothing credited before: credit it as it was billed
        negative.append((line, line.quantity if whole else 1, -(line.unit_price if whole else amount), -amount))
    number = await uow.session.scalar(
        update(Firm).where(Firm.id == firm.id).values(last_invoice_number=Firm.last_invoice_number + 1)
        .returning(Firm.last_invoice_number))
    span = month_period(month_of(uow.runtime.today()))
    note = Invoice(
        firm_id=firm.id, agreement_id=invoice.agreement_id, billing_account=invoice.billing_account,
        billing_mode=invoice.billing_mode, number=f"I{number:06d}", period_start=span.start, period_end=span.end,
        currency=invoice.currency, total=sum((amount for *_, amount in negative), Decimal("0.00")),
        issued_at=uow.runtime.now(), kind=InvoiceKind.CREDIT_NOTE, credited_invoice_id=invoice.id, reason=why)
    uow.session.add(note)
    await uow.session.flush()
    for position, (line, quantity, unit, amount) in enumerate(negative, 1):
        uow.session.add(InvoiceLine(
            firm_id=firm.id, invoice_id=note.id, position=position, agreement_id=line.agreement_id,
            agreement_name=line.agreement_name, customer_number=line.customer_number,
            description=f"Credit: {line.description}"[:300], license_type=line.license_type, quantity=quantity,
            list_unit_price=line.list_unit_price, discount_percent=line.discount_percent, unit_price=unit,
            amount=amount, credited_line_id=line.id))
    await uow.session.flush()
    uow.audit("invoice.credit_note_issued", note, f"Credit note {note.number} for invoice {invoice.number}",
              after={"number": note.number, "credits": global_ids.of(invoice), "total": str(note.total),
                     "reason": why})
    return note
