"""Which rows a caller may read, as SQLAlchemy filters (DESIGN.md sections 3 and 5).

Written once per type over the principal, so the loaders use them now and a compiled
selection-to-SQL path can use them later. A `platform:admin` token sees everything.

Each filter costs a constant per row it is applied to (R85): a list of the principal's own
ids, or an EXISTS correlated on the row being read that an index answers. Never a subquery
over all of a firm's rows, which would cost as much for one row as for the whole firm.
"""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, true

from auth.principal import Principal
from models import (
    Agreement,
    AgreementTransfer,
    AuditEvent,
    ClientUser,
    Company,
    Firm,
    FirmMember,
    Invoice,
    LicenseSession,
    Membership,
    Order,
    Subscription,
    User,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from models.enums import FirmRole, Role

Filter = ColumnElement[bool]
SUBSCRIPTION_READERS = {Role.ADMINISTRATOR, Role.ACCOUNTANT}


def _ids(values: set[int]) -> list[int]:
    return sorted(values)


def visible_firms(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    return Firm.id.in_(_ids(p.staff_firm_ids() | p.grants.member_firm_ids()))


def visible_agreements(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    return or_(
        Agreement.firm_id.in_(_ids(p.staff_firm_ids())),
        Agreement.id.in_(_ids(p.grants.member_agreement_ids())),
    )


def visible_companies(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    return or_(
        Company.firm_id.in_(_ids(p.staff_firm_ids())),
        Company.id.in_(_ids(set(p.grants.companies))),
    )


def visible_memberships(p: Principal) -> Filter:
    """REPORTER sees its own membership only; every other role the company's members. A
    user's own memberships are those that grant access (a DEACTIVATED one grants nothing,
    and its company is no longer the user's to read)."""
    if p.is_platform_admin:
        return true()
    readable = {g.company_id for g in p.grants.companies.values() if g.role is not Role.REPORTER}
    clauses: list[Filter] = [
        Membership.firm_id.in_(_ids(p.staff_firm_ids())),
        Membership.company_id.in_(_ids(readable)),
    ]
    if p.user_id is not None:
        clauses.append(and_(Membership.user_id == p.user_id, Membership.company_id.in_(_ids(set(p.grants.companies)))))
    return or_(*clauses)


def visible_firm_members(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    return FirmMember.firm_id.in_(_ids(p.staff_firm_ids()))


def visible_client_users(p: Principal) -> Filter:
    """The "client users" row of section 3: FIRM_ADMIN only, reading included."""
    if p.is_platform_admin:
        return true()
    admin_of = {firm_id for firm_id in p.staff_firm_ids() if p.firm_role(firm_id) is FirmRole.FIRM_ADMIN}
    return ClientUser.firm_id.in_(_ids(admin_of))


def _firm_admin_of(p: Principal) -> list[int]:
    return _ids({firm_id for firm_id in p.staff_firm_ids() if p.firm_role(firm_id) is FirmRole.FIRM_ADMIN})


def visible_webhook_endpoints(p: Principal) -> Filter:
    """Webhooks (R71): the firm's admins only, reading included (the rows name every event kind)."""
    return true() if p.is_platform_admin else WebhookEndpoint.firm_id.in_(_firm_admin_of(p))


def visible_webhook_deliveries(p: Principal) -> Filter:
    return true() if p.is_platform_admin else WebhookDelivery.firm_id.in_(_firm_admin_of(p))


def visible_webhook_events(p: Principal) -> Filter:
    return true() if p.is_platform_admin else WebhookEvent.firm_id.in_(_firm_admin_of(p))


def visible_webhook_attempts(p: Principal) -> Filter:
    return true() if p.is_platform_admin else WebhookAttempt.firm_id.in_(_firm_admin_of(p))


def visible_users(p: Principal, among: Sequence[int] | None = None) -> Filter:
    """A user is visible to whoever may read one of its memberships or its staff record. Each
    EXISTS looks up the user's own rows (memberships, firm_members and client_users are indexed
    by user_id), not every membership of the caller's firm. `among`, the user ids being read,
    keeps that true when PostgreSQL hashes an EXISTS instead of probing it per row (it may, for
    a firm of a few thousand memberships): the hash is then built over those users' rows only."""
    if p.is_platform_admin:
        return true()

    def of_user(column: Any) -> list[Filter]:
        return [column == User.id] if among is None else [column == User.id, column.in_(list(among))]

    clauses: list[Filter] = [
        _owned(Membership, *of_user(Membership.user_id), visible_memberships(p)),
        _owned(FirmMember, *of_user(FirmMember.user_id), visible_firm_members(p)),
        _owned(ClientUser, *of_user(ClientUser.user_id), visible_client_users(p)),
    ]
    if p.user_id is not None:
        clauses.append(User.id == p.user_id)
    return or_(*clauses)


def _subscription_agreements(p: Principal) -> set[int]:
    return {g.agreement_id for g in p.grants.companies.values() if g.role in SUBSCRIPTION_READERS}


def visible_subscriptions(p: Principal) -> Filter:
    """Follows the "read subscription, orders, invoices, audit" row of section 3."""
    if p.is_platform_admin:
        return true()
    return or_(
        Subscription.firm_id.in_(_ids(p.staff_firm_ids())),
        Subscription.agreement_id.in_(_ids(_subscription_agreements(p))),
    )


def visible_seat_usage(p: Principal) -> Filter:
    """Who uses an agreement's seats, and through which companies (Agreement.chargeableAccesses
    and chargeBreakdown), as a filter over Company: whoever may read the agreement's
    subscription sees every company of the agreement there, other roles nothing."""
    if p.is_platform_admin:
        return true()
    return or_(
        Company.firm_id.in_(_ids(p.staff_firm_ids())),
        Company.agreement_id.in_(_ids(_subscription_agreements(p))),
    )


def visible_orders(p: Principal) -> Filter:
    """The subscription's readers; and a firm's staff its own orders, also those of an agreement
    that moved to another firm since (its history stays the firm's)."""
    if p.is_platform_admin:
        return true()
    return or_(Order.firm_id.in_(_ids(p.staff_firm_ids())), _of_visible_subscription(Order.subscription_id, p))


def _of_visible_subscription(subscription_id: Any, p: Principal) -> Filter:
    """The row's own subscription is visible: one primary-key lookup per row read."""
    return _owned(Subscription, Subscription.id == subscription_id, visible_subscriptions(p))


def _owned(table: Any, *where: Filter) -> Filter:
    """EXISTS over `table`, correlated on the row being read; `table` itself never correlates,
    so the filter means the same in a statement that also reads `table`."""
    return exists().where(*where).correlate_except(table)


def visible_invoices(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    return or_(
        Invoice.firm_id.in_(_ids(p.staff_firm_ids())),
        Invoice.agreement_id.in_(_ids(_subscription_agreements(p))),
    )


def visible_audit_events(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    readers = {g.company_id for g in p.grants.companies.values() if g.role in SUBSCRIPTION_READERS}
    return or_(
        AuditEvent.firm_id.in_(_ids(p.staff_firm_ids())),
        AuditEvent.company_id.in_(_ids(readers)),
        _of_visible_subscription(AuditEvent.subscription_id, p),
    )


def visible_sessions(p: Principal) -> Filter:
    if p.is_platform_admin:
        return true()
    if p.user_id is None:
        return LicenseSession.firm_id.in_(_ids(p.staff_firm_ids())) if p.staff_firm_ids() else false()
    # Own sessions in companies the user still has access to: their company must be readable.
    own = and_(LicenseSession.user_id == p.user_id, LicenseSession.company_id.in_(_ids(set(p.grants.companies))))
    return or_(LicenseSession.firm_id.in_(_ids(p.staff_firm_ids())), own)


def visible_transfers(p: Principal) -> Filter:
    """A transfer offer: the staff of the firm it leaves and of the firm it goes to."""
    if p.is_platform_admin:
        return true()
    staff = _ids(p.staff_firm_ids())
    return or_(AgreementTransfer.from_firm_id.in_(staff), AgreementTransfer.to_firm_id.in_(staff))


VISIBILITY = {
    Firm: visible_firms,
    Agreement: visible_agreements,
    Company: visible_companies,
    Membership: visible_memberships,
    FirmMember: visible_firm_members,
    ClientUser: visible_client_users,
    User: visible_users,
    Subscription: visible_subscriptions,
    Order: visible_orders,
    Invoice: visible_invoices,
    AuditEvent: visible_audit_events,
    LicenseSession: visible_sessions,
    AgreementTransfer: visible_transfers,
    WebhookEndpoint: visible_webhook_endpoints,
    WebhookDelivery: visible_webhook_deliveries,
    WebhookAttempt: visible_webhook_attempts,
    WebhookEvent: visible_webhook_events,
}
