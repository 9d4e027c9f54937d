"""Licence subscriptions (read side), seat pools and concurrent sessions."""

from datetime import date, datetime
from decimal import Decimal

import strawberry

import models
from licensing import periods, pricing
from licensing.catalog import PriceBook
from loaders import relations as r
from models.enums import BillingMode as BillingModeEnum
from models.enums import LicenseType as LicenseTypeEnum
from models.enums import PriceBasis
from models.enums import ScheduledChangeKind as Kind
from schema.context import Info
from schema.types.audit import AuditEvent
from schema.types.base import FromModel
from schema.types.billing import BillingPeriod, Order, basis_of
from schema.types.catalog import Edition, Feature
from schema.types.common import (
    BillingInterval,
    Connection,
    LicenseType,
    Money,
    Node,
    SalesChannel,
    ScheduledChangeKind,
    SubscriptionStatus,
    connection,
    page_args,
)
from schema.types.companies import Company
from schema.types.users import User


@strawberry.type
class SeatPool:
    license_type: LicenseType  # type: ignore[valid-type]
    purchased: int = strawberry.field(description="Seats paid for in the current period.")
    in_use: int
    available: int
    next_period_purchased: int = strawberry.field(description="Seats that will be paid for from the next period on.")


@strawberry.type
class FeatureState:
    feature: Feature
    enabled: bool


@strawberry.type
class ScheduledChange:
    kind: ScheduledChangeKind  # type: ignore[valid-type]
    effective_on: date
    license_type: LicenseType | None  # type: ignore[valid-type]
    from_value: str
    to_value: str

    @classmethod
    def of(cls, row: models.ScheduledChange) -> "ScheduledChange":
        return cls(kind=row.kind, effective_on=row.effective_on, license_type=row.license_type,
                   from_value=row.from_value, to_value=row.to_value)


