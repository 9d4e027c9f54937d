"""The catalog: editions and add-ons, priced in the caller's currency."""

from datetime import date

import strawberry

from licensing.catalog import DEFAULT_CURRENCY, PriceBook
from loaders import relations as r
from models import Edition as EditionRow
from models import Feature as FeatureRow
from schema.context import Info
from schema.types.common import FeatureKind, Money


@strawberry.type
class Edition:
    code: str
    name: str
    seat_price: Money = strawberry.field(description="Price of one seat per month; the same for every role.")
    included_file_storage_gb: int

    @classmethod
    def priced(cls, row: EditionRow, book: PriceBook, currency: str, on: date) -> "Edition":
        return cls(code=row.code, name=row.name, included_file_storage_gb=row.included_file_storage_gb,
                   seat_price=Money(amount=book.seat_price(row.code, currency, on), currency=currency))


@strawberry.type
class Feature:
    code: str
    name: str
    kind: FeatureKind  # type: ignore[valid-type]
    monthly_price: Money

    @classmethod
    def priced(cls, row: FeatureRow, book: PriceBook, currency: str, on: date) -> "Feature":
        return cls(code=row.code, name=row.name, kind=row.kind,
                   monthly_price=Money(amount=book.feature_price(row.code, currency, on), currency=currency))


@strawberry.type
class Catalog:
    editions: list[Edition] = strawberry.field(description="Editions priced in the caller's currency today.")
    features: list[Feature]

    @classmethod
    def of(cls, book: PriceBook, currency: str, on: date) -> "Catalog":
        """What can be bought in the currency: anything not priced in it is left out, never shown at 0.00."""
        return cls(
            editions=[Edition.priced(e, book, currency, on) for e in book.editions_in_order(currency, on)
                      if book.has_seat_price(e.code, currency, on)],
            features=[Feature.priced(f, book, currency, on) for f in book.features_in_order()
                      if book.has_feature_price(f.code, currency, on)],
        )


async def callers_prices(info: Info) -> tuple[PriceBook, str, date]:
    """The catalog as the caller sees it now: in its firm's currency, EUR when it has none (the vendor)."""
    book: PriceBook = await info.context.loaders.get(r.PriceBookLoader).load("catalog")
    currency = DEFAULT_CURRENCY
    firm_id = info.context.principal.home_firm_id()
    if firm_id is not None:
        firm = await info.context.loaders.get(r.FirmByIdLoader).load(firm_id)
        currency = firm.currency if firm is not None else currency
    return book, currency, info.context.db.now.date()
