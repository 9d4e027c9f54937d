"""Agreement and company mutations."""

import strawberry

from auth.policy import Action
from models import Agreement as AgreementRow
from models import Company as CompanyRow
from models import Firm as FirmRow
from resolvers import agreements, archives, companies
from resolvers.agreements import NewAgreement
from resolvers.companies import NewCompany
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.types.agreements import Agreement
from schema.types.common import BillingMode
from schema.types.companies import Company


@strawberry.input
class NewCompanyInput:
    name: str
    organization_number: str | None = None
    vat_number: str | None = None
    country: str = strawberry.field(description="ISO 3166-1 alpha-2.")

    def args(self) -> NewCompany:
        return NewCompany(self.name, self.organization_number, self.vat_number, self.country)


@strawberry.input
class CreateAgreementInput:
    firm_id: strawberry.ID
    name: str
    customer_number: str | None = None
    billing_mode: BillingMode  # type: ignore[valid-type]
    company: NewCompanyInput | None = strawberry.field(
        default=None, description="Optionally create the agreement's first company in the same step."
    )
    idempotency_key: str | None = None


@strawberry.type
class CreateAgreementPayload:
    agreement: Agreement | None = None
    company: Company | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateAgreementInput:
    agreement_id: strawberry.ID
    name: str | None = None
    customer_number: str | None = None
    billing_mode: BillingMode | None = None  # type: ignore[valid-type]
    primary_contact_id: strawberry.ID | None = None


@strawberry.type
class UpdateAgreementPayload:
    agreement: Agreement | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class DeleteAgreementInput:
    agreement_id: strawberry.ID


@strawberry.type
class DeleteAgreementPayload:
    deleted_agreement_id: strawberry.ID | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class CreateCompanyInput:
    agreement_id: strawberry.ID
    company: NewCompanyInput
    idempotency_key: str | None = None


@strawberry.type
class CreateCompanyPayload:
    company: Company | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateCompanyInput:
    company_id: strawberry.ID
    name: str | None = None
    organization_number: str | None = None
    vat_number: str | None = strawberry.field(
        default=None, description="Changing the VAT number needs a contract transfer and is refused here."
    )


@strawberry.type
class UpdateCompanyPayload:
    company: Company | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class NewAgreementInput:
    name: str
    customer_number: str | None = None
    billing_mode: BillingMode  # type: ignore[valid-type]

    def args(self) -> NewAgreement:
        return NewAgreement(self.name, self.customer_number, self.billing_mode)


@strawberry.input
class MoveCompanyInput:
    company_id: strawberry.ID
    to_agreement_id: strawberry.ID | None = strawberry.field(
        default=None, description="Move into this existing agreement of the same firm..."
    )
    new_agreement: NewAgreementInput | None = strawberry.field(
        default=None, description="...or into a new agreement created in the same step. Give exactly one of the two."
    )


@strawberry.type
class MoveCompanyPayload:
    company: Company | None = None
    from_agreement: Agreement | None = None
    to_agreement: Agreement | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class ArchiveCompanyInput:
    company_id: strawberry.ID


@strawberry.input
class UnarchiveCompanyInput:
    company_id: strawberry.ID


@strawberry.input
class ArchiveAgreementInput:
    agreement_id: strawberry.ID


@strawberry.input
class UnarchiveAgreementInput:
    agreement_id: strawberry.ID


