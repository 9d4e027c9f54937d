"""Catalog prices in force on a date (prices are versioned by valid_from)."""

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from licensing.errors import RuleViolation
from licensing.validation import require_amount, require_currency, require_text
from models import Edition, EditionPrice, Feature, FeaturePrice
from models.enums import UserErrorCode

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.ext.asyncio import AsyncSession

DEFAULT_CURRENCY = "EUR"


@dataclass
class PriceBook:
    """The whole catalog with its price history; small enough to load once per request."""

    editions: dict[str, Edition] = field(default_factory=dict)
    features: dict[str, Feature] = field(default_factory=dict)
    _edition_prices: dict[tuple[str, str], list[tuple[date, Decimal]]] = field(
        default_factory=lambda: defaultdict(list))
    _feature_prices: dict[tuple[str, str], list[tuple[date, Decimal]]] = field(
        default_factory=lambda: defaultdict(list))

    @classmethod
    def of(cls, editions: list[Edition], edition_prices: list[EditionPrice], features: list[Feature],
           feature_prices: list[FeaturePrice]) -> "PriceBook":
        book = cls({e.code: e for e in editions}, {f.code: f for f in features})
        for ep in edition_prices:
            book._edition_prices[(ep.edition_code, ep.currency)].append((ep.valid_from, ep.monthly_price))
        for fp in feature_prices:
            book._feature_prices[(fp.feature_code, fp.currency)].append((fp.valid_from, fp.monthly_price))
        for history in (*book._edition_prices.values(), *book._feature_prices.values()):
            history.sort()
        return book

    @staticmethod
    def _in_force(history: list[tuple[date, Decimal]], on: date) -> Decimal | None:
        price = None
        for valid_from, amount in history:
            if valid_from <= on:
                price = amount
        return price

    def seat_price(self, edition_code: str, currency: str, on: date) -> Decimal:
        """Monthly price of one seat; zero when the edition has no price in that currency yet."""
        return self._in_force(self._edition_prices.get((edition_code, currency), []), on) or Decimal("0.00")

    def feature_price(self, feature_code: str, currency: str, on: date) -> Decimal:
        return self._in_force(self._feature_prices.get((feature_code, currency), []), on) or Decimal("0.00")

    def has_seat_price(self, edition_code: str, currency: str, on: date) -> bool:
        return self._in_force(self._edition_prices.get((edition_code, currency), []), on) is not None

    def has_feature_price(self, feature_code: str, currency: str, on: date) -> bool:
        return self._in_force(self._feature_prices.get((feature_code, currency), []), on) is not None

    def prices_currency(self, currency: str) -> bool:
        """Whether any edition has a price in the currency (from any date)."""
        return any(cur == currency and history for (_, cur), history in self._edition_prices.items())


    def editions_in_order(self, currency: str, on: date) -> list[Edition]:
        """By seat price, then code: a stable order for `catalog` (DESIGN.md section 6)."""
        return sorted(self.editions.values(), key=lambda e: (self.seat_price(e.code, currency, on), e.code))

    def features_in_order(self) -> list[Feature]:
        return sorted(self.features.values(), key=lambda f: (f.kind, f.code))


def require_priced(book: PriceBook, currency: str, on: date, field: Sequence[str], *, edition_code: str | None = None,
                   feature_code: str | None = None) -> None:
    """Money is never computed from a missing price: no price in the currency is refused,
    never charged as 0.00."""
    missing = (edition_code is not None and not book.has_seat_price(edition_code, currency, on)) or (
        feature_code is not None and not book.has_feature_price(feature_code, currency, on))
    if missing:
        what = f"edition {edition_code}" if edition_code is not None else f"add-on {feature_code}"
        raise RuleViolation(UserErrorCode.NO_PRICE_IN_CURRENCY,
                            f"The {what} has no price in {currency} on {on.isoformat()}; the vendor must price it "
                            "first.", field)


def catalog_statements() -> "tuple[Select[Any], ...]":
    """The catalog's four tables, for models.side_by_side: read in one statement, alone or with others."""
    from sqlalchemy import select

    return select(Edition), select(EditionPrice), select(Feature), select(FeaturePrice)


async def load_price_book(session: "AsyncSession") -> PriceBook:
    from models.side_by_side import side_by_side

    editions, edition_prices, features, feature_prices = await side_by_side(session, *catalog_statements())
    return PriceBook.of(editions, edition_prices, features, feature_prices)


# ------------------------------------------------------------------ the vendor's edits (upsertEdition, upsertFeature)

CODE_PATTERN = re.compile(r"[A-Z0-9_]+")


def require_code(value: str, field: Sequence[str]) -> str:
    """Catalog codes are upper-case letters, digits and underscores (e.g. STANDARD, BANK_FEED)."""
    code = require_text(value, field, "Code", max_length=50)
    if not CODE_PATTERN.fullmatch(code):
        raise RuleViolation(UserErrorCode.INVALID_INPUT,
                            "A code holds upper-case letters, digits and underscores only.", field)
    return code


def require_storage(value: int, field: Sequence[str]) -> int:
    if value < 0:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Included file storage must not be negative.", field)
    return value


def require_prices(prices: Sequence[tuple[Decimal, str]], field: Sequence[str]) -> dict[str, Decimal]:
    """(amount, currency) pairs -> one price per currency: at least one, no currency twice,
    supported ISO 4217 codes, amounts >= 0 with at most two decimals."""
    if not prices:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Give at least one price.", field)
    by_currency: dict[str, Decimal] = {}
    for index, (amount, currency) in enumerate(prices):
        at = [*field, str(index)]
        code = require_currency(currency, [*at, "currency"])
        if code in by_currency:
            raise RuleViolation(UserErrorCode.INVALID_INPUT, f"{code} is priced twice.", [*at, "currency"])
        by_currency[code] = require_amount(amount, [*at, "amount"])
    return by_currency
