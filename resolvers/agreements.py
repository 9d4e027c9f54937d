"""Customer agreements (R1-R5)."""

from dataclasses import dataclass

from sqlalchemy import func, select

from auth.policy import Action
from licensing import seats
from licensing.errors import Problems, RuleViolation
from licensing.validation import optional_text, require_text
from models import Agreement, Company, Firm, Invoice, InvoiceLine, Membership, Subscription, SubscriptionPeriod
from models import ids as global_ids
from models.enums import BillingMode, UserErrorCode
from resolvers.base import UnitOfWork, changes
from resolvers.companies import NewCompany, check_company, create_company
from resolvers.periods import advance_agreements
from resolvers.subscriptions import schedule_billing_mode


@dataclass(frozen=True)
class NewAgreement:
    name: str
    customer_number: str | None
    billing_mode: BillingMode


async def _check_customer_number(
    uow: UnitOfWork, firm_id: int, number: str | None, field: list[str], exclude: int | None = None
) -> None:
    """R1: unique within the firm. The unique constraint backs this up under concurrency."""
    if number is None:
        return
    stmt = select(Agreement.id).where(Agreement.firm_id == firm_id, Agreement.customer_number == number)
    if exclude is not None:
        stmt = stmt.where(Agreement.id != exclude)
    if await uow.session.scalar(stmt) is not None:
        raise RuleViolation(UserErrorCode.DUPLICATE_CUSTOMER_NUMBER,
                            "Another agreement of the firm has this customer number.", field)


def _check_billing_mode(firm: Firm, mode: BillingMode, field: list[str]) -> None:
    """R2: consolidated invoicing needs a reseller agreement."""
    if mode is BillingMode.FIRM and not firm.has_reseller_agreement:
        raise RuleViolation(UserErrorCode.RESELLER_AGREEMENT_REQUIRED,
                            "Billing mode FIRM needs a firm with a reseller agreement.", field)


async def create_agreement_row(uow: UnitOfWork, firm: Firm, new: NewAgreement, field: list[str],
                               company: NewCompany | None = None) -> Agreement:
    """The agreement, every field checked before any is refused (R53), and those of its first
    company too when one comes with it."""
    problems = Problems()
    name = problems.check(require_text, new.name, [*field, "name"])
    number = problems.check(optional_text, new.customer_number, [*field, "customerNumber"], "Customer number")
    problems.check(_check_billing_mode, firm, new.billing_mode, [*field, "billingMode"])
    if company is not None:
        check_company(company, [*field, "company"], problems)
    problems.done()
    await _check_customer_number(uow, firm.id, number, [*field, "customerNumber"])
    agreement = Agreement(firm_id=firm.id, name=name, customer_number=number, billing_mode=new.billing_mode)
    uow.session.add(agreement)
    await uow.session.flush()
    uow.audit("agreement.created", agreement, f"Agreement {name} created",
              after={"name": name, "customerNumber": number, "billingMode": new.billing_mode.value})
    return agreement


async def create_agreement(
    uow: UnitOfWork, firm: Firm, new: NewAgreement, company: NewCompany | None
) -> tuple[Agreement, Company | None]:
    """R3: the first company is made in the same transaction: both exist, or neither."""
    agreement = await create_agreement_row(uow, firm, new, ["input"], company)
    first = await create_company(uow, agreement, company, ["input", "company"]) if company else None
    return agreement, first


async def update_agreement(
    uow: UnitOfWork,
    agreement: Agreement,
    *,
    name: str | None,
    customer_number: str | None,
    billing_mode: BillingMode | None,
    primary_contact_id: str | None,
) -> Agreement:
    values: dict[str, object] = {}
    problems = Problems()
    if name is not None:
        values["name"] = problems.check(require_text, name, ["input", "name"])
    number = None
    if customer_number is not None:  # an empty string clears it
        number = problems.check(optional_text, customer_number, ["input", "customerNumber"], "Customer number")
    if billing_mode is not None:
        firm = await uow.session.get_one(Firm, agreement.firm_id)
        problems.check(_check_billing_mode, firm, billing_mode, ["input", "billingMode"])
    problems.done()
    if customer_number is not None:
        await _check_customer_number(uow, agreement.firm_id, number, ["input", "customerNumber"], agreement.id)
        values["customer_number"] = number
    if primary_contact_id is not None:
        values["primary_contact_id"] = await _primary_contact(uow, agreement, primary_contact_id)
    mode_before = agreement.billing_mode
    scheduled = None
    if billing_mode is not None:
        # R24: from the next period, as a scheduled change (at once when nothing is billed yet).
        scheduled = await schedule_billing_mode(uow, agreement, billing_mode)
    before, after = changes(agreement, values)
    if agreement.billing_mode is not mode_before:
        before["billing_mode"], after["billing_mode"] = mode_before, agreement.billing_mode
    if scheduled is not None:
        after["billingModeFrom"] = {"mode": scheduled.to_value, "effectiveOn": scheduled.effective_on.isoformat()}
    if after:
        uow.audit("agreement.updated", agreement, f"Agreement {agreement.name} updated", before=before, after=after)
    return agreement


