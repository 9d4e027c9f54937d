"""Firms and their staff."""

from decimal import Decimal

from sqlalchemy import select

from licensing.catalog import load_price_book
from licensing.errors import Problems, RuleViolation
from licensing.validation import optional_text, require_country, require_currency, require_percent, require_text
from models import Firm, FirmMember
from models import ids as global_ids
from models.enums import FirmRole, UserErrorCode
from resolvers.base import UnitOfWork, changes
from resolvers.users import check_identity, find_or_create_user, queue_staff_welcome_email


async def create_firm(
    uow: UnitOfWork, *, name: str, organization_number: str | None, country: str, currency: str
) -> Firm:
    problems = Problems()
    checked_name = problems.check(require_text, name, ["input", "name"])
    number = problems.check(optional_text, organization_number, ["input", "organizationNumber"],
                            "Organization number")
    country_code = problems.check(require_country, country, ["input", "country"])
    currency_code = problems.check(require_currency, currency, ["input", "currency"])
    if currency_code is not None and not (await load_price_book(uow.session)).prices_currency(currency_code):
        problems.found.append(RuleViolation(
            UserErrorCode.NO_PRICE_IN_CURRENCY,
            f"The catalog has no prices in {currency_code}; price the editions in it first.", ["input", "currency"]))
    problems.done()
    firm = Firm(
        name=checked_name,
        organization_number=number,
        country=country_code,
        currency=currency_code,
        has_reseller_agreement=False,
        is_certified=False,
        reseller_discount_percent=Decimal("0.00"),
    )
    uow.session.add(firm)
    await uow.session.flush()
    uow.audit("firm.created", firm, f"Firm {firm.name} registered", after={"name": firm.name}, firm_id=firm.id)
    return firm


async def update_firm(
    uow: UnitOfWork,
    firm: Firm,
    *,
    name: str | None,
    has_reseller_agreement: bool | None,
    is_certified: bool | None,
    reseller_discount_percent: Decimal | None,
) -> Firm:
    values: dict[str, object] = {}
    problems = Problems()
    if name is not None:
        values["name"] = problems.check(require_text, name, ["input", "name"])
    if has_reseller_agreement is not None:
        values["has_reseller_agreement"] = has_reseller_agreement
    if is_certified is not None:
        values["is_certified"] = is_certified
    if reseller_discount_percent is not None:
        values["reseller_discount_percent"] = problems.check(require_percent, reseller_discount_percent,
                                                             ["input", "resellerDiscountPercent"])
    problems.done()
    before, after = changes(firm, values)
    if after:
        uow.audit("firm.updated", firm, f"Firm {firm.name} updated", before=before, after=after)
    return firm


async def add_firm_staff(uow: UnitOfWork, firm: Firm, *, name: str, email: str, role: FirmRole) -> FirmMember:
    """Reuses the user with that email; creates it when unknown (the vendor adds a firm's first admin)."""
    who = await check_identity(uow, email, None, ["input"])
    user = await find_or_create_user(uow, name, who, ["input"])
    taken = await uow.session.scalar(
        select(FirmMember.id).where(FirmMember.firm_id == firm.id, FirmMember.user_id == user.id)
    )
    if taken is not None:
        raise RuleViolation(UserErrorCode.ALREADY_MEMBER, "The user is already on the firm's staff.",
                            ["input", "email"])
    member = FirmMember(firm_id=firm.id, user_id=user.id, role=role)
    uow.session.add(member)
    await uow.session.flush()
    await queue_staff_welcome_email(uow, user, firm.id, firm.name)
    uow.audit("firm.staff_added", member, f"{user.name} added to {firm.name} as {role.value}",
              after={"user": global_ids.of(user), "role": role.value})
    return member


async def remove_firm_staff(uow: UnitOfWork, member: FirmMember) -> FirmMember:
    uow.audit("firm.staff_removed", member, "Staff member removed",
              before={"user": global_ids.encode("User", member.user_id), "role": member.role.value})
    await uow.session.delete(member)
    await uow.session.flush()
    return member
