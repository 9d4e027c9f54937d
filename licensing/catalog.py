"""Catalog prices in force on a date (prices are versioned by valid_from)."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING

from models import Edition, EditionPrice, Feature, FeaturePrice

if TYPE_CHECKING:
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

    def editions_in_order(self, currency: str, on: date) -> list[Edition]:
        """By seat price, then code: a stable order for `catalog` (DESIGN.md section 6)."""
        return sorted(self.editions.values(), key=lambda e: (self.seat_price(e.code, currency, on), e.code))

    def features_in_order(self) -> list[Feature]:
        return sorted(self.features.values(), key=lambda f: (f.kind, f.code))


async def load_price_book(session: "AsyncSession") -> PriceBook:
    from sqlalchemy import select

    return PriceBook.of(
        list((await session.scalars(select(Edition))).all()),
        list((await session.scalars(select(EditionPrice))).all()),
        list((await session.scalars(select(Feature))).all()),
        list((await session.scalars(select(FeaturePrice))).all()),
    )
