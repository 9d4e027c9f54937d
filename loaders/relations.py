"""The loaders of every relation the schema resolves."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import aliased

from auth import visibility as v
from licensing import usage
from licensing.catalog import PriceBook
from loaders.base import ByIdLoader, ByKeyLoader, CountLoader, Page, PageArgs, PageLoader, RequestLoader
from models import (
    Agreement,
    AgreementTransfer,
    AuditEvent,
    ClientUser,
    ClientUserCompany,
    Company,
    Edition,
    EditionPrice,
    Feature,
    FeaturePrice,
    Firm,
    FirmMember,
    Invoice,
    InvoiceLine,
    LicenseSession,
    Membership,
    OAuthClient,
    Order,
    OrderLine,
    ScheduledChange,
    SeatPool,
    Subscription,
    SubscriptionFeature,
    SubscriptionPeriod,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from models.enums import LicenseType, TransferStatus

# ------------------------------------------------------------------ by id


class FirmByIdLoader(ByIdLoader[Firm]):
    model, visible = Firm, v.visible_firms


class OwnClientLoader(RequestLoader[str, OAuthClient | None]):
    """The OAuth client a token was issued to, for that token only (never another's)."""

    async def batch_load_fn(self, keys: Sequence[str]) -> list[OAuthClient | None]:
        own = [key for key in keys if key and key == self.principal.client_id]
        rows = await self.db.scalars(select(OAuthClient).where(OAuthClient.client_id.in_(own))) if own else []
        by_client_id = {row.client_id: row for row in rows}
        return [by_client_id.get(key) for key in keys]


class AgreementByIdLoader(ByIdLoader[Agreement]):
    model, visible = Agreement, v.visible_agreements


class CompanyByIdLoader(ByIdLoader[Company]):
    model, visible = Company, v.visible_companies


class UserByIdLoader(ByIdLoader[User]):
    model, visible = User, v.visible_users

    def visible_among(self, keys: Sequence[int]) -> v.Filter:
        return v.visible_users(self.principal, among=keys)


class MembershipByIdLoader(ByIdLoader[Membership]):
    model, visible = Membership, v.visible_memberships


class FirmMemberByIdLoader(ByIdLoader[FirmMember]):
    model, visible = FirmMember, v.visible_firm_members


class ClientUserByIdLoader(ByIdLoader[ClientUser]):
    model, visible = ClientUser, v.visible_client_users


class SubscriptionByIdLoader(ByIdLoader[Subscription]):
    model, visible = Subscription, v.visible_subscriptions


class OrderByIdLoader(ByIdLoader[Order]):
    model, visible = Order, v.visible_orders


class InvoiceByIdLoader(ByIdLoader[Invoice]):
    model, visible = Invoice, v.visible_invoices


class AuditEventByIdLoader(ByIdLoader[AuditEvent]):
    model, visible = AuditEvent, v.visible_audit_events


class AgreementTransferByIdLoader(ByIdLoader[AgreementTransfer]):
    model, visible = AgreementTransfer, v.visible_transfers


class OpenTransfersByFirmLoader(RequestLoader[int, list[AgreementTransfer]]):
    """Transfer offers a firm may still accept or that wait for their date, newest first."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[list[AgreementTransfer]]:
        rows = await self.db.scalars(
            select(AgreementTransfer).where(
                AgreementTransfer.to_firm_id.in_(keys), v.visible_transfers(self.principal),
                or_(AgreementTransfer.status == TransferStatus.ACCEPTED,
                    and_(AgreementTransfer.status == TransferStatus.OFFERED,
                         AgreementTransfer.expires_at > self.db.now)))
            .order_by(AgreementTransfer.id.desc()))
        grouped: dict[int, list[AgreementTransfer]] = defaultdict(list)
        for row in rows:
            grouped[row.to_firm_id].append(row)
        return [grouped.get(key, []) for key in keys]


class OpenTransferByAgreementLoader(RequestLoader[int, AgreementTransfer | None]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[AgreementTransfer | None]:
        rows = await self.db.scalars(
            select(AgreementTransfer).where(
                AgreementTransfer.agreement_id.in_(keys), v.visible_transfers(self.principal),
                or_(AgreementTransfer.status == TransferStatus.ACCEPTED,
                    and_(AgreementTransfer.status == TransferStatus.OFFERED,
                         AgreementTransfer.expires_at > self.db.now))))
        by_key = {row.agreement_id: row for row in rows}
        return [by_key.get(key) for key in keys]


class TransferNamesLoader(RequestLoader[int, tuple[str, str, str]]):
    """(agreement, offering firm, receiving firm) names of a transfer the caller may see: what
    the receiving firm needs to decide, before it may read any of the agreement's data."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[tuple[str, str, str]]:
        sender, receiver = aliased(Firm), aliased(Firm)
        rows = await self.db.all(
            select(AgreementTransfer.id, Agreement.name, sender.name, receiver.name)
            .join(Agreement, Agreement.id == AgreementTransfer.agreement_id)
            .join(sender, sender.id == AgreementTransfer.from_firm_id)
            .join(receiver, receiver.id == AgreementTransfer.to_firm_id)
            .where(AgreementTransfer.id.in_(keys), v.visible_transfers(self.principal)))
        by_key = {row[0]: (row[1], row[2], row[3]) for row in rows}
        return [by_key.get(key, ("", "", "")) for key in keys]


class LicenseSessionByIdLoader(ByIdLoader[LicenseSession]):
    model, visible = LicenseSession, v.visible_sessions


# ------------------------------------------------------------------ one per parent


class SubscriptionByAgreementLoader(RequestLoader[int, Subscription | None]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Subscription | None]:
        rows = await self.db.scalars(
            select(Subscription).where(Subscription.agreement_id.in_(keys), v.visible_subscriptions(self.principal))
        )
        by_key = {row.agreement_id: row for row in rows}
        return [by_key.get(key) for key in keys]


class MasterSubscriptionByFirmLoader(RequestLoader[int, Subscription | None]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[Subscription | None]:
        rows = await self.db.scalars(
            select(Subscription).where(Subscription.master_firm_id.in_(keys), v.visible_subscriptions(self.principal))
        )
        by_key = {row.master_firm_id: row for row in rows}
        return [by_key.get(key) for key in keys]


class CompanyCountByAgreementLoader(RequestLoader[int, int]):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        rows = await self.db.all(
            select(Company.agreement_id, func.count())
            .where(Company.agreement_id.in_(keys), Company.archived_at.is_(None), v.visible_companies(self.principal))
            .group_by(Company.agreement_id)
        )
        counts = {agreement_id: int(count) for agreement_id, count in rows}
        return [counts.get(key, 0) for key in keys]


# ------------------------------------------------------------------ small lists


class SeatPoolsBySubscriptionLoader(ByKeyLoader[SeatPool]):
    model, key = SeatPool, SeatPool.subscription_id


class FeaturesBySubscriptionLoader(ByKeyLoader[SubscriptionFeature]):
    model, key = SubscriptionFeature, SubscriptionFeature.subscription_id


class CurrentPeriodBySubscriptionLoader(RequestLoader[int, SubscriptionPeriod | None]):
    """The recorded current period (its billing mode and discount), by subscription."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[SubscriptionPeriod | None]:
        rows = await self.db.scalars(
            select(SubscriptionPeriod).join(Subscription, Subscription.id == SubscriptionPeriod.subscription_id)
            .where(SubscriptionPeriod.subscription_id.in_(keys),
                   SubscriptionPeriod.start == Subscription.current_period_start))
        by_key = {row.subscription_id: row for row in rows}
        return [by_key.get(key) for key in keys]


class PendingChangesBySubscriptionLoader(ByKeyLoader[ScheduledChange]):
    model, key = ScheduledChange, ScheduledChange.subscription_id

    async def batch_load_fn(self, keys: Sequence[Any]) -> list[list[ScheduledChange]]:
        rows = await self.db.scalars(
            select(ScheduledChange)
            .where(
                ScheduledChange.subscription_id.in_(keys),
                ScheduledChange.applied_at.is_(None),
                ScheduledChange.cancelled_at.is_(None),
            )
            .order_by(ScheduledChange.effective_on, ScheduledChange.id)
        )
        grouped: dict[int, list[ScheduledChange]] = {key: [] for key in keys}
        for row in rows:
            grouped[row.subscription_id].append(row)
        return [grouped[key] for key in keys]


class OrderLinesByOrderLoader(ByKeyLoader[OrderLine]):
    model, key = OrderLine, OrderLine.order_id


class CompanyLinksByClientUserLoader(ByKeyLoader[ClientUserCompany]):
    model, key = ClientUserCompany, ClientUserCompany.client_user_id


# ------------------------------------------------------------------ connections


class AgreementsByFirmLoader(PageLoader[Agreement]):
    model, parent, visible = Agreement, Agreement.firm_id, v.visible_agreements
    search_columns = (Agreement.name, Agreement.customer_number)


class CompaniesByFirmLoader(PageLoader[Company]):
    model, parent, visible = Company, Company.firm_id, v.visible_companies
    search_columns = (Company.name, Company.organization_number)


class CompaniesByAgreementLoader(PageLoader[Company]):
    model, parent, visible = Company, Company.agreement_id, v.visible_companies


class MembershipsByCompanyLoader(PageLoader[Membership]):
    model, parent, visible = Membership, Membership.company_id, v.visible_memberships


class MembershipsByUserLoader(PageLoader[Membership]):
    model, parent, visible = Membership, Membership.user_id, v.visible_memberships


class StaffByFirmLoader(PageLoader[FirmMember]):
    model, parent, visible = FirmMember, FirmMember.firm_id, v.visible_firm_members


class StaffByUserLoader(PageLoader[FirmMember]):
    model, parent, visible = FirmMember, FirmMember.user_id, v.visible_firm_members


class WebhookEndpointByIdLoader(ByIdLoader[WebhookEndpoint]):
    model, visible = WebhookEndpoint, v.visible_webhook_endpoints


class WebhookEndpointsByFirmLoader(PageLoader[WebhookEndpoint]):
    model, parent, visible = WebhookEndpoint, WebhookEndpoint.firm_id, v.visible_webhook_endpoints


class WebhookDeliveriesByEndpointLoader(PageLoader[WebhookDelivery]):
    model, parent, visible = WebhookDelivery, WebhookDelivery.endpoint_id, v.visible_webhook_deliveries
    newest_first = True


class WebhookEventByIdLoader(ByIdLoader[WebhookEvent]):
    model, visible = WebhookEvent, v.visible_webhook_events


class WebhookAttemptsByDeliveryLoader(ByKeyLoader[WebhookAttempt]):
    model, key, visible = WebhookAttempt, WebhookAttempt.delivery_id, v.visible_webhook_attempts


class ClientUsersByFirmLoader(PageLoader[ClientUser]):
    model, parent, visible = ClientUser, ClientUser.firm_id, v.visible_client_users


class OrdersBySubscriptionLoader(PageLoader[Order]):
    model, parent, visible = Order, Order.subscription_id, v.visible_orders
    newest_first = True


class InvoicesByFirmLoader(PageLoader[Invoice]):
    model, parent, visible = Invoice, Invoice.firm_id, v.visible_invoices
    newest_first = True


class InvoicesByAgreementLoader(PageLoader[Invoice]):
    model, parent, visible = Invoice, Invoice.agreement_id, v.visible_invoices
    newest_first = True


class AuditEventsByFirmLoader(PageLoader[AuditEvent]):
    model, parent, visible = AuditEvent, AuditEvent.firm_id, v.visible_audit_events
    newest_first = True


class AuditEventsByCompanyLoader(PageLoader[AuditEvent]):
    model, parent, visible = AuditEvent, AuditEvent.company_id, v.visible_audit_events
    newest_first = True


class AuditEventsBySubscriptionLoader(PageLoader[AuditEvent]):
    model, parent, visible = AuditEvent, AuditEvent.subscription_id, v.visible_audit_events
    newest_first = True


def count_loader(page_loader: type[PageLoader[Any]]) -> type[CountLoader]:
    """The totalCount loader that goes with a page loader (one class per relation)."""
    made = _COUNTS.get(page_loader)
    if made is None:
        name = page_loader.__name__.replace("Loader", "CountLoader")
        made = _COUNTS[page_loader] = type(name, (CountLoader,), {"page_loader": page_loader})
    return made


_COUNTS: dict[type[PageLoader[Any]], type[CountLoader]] = {}


class InvoiceLinesByInvoiceLoader(ByKeyLoader[InvoiceLine]):
    model, key = InvoiceLine, InvoiceLine.invoice_id


# ------------------------------------------------------------------ catalog and usage


class PriceBookLoader(RequestLoader[str, PriceBook]):
    """The catalog with its prices, once per request (key: "catalog")."""

    async def batch_load_fn(self, keys: Sequence[str]) -> list[PriceBook]:
        book = PriceBook.of(
            list(await self.db.scalars(select(Edition))),
            list(await self.db.scalars(select(EditionPrice))),
            list(await self.db.scalars(select(Feature))),
            list(await self.db.scalars(select(FeaturePrice))),
        )
        return [book for _ in keys]


class _CountBy(RequestLoader[int, int]):
    async def counts(self, stmt: Any, keys: Sequence[int]) -> list[int]:
        found = {key: int(count) for key, count in await self.db.all(stmt)}
        return [found.get(key, 0) for key in keys]


class NamedSeatsInUseByAgreementLoader(_CountBy):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        return await self.counts(usage.named_seats_in_use(list(keys), self.db.now), keys)


class LiveSessionsBySubscriptionLoader(_CountBy):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        return await self.counts(usage.live_sessions(list(keys), self.db.now), keys)


class ClientUserCountByFirmLoader(_CountBy):
    async def batch_load_fn(self, keys: Sequence[int]) -> list[int]:
        return await self.counts(usage.client_users_assigned(list(keys)), keys)


# ------------------------------------------------------------------ who uses the seats (R13)


@dataclass(frozen=True)
class ChargeLineRow:
    """One line of an agreement's charge breakdown: a user needing a seat of one licence type."""

    agreement_id: int
    user: User
    license_type: LicenseType

    @property
    def key(self) -> int:
        """Stable cursor position: by user id, then licence type."""
        return charge_line_key(self.user.id, self.license_type)


def charge_line_key(user_id: int, license_type: LicenseType) -> int:
    return user_id * len(usage.LICENSE_TYPES) + usage.LICENSE_TYPES.index(license_type)


class ChargeableAccessesByAgreementLoader(RequestLoader[int, dict[LicenseType, int]]):
    """Distinct users needing a seat per licence type, for whoever may read the subscription."""

    async def batch_load_fn(self, keys: Sequence[int]) -> list[dict[LicenseType, int]]:
        lines = usage.access_lines(self.db.now).where(
            Company.agreement_id.in_(keys), v.visible_seat_usage(self.principal)).subquery()
        rows = await self.db.all(
            select(lines.c.agreement_id, lines.c.license_type, func.count())
            .group_by(lines.c.agreement_id, lines.c.license_type)
        )
        found: dict[int, dict[LicenseType, int]] = defaultdict(dict)
        for agreement_id, license_type, count in rows:
            found[agreement_id][license_type] = int(count)
        return [found.get(key, {}) for key in keys]


class ChargeLinesByAgreementLoader(RequestLoader[tuple[int, PageArgs], Page[ChargeLineRow]]):
    """One page of each agreement's charge lines, for many agreements in one statement; the
    line's user comes in the same statement. Its totalCount is the sum of the
    ChargeableAccessesByAgreementLoader counts."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, PageArgs]]) -> list[Page[ChargeLineRow]]:
        by_args: dict[PageArgs, list[int]] = defaultdict(list)
        for parent, args in keys:
            by_args[args].append(parent)
        pages: dict[tuple[int, PageArgs], Page[ChargeLineRow]] = {}
        for args, parents in by_args.items():
            grouped = await self._load(parents, args)
            for parent in parents:
                rows = grouped.get(parent, [])
                pages[(parent, args)] = Page(rows[: args.first], len(rows) > args.first, args.after is not None)
        return [pages[key] for key in keys]

    async def _load(self, parents: list[int], args: PageArgs) -> dict[int, list[ChargeLineRow]]:
        lines = usage.access_lines(self.db.now).where(
            Company.agreement_id.in_(parents), v.visible_seat_usage(self.principal)).subquery()
        position = lines.c.user_id * len(usage.LICENSE_TYPES) + usage.license_type_order(lines.c.license_type)
        numbered = (
            select(lines.c.agreement_id, lines.c.user_id, lines.c.license_type, position.label("position"),
                   func.row_number().over(partition_by=lines.c.agreement_id, order_by=position).label("n"))
            .where(true() if args.after is None else position > args.after)
            .subquery()
        )
        stmt = (
            select(User, numbered.c.agreement_id, numbered.c.license_type)
            .join(numbered, User.id == numbered.c.user_id)
            .where(numbered.c.n <= args.first + 1)
            .order_by(numbered.c.agreement_id, numbered.c.position)
        )
        grouped: dict[int, list[ChargeLineRow]] = defaultdict(list)
        for user, agreement_id, license_type in await self.db.all(stmt):
            grouped[agreement_id].append(ChargeLineRow(agreement_id, user, license_type))
        return grouped


class CompaniesByChargeLineLoader(RequestLoader[tuple[int, int, LicenseType], list[Company]]):
    """The companies of the agreement through which a user needs that seat, in id order."""

    async def batch_load_fn(self, keys: Sequence[tuple[int, int, LicenseType]]) -> list[list[Company]]:
        agreements = sorted({agreement_id for agreement_id, _, _ in keys})
        users = sorted({user_id for _, user_id, _ in keys})
        stmt = (
            usage.access_companies(self.db.now)
            .where(Company.agreement_id.in_(agreements), Membership.user_id.in_(users),
                   v.visible_seat_usage(self.principal))
            .order_by(Company.id)
        )
        grouped: dict[tuple[int, int, LicenseType], list[Company]] = defaultdict(list)
        for user_id, license_type, company in await self.db.all(stmt):
            grouped[(company.agreement_id, user_id, license_type)].append(company)
        return [grouped.get(key, []) for key in keys]
