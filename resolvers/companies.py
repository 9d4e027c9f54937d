"""Companies: create, rename, move between agreements (R5, R6)."""

from dataclasses import dataclass

from licensing.errors import Problems, RuleViolation
from licensing.validation import optional_text, require_country, require_text
from models import Agreement, Company
from models import ids as global_ids
from models.enums import UserErrorCode
from resolvers.base import UnitOfWork, changes


@dataclass(frozen=True)
class NewCompany:
    name: str
    organization_number: str | None
    vat_number: str | None
    country: str


def check_company(new: NewCompany, field: list[str], problems: Problems) -> dict[str, object]:
    """Every field of a new company, each wrong one reported (R53)."""
    return {
        "name": problems.check(require_text, new.name, [*field, "name"]),
        "organization_number": problems.check(optional_text, new.organization_number,
                                              [*field, "organizationNumber"], "Organization number", 40),
        "vat_number": problems.check(optional_text, new.vat_number, [*field, "vatNumber"], "VAT number", 40),
        "country": problems.check(require_country, new.country, [*field, "country"]),
    }


def build_company(agreement: Agreement, new: NewCompany, field: list[str]) -> Company:
    problems = Problems()
    values = check_company(new, field, problems)
    problems.done()
    return Company(firm_id=agreement.firm_id, agreement_id=agreement.id, **values)


async def create_company(uow: UnitOfWork, agreement: Agreement, new: NewCompany,
                         field: list[str] | None = None) -> Company:
    """Creates no memberships: firm staff act through their firm role (R21)."""
    company = build_company(agreement, new, field or ["input", "company"])
    uow.session.add(company)
    await uow.session.flush()
    uow.audit("company.created", company, f"Company {company.name} created",
              after={"name": company.name, "agreement": global_ids.of(agreement)}, company_id=company.id)
    return company


async def update_company(
    uow: UnitOfWork,
    company: Company,
    *,
    name: str | None,
    organization_number: str | None,
    vat_number: str | None,
) -> Company:
    values: dict[str, object] = {}
    problems = Problems()
    if name is not None:
        values["name"] = problems.check(require_text, name, ["input", "name"])
    if organization_number is not None:
        values["organization_number"] = problems.check(optional_text, organization_number,
                                                       ["input", "organizationNumber"], "Organization number", 40)
    if vat_number is not None:
        known = len(problems.found)
        vat = problems.check(optional_text, vat_number, ["input", "vatNumber"], "VAT number", 40)
        # R6: a VAT number change is a contract transfer, even when none is stored yet.
        valid = len(problems.found) == known
        if valid and vat != company.vat_number and not uow.principal.is_platform_admin:
            problems.found.append(RuleViolation(
                UserErrorCode.VAT_CHANGE_REQUIRES_CONTRACT_TRANSFER,
                "Changing the VAT number needs a contract transfer by the vendor.",
                ["input", "vatNumber"],
            ))
        values["vat_number"] = vat
    problems.done()
    before, after = changes(company, values)
    if after:
        uow.audit("company.updated", company, f"Company {company.name} updated", before=before, after=after,
                  company_id=company.id)
    return company
