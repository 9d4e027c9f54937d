"""A client moving to another accounting firm, with consent (R50).

The agreement's firm, or the vendor, offers the agreement to another firm; the receiving
firm's admin accepts (giving its own customer number) or declines; the offer lapses after
OFFER_DAYS. Accepted, the agreement moves at the start of its subscription's next period
(at once when it has no running subscription) with its companies, memberships and
subscription: what was charged before stays the old firm's (its periods, orders and
invoices keep their firm), what comes after is the new firm's. Client users of the old firm
lose their assignments there. Every step is audited for both firms.
"""

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import select, update

from licensing.catalog import load_price_book, require_priced
from licensing.errors import RuleViolation
from licensing.validation import optional_text
from models import (
    Agreement,
    AgreementTransfer,
    ClientUser,
    ClientUserCompany,
    Company,
    Firm,
    LicenseSession,
    Membership,
    ScheduledChange,
    SeatPool,
    Subscription,
    SubscriptionFeature,
)
from models import ids as global_ids
from models.enums import BillingMode, LicenseType, SubscriptionStatus, TransferStatus, UserErrorCode
from models.oauth_grants import InvitationToken
from resolvers.base import Seats, UnitOfWork

OFFER_DAYS = 30
OPEN = (TransferStatus.OFFERED, TransferStatus.ACCEPTED)


def is_open(transfer: AgreementTransfer, now: datetime) -> bool:
    """Offered and not lapsed (no job needed: it lapses by the clock), or accepted and waiting."""
    if transfer.status is TransferStatus.ACCEPTED:
        return True
    return transfer.status is TransferStatus.OFFERED and transfer.expires_at > now


async def open_transfer(uow: UnitOfWork, agreement_id: int) -> AgreementTransfer | None:
    rows = (await uow.session.scalars(select(AgreementTransfer).where(
        AgreementTransfer.agreement_id == agreement_id, AgreementTransfer.status.in_(OPEN)))).all()
    now = uow.runtime.now()
    return next((row for row in rows if is_open(row, now)), None)


def _audit_both(uow: UnitOfWork, action: str, transfer: AgreementTransfer, summary: str, after: dict[str, object],
                before: dict[str, object] | None = None, affects: Sequence[Seats] = ()) -> None:
    for firm_id in (transfer.from_firm_id, transfer.to_firm_id):
        uow.audit(action, transfer, summary, before=before, after=after, firm_id=firm_id, affects=affects)


async def offer(uow: UnitOfWork, agreement: Agreement, *, to_firm_id: str) -> AgreementTransfer:
    field = ["input", "toFirmId"]
    if agreement.archived_at is not None:
        raise RuleViolation(UserErrorCode.ARCHIVED, "The agreement is archived.", ["input", "agreementId"])
    pk = global_ids.decode_as(to_firm_id, "Firm")
    # The receiving firm need not be visible to the offering one: its ID is all it is told.
    to_firm = await uow.session.get(Firm, pk) if pk is not None else None
    if to_firm is None:
        raise RuleViolation(UserErrorCode.NOT_FOUND, "No Firm with that ID.", field)
    if to_firm.id == agreement.firm_id:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The agreement already belongs to that firm.", field)
    if await open_transfer(uow, agreement.id) is not None:
        raise RuleViolation(UserErrorCode.TRANSFER_PENDING, "The agreement already has an open transfer offer.",
                            ["input", "agreementId"])
    now = uow.runtime.now()
    transfer = AgreementTransfer(agreement_id=agreement.id, from_firm_id=agreement.firm_id, to_firm_id=to_firm.id,
                                 status=TransferStatus.OFFERED, offered_at=now,
                                 expires_at=now + timedelta(days=OFFER_DAYS), created_at=now)
    uow.session.add(transfer)
    await uow.session.flush()
    _audit_both(uow, "agreement.transfer_offered", transfer, f"Agreement {agreement.name} offered to {to_firm.name}",
                {"agreement": global_ids.of(agreement), "toFirm": global_ids.of(to_firm),
                 "expiresAt": transfer.expires_at.isoformat()})
    return transfer


def _check_open(transfer: AgreementTransfer, uow: UnitOfWork) -> None:
    if transfer.status is not TransferStatus.OFFERED or transfer.expires_at <= uow.runtime.now():
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "The offer is no longer open (decided, withdrawn or lapsed).",
                            ["input", "transferId"])


async def accept(uow: UnitOfWork, transfer: AgreementTransfer, *, customer_number: str | None) -> AgreementTransfer:
    _check_open(transfer, uow)
    agreement = await uow.session.get_one(Agreement, transfer.agreement_id, with_for_update=True)
    to_firm = await uow.session.get_one(Firm, transfer.to_firm_id)
    number = optional_text(customer_number or "", ["input", "customerNumber"], "Customer number")
    if number is not None and await uow.session.scalar(select(Agreement.id).where(
            Agreement.firm_id == to_firm.id, Agreement.customer_number == number)) is not None:
        raise RuleViolation(UserErrorCode.DUPLICATE_CUSTOMER_NUMBER,
                            "That customer number is taken in your firm.", ["input", "customerNumber"])
    subscription = await uow.session.scalar(select(Subscription).where(Subscription.agreement_id == agreement.id))
    running = subscription is not None and subscription.status is SubscriptionStatus.ACTIVE
    if subscription is not None and running:
        require_priced(await load_price_book(uow.session), to_firm.currency, subscription.current_period_end,
                       ["input", "transferId"], edition_code=subscription.edition_code)
    transfer.status, transfer.decided_at, transfer.customer_number = TransferStatus.ACCEPTED, uow.runtime.now(), number
    transfer.effective_on = subscription.current_period_end if subscription is not None and running \
        else uow.runtime.today()
    _audit_both(uow, "agreement.transfer_accepted", transfer, f"Transfer of {agreement.name} accepted",
                {"effectiveOn": transfer.effective_on.isoformat(), "customerNumber": number})
    if not running:
        await _complete(uow, transfer, transfer.effective_on)
    return transfer


