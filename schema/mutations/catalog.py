"""Catalog mutations: the vendor's back office (platform:admin)."""

from datetime import date
from decimal import Decimal

import strawberry

from auth.policy import Action
from models import Edition as EditionRow
from models import Feature as FeatureRow
from resolvers import catalog
from schema.context import Info
from schema.errors import UserError
from schema.mutations.base import mutation, run, user_errors
from schema.types.catalog import Edition, Feature, callers_prices
from schema.types.common import FeatureKind


@strawberry.input
class MoneyInput:
    amount: Decimal
    currency: str


@strawberry.input
class UpsertEditionInput:
    code: str
    name: str
    seat_prices: list[MoneyInput] = strawberry.field(description="One monthly seat price per currency.")
    included_file_storage_gb: int
    valid_from: date | None = strawberry.field(default=None, description="First day the prices hold; today when "
                                               "absent.")


@strawberry.type
class EditionPayload:
    edition: Edition | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpsertFeatureInput:
    code: str
    name: str
    kind: FeatureKind  # type: ignore[valid-type]
    monthly_prices: list[MoneyInput] = strawberry.field(description="One monthly price per currency; zero for a "
                                                        "free one.")
    valid_from: date | None = None


@strawberry.type
class FeaturePayload:
    feature: Feature | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


async def _edition(info: Info, row: EditionRow | None) -> Edition | None:
    if row is None:
        return None
    book, currency, on = await callers_prices(info)
    return Edition.priced(book.editions[row.code], book, currency, on)


async def _feature(info: Info, row: FeatureRow | None) -> Feature | None:
    if row is None:
        return None
    book, currency, on = await callers_prices(info)
    return Feature.priced(book.features[row.code], book, currency, on)


@strawberry.type
class CatalogMutations:
    @mutation(Action.PLATFORM, description="Vendor back office (platform:admin): add or reprice a catalog edition; "
              "a new price holds from validFrom, and invoices use the price in force for their period.")
    async def upsert_edition(self, info: Info, input: UpsertEditionInput) -> EditionPayload:
        outcome = await run(info, None, lambda uow, _: catalog.upsert_edition(
            uow, code=input.code, name=input.name, seat_prices=[(p.amount, p.currency) for p in input.seat_prices],
            included_file_storage_gb=input.included_file_storage_gb, valid_from=input.valid_from), input=input)
        return EditionPayload(edition=await _edition(info, outcome.value), user_errors=user_errors(outcome))

    @mutation(Action.PLATFORM,
              description="Vendor back office (platform:admin): add or reprice a feature or integration.")
    async def upsert_feature(self, info: Info, input: UpsertFeatureInput) -> FeaturePayload:
        outcome = await run(info, None, lambda uow, _: catalog.upsert_feature(
            uow, code=input.code, name=input.name, kind=input.kind,
            monthly_prices=[(p.amount, p.currency) for p in input.monthly_prices], valid_from=input.valid_from),
            input=input)
        return FeaturePayload(feature=await _feature(info, outcome.value), user_errors=user_errors(outcome))