async def _primary_contact(uow: UnitOfWork, agreement: Agreement, user_id: str) -> int:
    """The primary contact is a member of one of the agreement's companies."""
    pk = global_ids.decode_as(user_id, "User")
    found = None
    if pk is not None:
        found = await uow.session.scalar(
            select(Membership.id)
            .join(Company, Company.id == Membership.company_id)
            .where(Company.agreement_id == agreement.id, Membership.user_id == pk)
            .limit(1)
        )
    if found is None:
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "The primary contact must be a member of one of the agreement's companies.",
                            ["input", "primaryContactId"])
    assert pk is not None
    return pk


async def delete_agreement(uow: UnitOfWork, agreement: Agreement) -> str:
    """R4: only an empty agreement can go, and only one that was never billed: billing
    history (a subscription, its periods and orders, invoices) is never deleted, so that no
    charge is lost and no issued invoice changes. The rest is archived instead."""
    await seats.lock_agreement(uow.session, agreement.id)
    companies = await uow.session.scalar(select(func.count()).where(Company.agreement_id == agreement.id))
    if companies:
        raise RuleViolation(UserErrorCode.AGREEMENT_NOT_EMPTY,
                            f"The agreement still has {companies} companies; move or remove them first.",
                            ["input", "agreementId"])
    history = await uow.session.scalar(select(func.count()).select_from(
        select(Subscription.id).where(Subscription.agreement_id == agreement.id)
        .union_all(select(Invoice.id).where(Invoice.agreement_id == agreement.id),
                   select(InvoiceLine.id).where(InvoiceLine.agreement_id == agreement.id),
                   select(SubscriptionPeriod.id).where(SubscriptionPeriod.agreement_id == agreement.id))
        .subquery()))
    if history:
        raise RuleViolation(UserErrorCode.HAS_BILLING_HISTORY,
                            "The agreement has a subscription or billing history, which is kept; cancel its "
                            "subscription and archive the agreement instead.", ["input", "agreementId"])
    gid = global_ids.of(agreement)
    uow.audit("agreement.deleted", agreement, f"Agreement {agreement.name} deleted",
              before={"name": agreement.name, "customerNumber": agreement.customer_number})
    await uow.session.delete(agreement)
    await uow.session.flush()
    return gid


async def move_company(
    uow: UnitOfWork, company: Company, *, to_agreement_id: str | None, new_agreement: NewAgreement | None
) -> tuple[Company, Agreement, Agreement]:
    """R5: into another agreement of the same firm, or a new one made in the same step;
    memberships follow the company, and so does seat usage."""
    if (to_agreement_id is None) == (new_agreement is None):
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Give exactly one of toAgreementId and newAgreement.",
                            ["input", "toAgreementId"])
    source = await uow.session.get_one(Agreement, company.agreement_id)
    if new_agreement is not None:
        firm = await uow.session.get_one(Firm, company.firm_id)
        target = await create_agreement_row(uow, firm, new_agreement, ["input", "newAgreement"])
    else:
        target = await uow.get(Agreement, to_agreement_id, ["input", "toAgreementId"])
        uow.authorize(Action.MANAGE_AGREEMENTS, target)
        if target.firm_id != company.firm_id:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "A company moves only within its firm.",
                                ["input", "toAgreementId"])
        if target.id == source.id:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, "The company is already in that agreement.",
                                ["input", "toAgreementId"])
        if target.archived_at is not None:
            raise RuleViolation(UserErrorCode.ARCHIVED, "That agreement is archived.", ["input", "toAgreementId"])
    await advance_agreements(uow, {source.id, target.id})
    # Both agreements' seat counts change: lock them in id order (no deadlock with a move the
    # other way). The company row itself is locked by the mutation's target, so an invitation
    # to it waits and then sees the company in its new agreement.
    for agreement_id in sorted({source.id, target.id}):
        await seats.lock_agreement(uow.session, agreement_id)
    await seats.check_move_fits(uow.session, company.id, target.id, uow.runtime.now(), ["input", "companyId"])
    company.agreement_id = target.id
    await uow.session.flush()
    uow.audit("company.moved", company, f"Company {company.name} moved to {target.name}",
              before={"agreement": global_ids.of(source)}, after={"agreement": global_ids.of(target)},
              company_id=company.id, affects=[source, target])
    return company, source, target
