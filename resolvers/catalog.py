"""The vendor's catalog (platform:admin): editions, features and integrations, and their prices.

Choices:
- A code names one edition or feature for good: a new code creates it, a known code updates
  its name, storage or kind. Codes are never renamed (subscriptions and prices refer to them).
- Prices are versioned by valid_from (licensing.catalog.PriceBook): every upsert adds one row per
  currency given, holding from valid_from (today when absent) until the next one; a row for the
  same (code, currency, valid_from) is replaced. Currencies not given keep their prices. Every
  invoice, order and preview prices a period at the row in force on the period's start, so a
  future-dated price changes nothing before its date.
- Every change is audited vendor-wide (firm_id NULL); a repeat of the same values changes and
  audits nothing.
- Concurrent upserts of one new code, or of one price row, meet on the unique keys; the unit of
  work retries, and the retry updates the row the winner created.
"""

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from licensing.catalog import require_code, require_prices, require_storage
from licensing.errors import Problems
from licensing.validation import require_text
from models import Edition, EditionPrice, Feature, FeaturePrice
from models.enums import FeatureKind
from resolvers.base import UnitOfWork, changes

Prices = Sequence[tuple[Decimal, str]]


async def upsert_edition(
    uow: UnitOfWork,
    *,
    code: str,
    name: str,
    seat_prices: Prices,
    included_file_storage_gb: int,
    valid_from: date | None,
) -> Edition:
    problems = Problems()
    code = problems.check(require_code, code, ["input", "code"])
    values: dict[str, Any] = {
        "name": problems.check(require_text, name, ["input", "name"]),
        "included_file_storage_gb": problems.check(require_storage, included_file_storage_gb,
                                                   ["input", "includedFileStorageGb"]),
    }
    prices = problems.check(require_prices, seat_prices, ["input", "seatPrices"])
    problems.done()
    on = valid_from or uow.runtime.today()

    edition = await uow.session.scalar(select(Edition).where(Edition.code == code).with_for_update())
    if edition is None:
        edition = Edition(code=code, **values)
        uow.session.add(edition)
        await uow.session.flush()
        uow.audit("catalog.edition_created", edition, f"Edition {code} created", after=values, firm_id=None)
    else:
        before, after = changes(edition, values)
        if after:
            uow.audit("catalog.edition_updated", edition, f"Edition {code} updated", before=before, after=after,
                      firm_id=None)

    await _set_prices(uow, edition, EditionPrice, EditionPrice.edition_code, prices, on,
                      "catalog.edition_priced", f"Seat price of {code}")
    return edition


async def upsert_feature(
    uow: UnitOfWork,
    *,
    code: str,
    name: str,
    kind: FeatureKind,
    monthly_prices: Prices,
    valid_from: date | None,
) -> Feature:
    problems = Problems()
    code = problems.check(require_code, code, ["input", "code"])
    values: dict[str, Any] = {"name": problems.check(require_text, name, ["input", "name"]), "kind": kind}
    prices = problems.check(require_prices, monthly_prices, ["input", "monthlyPrices"])
    problems.done()
    on = valid_from or uow.runtime.today()

    feature = await uow.session.scalar(select(Feature).where(Feature.code == code).with_for_update())
    if feature is None:
        feature = Feature(code=code, **values)
        uow.session.add(feature)
        await uow.session.flush()
        uow.audit("catalog.feature_created", feature, f"{kind.value.title()} {code} created",
                  after=values, firm_id=None)
    else:
        before, after = changes(feature, values)
        if after:
            uow.audit("catalog.feature_updated", feature, f"{kind.value.title()} {code} updated",
                      before=before, after=after, firm_id=None)

    await _set_prices(uow, feature, FeaturePrice, FeaturePrice.feature_code, prices, on,
                      "catalog.feature_priced", f"Monthly price of {code}")
    return feature


async def _set_prices(uow: UnitOfWork, subject: Edition | Feature, model: type[EditionPrice] | type[FeaturePrice],
                      code_column: Any, prices: dict[str, Decimal], on: date, action: str, what: str) -> None:
    """One price row per currency from `on`; a row for the same date is replaced."""
    for currency, amount in prices.items():
        row: EditionPrice | FeaturePrice | None = await uow.session.scalar(
            select(model)  # type: ignore[arg-type]
            .where(code_column == subject.code, model.currency == currency, model.valid_from == on)
            .with_for_update()
        )
        if row is not None and row.monthly_price == amount:
            continue
        _audit_price(uow, subject, action, what, currency, on, None if row is None else row.monthly_price, amount)
        if row is None:
            uow.session.add(model(**{code_column.key: subject.code}, currency=currency, monthly_price=amount,
                                  valid_from=on))
        else:
            row.monthly_price = amount
    await uow.session.flush()


def _audit_price(uow: UnitOfWork, subject: Edition | Feature, action: str, what: str, currency: str, on: date,
                 old: Decimal | None, new: Decimal) -> None:
    uow.audit(
        action, subject, f"{what} in {currency} from {on.isoformat()}: {new}",
        before=None if old is None else {"currency": currency, "validFrom": on, "amount": old},
        after={"currency": currency, "validFrom": on, "amount": new},
        firm_id=None,
    )