async def decline(uow: UnitOfWork, transfer: AgreementTransfer) -> AgreementTransfer:
    _check_open(transfer, uow)
    transfer.status, transfer.decided_at = TransferStatus.DECLINED, uow.runtime.now()
    _audit_both(uow, "agreement.transfer_declined", transfer, "Transfer declined", {"status": "DECLINED"})
    return transfer


async def withdraw(uow: UnitOfWork, transfer: AgreementTransfer) -> AgreementTransfer:
    """The offering side takes back an offer that was not accepted yet."""
    _check_open(transfer, uow)
    transfer.status, transfer.decided_at = TransferStatus.WITHDRAWN, uow.runtime.now()
    _audit_both(uow, "agreement.transfer_withdrawn", transfer, "Transfer offer withdrawn", {"status": "WITHDRAWN"})
    return transfer


async def complete_due(uow: UnitOfWork, subscription: Subscription, on: date) -> None:
    """Called at each period boundary (resolvers.periods.advance): an accepted transfer whose
    date has come moves the agreement before the new period is recorded."""
    if subscription.agreement_id is None:
        return
    transfer = await uow.session.scalar(select(AgreementTransfer).where(
        AgreementTransfer.agreement_id == subscription.agreement_id,
        AgreementTransfer.status == TransferStatus.ACCEPTED, AgreementTransfer.effective_on <= on))
    if transfer is not None:
        await _complete(uow, transfer, on)


async def _complete(uow: UnitOfWork, transfer: AgreementTransfer, on: date) -> None:
    from resolvers.memberships import End, change_access

    session = uow.session
    agreement = await session.get_one(Agreement, transfer.agreement_id)
    old, new = transfer.from_firm_id, transfer.to_firm_id
    company_ids = list(await session.scalars(select(Company.id).where(Company.agreement_id == agreement.id)))
    # The old firm's client users lose their assignments there; their memberships go with them.
    links = (await session.scalars(select(ClientUserCompany).where(
        ClientUserCompany.company_id.in_(company_ids), ClientUserCompany.firm_id == old))).all()
    for link in links:
        membership = await session.scalar(select(Membership).join(
            ClientUser, ClientUser.user_id == Membership.user_id).where(
            ClientUser.id == link.client_user_id, Membership.company_id == link.company_id,
            Membership.license_type == LicenseType.CLIENT_USER))
        if membership is not None:  # the move is not held up by R21: the new firm names its administrators
            await change_access(uow, membership, ["input", "transferId"], end=End.REMOVE, whole_company=True)
        await session.delete(link)
    now = uow.runtime.now()
    await session.execute(update(LicenseSession).where(LicenseSession.company_id.in_(company_ids),
                                                       LicenseSession.ended_at.is_(None)).values(ended_at=now))
    # What belongs to the agreement now moves to the new firm; history (periods, orders,
    # invoices, audit events) keeps the firm it was made for.
    await session.execute(update(Company).where(Company.id.in_(company_ids)).values(firm_id=new))
    await session.execute(update(Membership).where(Membership.company_id.in_(company_ids)).values(firm_id=new))
    await session.execute(update(InvitationToken).where(InvitationToken.membership_id.in_(
        select(Membership.id).where(Membership.company_id.in_(company_ids)))).values(firm_id=new))
    subscription_id = await session.scalar(select(Subscription.id).where(Subscription.agreement_id == agreement.id))
    if subscription_id is not None:
        await session.execute(update(Subscription).where(Subscription.id == subscription_id).values(firm_id=new))
        for model in (SeatPool, ScheduledChange, SubscriptionFeature, LicenseSession):
            await session.execute(update(model).where(model.subscription_id == subscription_id).values(firm_id=new))
    new_firm = await session.get_one(Firm, new)
    before: dict[str, object] = {"firm": global_ids.encode("Firm", old), "customerNumber": agreement.customer_number,
              "billingMode": agreement.billing_mode.value}
    agreement.firm_id, agreement.customer_number = new, transfer.customer_number
    if agreement.billing_mode is BillingMode.FIRM and not new_firm.has_reseller_agreement:
        agreement.billing_mode = BillingMode.CUSTOMER  # R2: consolidated billing needs a reseller agreement
    transfer.status, transfer.completed_at = TransferStatus.COMPLETED, now
    await session.flush()
    # The bulk updates above synchronise the rows this session holds (SQLAlchemy's "auto").
    _audit_both(uow, "agreement.transferred", transfer, f"Agreement moved to firm {new_firm.name} on {on.isoformat()}",
                {"firm": global_ids.of(new_firm), "customerNumber": transfer.customer_number,
                 "billingMode": agreement.billing_mode.value, "clientUserAssignmentsEnded": len(links)},
                before=before, affects=[agreement])  # its live sessions ended
