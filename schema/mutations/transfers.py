"""Moving a client to another firm, with consent (R50)."""

import strawberry

from auth.policy import Action, Tenancy
from models import Agreement as AgreementRow
from models import AgreementTransfer as TransferRow
from resolvers import transfers
from resolvers.base import Outcome
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import Target, mutation, run, user_errors
from schema.types.transfers import AgreementTransfer


@strawberry.input
class OfferAgreementTransferInput:
    agreement_id: strawberry.ID
    to_firm_id: strawberry.ID = strawberry.field(description="The firm the client moves to.")
    idempotency_key: str | None = None


@strawberry.input
class AcceptAgreementTransferInput:
    transfer_id: strawberry.ID
    customer_number: str | None = strawberry.field(
        default=None, description="The customer's number in the receiving firm's own sales ledger.")


@strawberry.input
class DeclineAgreementTransferInput:
    transfer_id: strawberry.ID


@strawberry.input
class WithdrawAgreementTransferInput:
    transfer_id: strawberry.ID


@strawberry.type
class AgreementTransferPayload:
    transfer: AgreementTransfer | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


def _received(transfer_id: strawberry.ID) -> Target:
    """Accepted or declined by the receiving firm: the action is checked there."""
    return Target(TransferRow, transfer_id, "transferId", lock=True,
                  tenancy=lambda transfer: Tenancy(firm_id=transfer.to_firm_id))


def _payload(outcome: Outcome[TransferRow]) -> AgreementTransferPayload:
    return AgreementTransferPayload(transfer=AgreementTransfer.maybe(outcome.value), user_errors=user_errors(outcome))


@strawberry.type
class TransferMutations:
    @mutation(Action.MANAGE_AGREEMENTS, description="The agreement's firm (or the vendor) offers the agreement to "
              "another firm; the offer lapses after 30 days unless accepted.")
    async def offer_agreement_transfer(self, info: Info,
                                       input: OfferAgreementTransferInput) -> AgreementTransferPayload:
        return _payload(await run(info, Target(AgreementRow, input.agreement_id, "agreementId", lock=True),
                                  lambda uow, agreement: transfers.offer(uow, agreement, to_firm_id=input.to_firm_id),
                                  input=input))

    @mutation(Action.MANAGE_AGREEMENTS, description="The receiving firm's admin accepts: the agreement moves at the "
              "start of its subscription's next period (at once without a running one).")
    async def accept_agreement_transfer(self, info: Info,
                                        input: AcceptAgreementTransferInput) -> AgreementTransferPayload:
        return _payload(await run(info, _received(input.transfer_id), lambda uow, transfer: transfers.accept(
            uow, transfer, customer_number=input.customer_number), input=input))

    @mutation(Action.MANAGE_AGREEMENTS, description="The receiving firm's admin declines the offer.")
    async def decline_agreement_transfer(self, info: Info,
                                         input: DeclineAgreementTransferInput) -> AgreementTransferPayload:
        return _payload(await run(info, _received(input.transfer_id), transfers.decline, input=input))

    @mutation(Action.MANAGE_AGREEMENTS, description="The offering firm takes back an offer not accepted yet.")
    async def withdraw_agreement_transfer(self, info: Info,
                                          input: WithdrawAgreementTransferInput) -> AgreementTransferPayload:
        return _payload(await run(info, Target(TransferRow, input.transfer_id, "transferId", lock=True),
                                  transfers.withdraw, input=input))