@strawberry.type
class AgreementMutations:
    @mutation(Action.MANAGE_AGREEMENTS)
    async def create_agreement(self, info: Info, input: CreateAgreementInput) -> CreateAgreementPayload:
        new = NewAgreement(input.name, input.customer_number, input.billing_mode)
        outcome = await run(info, Target(FirmRow, input.firm_id, "firmId"),
                            lambda uow, firm: agreements.create_agreement(
                                uow, firm, new, input.company.args() if input.company else None), input=input)
        agreement, company = outcome.value or (None, None)
        return CreateAgreementPayload(agreement=Agreement.maybe(agreement), company=Company.maybe(company),
                                      user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS)
    async def update_agreement(self, info: Info, input: UpdateAgreementInput) -> UpdateAgreementPayload:
        outcome = await run(info, Target(AgreementRow, input.agreement_id, "agreementId"),
                            lambda uow, agreement: agreements.update_agreement(
                                uow, agreement, name=input.name, customer_number=input.customer_number,
                                billing_mode=input.billing_mode, primary_contact_id=input.primary_contact_id),
                            input=input)
        return UpdateAgreementPayload(agreement=Agreement.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS)
    async def delete_agreement(self, info: Info, input: DeleteAgreementInput) -> DeleteAgreementPayload:
        outcome = await run(info, Target(AgreementRow, input.agreement_id, "agreementId"),
                            agreements.delete_agreement, input=input)
        deleted = strawberry.ID(outcome.value) if outcome.value else None
        return DeleteAgreementPayload(deleted_agreement_id=deleted, user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS)
    async def create_company(self, info: Info, input: CreateCompanyInput) -> CreateCompanyPayload:
        outcome = await run(info, Target(AgreementRow, input.agreement_id, "agreementId"),
                            lambda uow, agreement: companies.create_company(uow, agreement, input.company.args()),
                            input=input)
        return CreateCompanyPayload(company=Company.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.UPDATE_COMPANY)
    async def update_company(self, info: Info, input: UpdateCompanyInput) -> UpdateCompanyPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId"),
                            lambda uow, company: companies.update_company(
                                uow, company, name=input.name, organization_number=input.organization_number,
                                vat_number=input.vat_number), input=input)
        return UpdateCompanyPayload(company=Company.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS, description="Move a company to another existing agreement, or to a new one "
              "created in the same step.")
    async def move_company(self, info: Info, input: MoveCompanyInput) -> MoveCompanyPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId",
                                   lock=True),
                            lambda uow, company: agreements.move_company(
                                uow, company, to_agreement_id=input.to_agreement_id,
                                new_agreement=input.new_agreement.args() if input.new_agreement else None), input=input)
        company, source, target = outcome.value or (None, None, None)
        return MoveCompanyPayload(company=Company.maybe(company), from_agreement=Agreement.maybe(source),
                                  to_agreement=Agreement.maybe(target), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS, description="Ends every access to the company at once (memberships, live "
              "sessions, client-user assignments; its seats free) and leaves it out of lists; its history stays "
              "readable. Can be undone within 30 days.")
    async def archive_company(self, info: Info, input: ArchiveCompanyInput) -> UpdateCompanyPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId", lock=True),
                            archives.archive_company, input=input)
        return UpdateCompanyPayload(company=Company.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS, on_archived=True,
              description="Undoes archiveCompany within 30 days: the memberships it ended are given back.")
    async def unarchive_company(self, info: Info, input: UnarchiveCompanyInput) -> UpdateCompanyPayload:
        outcome = await run(info, Target(CompanyRow, input.company_id, "companyId", lock=True),
                            archives.unarchive_company, input=input)
        return UpdateCompanyPayload(company=Company.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS, description="Archives the agreement with all its companies; its subscription "
              "must be cancelled (or it has none) and no transfer offer open. Can be undone within 30 days.")
    async def archive_agreement(self, info: Info, input: ArchiveAgreementInput) -> UpdateAgreementPayload:
        outcome = await run(info, Target(AgreementRow, input.agreement_id, "agreementId", lock=True),
                            archives.archive_agreement, input=input)
        return UpdateAgreementPayload(agreement=Agreement.maybe(outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.MANAGE_AGREEMENTS, on_archived=True,
              description="Undoes archiveAgreement within 30 days, and of the companies archived with it.")
    async def unarchive_agreement(self, info: Info, input: UnarchiveAgreementInput) -> UpdateAgreementPayload:
        outcome = await run(info, Target(AgreementRow, input.agreement_id, "agreementId", lock=True),
                            archives.unarchive_agreement, input=input)
        return UpdateAgreementPayload(agreement=Agreement.maybe(outcome.value), user_errors=user_errors(outcome))