@strawberry.type(description="A licence subscription: of a customer agreement, or a firm's master licence.")
class LicenseSubscription(Node, FromModel):
    model: strawberry.Private[models.Subscription]
    status: SubscriptionStatus  # type: ignore[valid-type]
    channel: SalesChannel  # type: ignore[valid-type]
    billing_interval: BillingInterval  # type: ignore[valid-type]

    async def _currency(self, info: Info) -> str:
        firm = await info.context.loaders.get(r.FirmByIdLoader).load(self.model.firm_id)
        return firm.currency if firm is not None else "EUR"

    async def _book(self, info: Info) -> PriceBook:
        book: PriceBook = await info.context.loaders.get(r.PriceBookLoader).load("catalog")
        return book

    def _period(self, info: Info) -> periods.Period:
        """The stored period: the one truth changes, previews and invoices use too."""
        return periods.Period(self.model.current_period_start, self.model.current_period_end)

    @strawberry.field
    async def edition(self, info: Info) -> Edition:
        book = await self._book(info)
        return Edition.priced(book.editions[self.model.edition_code], book, await self._currency(info),
                              self._period(info).start)

    @strawberry.field
    def current_period(self, info: Info) -> BillingPeriod:
        period = self._period(info)
        return BillingPeriod(start=period.start, end=period.end)

    @strawberry.field
    def next_period(self, info: Info) -> BillingPeriod:
        period = periods.next_period(self.model.starts_on, self.model.billing_interval, self._period(info))
        return BillingPeriod(start=period.start, end=period.end)

    @strawberry.field
    async def seats(self, info: Info) -> list[SeatPool]:
        loaders = info.context.loaders
        pools = await loaders.get(r.SeatPoolsBySubscriptionLoader).load(self.model.id)
        pending = await loaders.get(r.PendingChangesBySubscriptionLoader).load(self.model.id)
        decreases = {c.license_type: int(c.to_value) for c in pending if c.kind is Kind.SEAT_DECREASE}
        result = []
        for pool in sorted(pools, key=lambda p: list(LicenseTypeEnum).index(p.license_type)):
            in_use = await self._in_use(info, pool.license_type)
            result.append(SeatPool(
                license_type=pool.license_type,
                purchased=pool.purchased,
                in_use=in_use,
                available=max(pool.purchased - in_use, 0),
                next_period_purchased=decreases.get(pool.license_type, pool.purchased),
            ))
        return result

    async def _in_use(self, info: Info, license_type: LicenseTypeEnum) -> int:
        loaders = info.context.loaders
        if license_type is LicenseTypeEnum.NAMED:
            if self.model.agreement_id is None:
                return 0  # a firm's master licence has no companies of its own
            return int(await loaders.get(r.NamedSeatsInUseByAgreementLoader).load(self.model.agreement_id))
        if license_type is LicenseTypeEnum.CONCURRENT:
            return int(await loaders.get(r.LiveSessionsBySubscriptionLoader).load(self.model.id))
        if self.model.master_firm_id is None:
            return 0
        return int(await loaders.get(r.ClientUserCountByFirmLoader).load(self.model.master_firm_id))

    @strawberry.field
    async def file_storage_gb(self, info: Info) -> int:
        book = await self._book(info)
        return book.editions[self.model.edition_code].included_file_storage_gb

    @strawberry.field
    async def features(self, info: Info) -> list[FeatureState]:
        book = await self._book(info)
        currency = await self._currency(info)
        on = self._period(info).start
        rows = await info.context.loaders.get(r.FeaturesBySubscriptionLoader).load(self.model.id)
        enabled = {row.feature_code for row in rows if row.enabled}
        return [FeatureState(feature=Feature.priced(f, book, currency, on), enabled=f.code in enabled)
                for f in book.features_in_order()]

    async def _monthly(self, info: Info) -> Money:
        """At the price the payer pays, with the discount recorded when the period began, for
        those who may see it; at list price (and saying so) for everyone else."""
        loaders = info.context.loaders
        pools = await loaders.get(r.SeatPoolsBySubscriptionLoader).load(self.model.id)
        features = await loaders.get(r.FeaturesBySubscriptionLoader).load(self.model.id)
        period = await loaders.get(r.CurrentPeriodBySubscriptionLoader).load(self.model.id)
        currency = await self._currency(info)
        mode = period.billing_mode if period is not None else BillingModeEnum.CUSTOMER
        basis = basis_of(info, mode, self.model.firm_id)
        discount = period.discount_percent if period is not None and basis is PriceBasis.RESELLER else Decimal(0)
        amount = pricing.monthly_price(
            await self._book(info), self.model.edition_code, currency, self._period(info).start,
            [p.purchased for p in pools], [f.feature_code for f in features if f.enabled], discount_percent=discount,
        )
        return Money(amount=amount, currency=currency, basis=basis)

    @strawberry.field(description="Price per month of the current period, seats and add-ons included, at the price "
                      "the payer pays (Money.basis: RESELLER for a FIRM agreement seen by the firm's staff).")
    async def monthly_price(self, info: Info) -> Money:
        return await self._monthly(info)

    @strawberry.field(description="Price of the whole current period.")
    async def total_price(self, info: Info) -> Money:
        monthly = await self._monthly(info)
        return Money(amount=pricing.period_total(monthly.amount, self.model.billing_interval),
                     currency=monthly.currency, basis=monthly.basis)

    @strawberry.field
    async def scheduled_changes(self, info: Info) -> list[ScheduledChange]:
        rows = await info.context.loaders.get(r.PendingChangesBySubscriptionLoader).load(self.model.id)
        return [ScheduledChange.of(row) for row in rows]

    @strawberry.field
    async def orders(self, info: Info, first: int | None = None, after: str | None = None) -> Connection[Order]:
        return await connection(info, r.OrdersBySubscriptionLoader, self.model.id, page_args(first, after),
                                Order.from_model)

    @strawberry.field
    async def audit_log(
        self, info: Info, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]:
        return await connection(info, r.AuditEventsBySubscriptionLoader, self.model.id, page_args(first, after),
                                AuditEvent.from_model)


@strawberry.type
class LicenseSession(Node, FromModel):
    model: strawberry.Private[models.LicenseSession]
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None

    @strawberry.field
    async def user(self, info: Info) -> User:
        row = await info.context.loaders.get(r.UserByIdLoader).load(self.model.user_id)
        if row is None:
            raise LookupError("session's user not visible")
        return User.from_model(row)

    @strawberry.field
    async def company(self, info: Info) -> Company:
        row = await info.context.loaders.get(r.CompanyByIdLoader).load(self.model.company_id)
        if row is None:
            raise LookupError("session's company not visible")
        return Company.from_model(row)


@strawberry.type(description="What a change does and costs, returned by every change and by a dry run.")
class ChangePreview:
    effective_on: date
    amount_due_now: Money = strawberry.field(
        description="Charged now for the rest of the current period (zero for seats already paid this period)."
    )
    next_monthly_price: Money = strawberry.field(description="The monthly price from the next period on.")
    warnings: list[str] = strawberry.field(description="e.g. that a pending seat decrease is replaced.")
