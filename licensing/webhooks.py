"""Webhooks for partner integrations (R67-R71): which events an audited change makes, and which
endpoint URLs may receive them. Plain functions: the resolvers write and deliver."""

import enum
import ipaddress
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

from licensing.errors import RuleViolation
from models.enums import UserErrorCode

MAX_URL_LENGTH = 2048
MAX_ENDPOINTS_PER_FIRM = 20


class EventType(enum.Enum):
    """What an endpoint may subscribe to (R68)."""

    SEAT_USAGE_CHANGED = "seat_usage.changed"
    SUBSCRIPTION_CHANGED = "subscription.changed"
    SUBSCRIPTION_CANCELLED = "subscription.cancelled"
    INVOICE_ISSUED = "invoice.issued"
    INVOICE_CORRECTED = "invoice.corrected"
    MEMBERSHIP_INVITED = "membership.invited"
    MEMBERSHIP_ACTIVATED = "membership.activated"
    MEMBERSHIP_DEACTIVATED = "membership.deactivated"
    ARCHIVED = "archived"
    RESTORED = "restored"
    AGREEMENT_TRANSFER = "agreement.transfer"
    USER_CORRECTED = "user.corrected"


# Audit actions (resolvers, licensing) -> the event they are. Anything unnamed makes no event.
BY_ACTION: dict[str, EventType] = {
    "invoice.issued": EventType.INVOICE_ISSUED,
    "invoice.credit_note_issued": EventType.INVOICE_CORRECTED,
    "membership.invited": EventType.MEMBERSHIP_INVITED,
    "membership.accountant_granted": EventType.MEMBERSHIP_INVITED,
    "membership.invitation_renewed": EventType.MEMBERSHIP_INVITED,
    "membership.invitation_accepted": EventType.MEMBERSHIP_ACTIVATED,
    "membership.reactivated": EventType.MEMBERSHIP_ACTIVATED,
    "membership.deactivated": EventType.MEMBERSHIP_DEACTIVATED,
    "membership.accountant_revoked": EventType.MEMBERSHIP_DEACTIVATED,
    "subscription.cancelled": EventType.SUBSCRIPTION_CANCELLED,
    "agreement.archived": EventType.ARCHIVED,
    "company.archived": EventType.ARCHIVED,
    "agreement.unarchived": EventType.RESTORED,
    "company.unarchived": EventType.RESTORED,
    "agreement.transfer_offered": EventType.AGREEMENT_TRANSFER,
    "agreement.transfer_accepted": EventType.AGREEMENT_TRANSFER,
    "agreement.transfer_declined": EventType.AGREEMENT_TRANSFER,
    "agreement.transfer_withdrawn": EventType.AGREEMENT_TRANSFER,
    "agreement.transferred": EventType.AGREEMENT_TRANSFER,
    "user.identity_corrected": EventType.USER_CORRECTED,
}

# Audit actions that are no event of their own, by choice (some still move seats: SEAT_USAGE_CHANGED
# follows what the writer says it affected, resolvers.webhook_events). A new
# audit action must be named in BY_ACTION or here: tests/unit/test_webhook_events.py looks.
NO_EVENT = frozenset({
    "agreement.created", "agreement.updated", "agreement.deleted", "agreement.billing_mode_changed",
    "billing_details.updated", "catalog.edition_created", "catalog.edition_priced", "catalog.edition_updated",
    "catalog.feature_created", "catalog.feature_priced", "catalog.feature_updated",
    "client_user.assigned", "client_user.company_added", "client_user.company_removed", "client_user.removed",
    "company.created", "company.updated", "company.moved",
    "firm.created", "firm.staff_added", "firm.staff_removed", "firm.updated",
    "membership.updated", "membership.welcome_email_resent", "session.started", "session.ended",
    "user.account_set_up", "user.email_change_requested", "user.email_changed", "user.external_subject_linked",
    "webhook.endpoint_created", "webhook.endpoint_deleted", "webhook.endpoint_updated",
    "webhook.redelivery_requested", "webhook.secret_rolled",
})

def event_type_of(action: str) -> EventType | None:
    """The event an audit action is, itself (seat usage comes from what a change affects)."""
    found = BY_ACTION.get(action)
    if found is not None:
        return found
    if action.startswith(("subscription.", "feature.")):
        return EventType.SUBSCRIPTION_CHANGED
    return None


def encode_types(types: Iterable[EventType]) -> str:
    return " ".join(sorted({t.name for t in types}))


def decode_types(stored: str) -> list[EventType]:
    return [EventType[name] for name in stored.split() if name in EventType.__members__]


def check_event_types(types: Sequence[EventType], field: Sequence[str]) -> list[EventType]:
    if not types:
        raise RuleViolation(UserErrorCode.INVALID_INPUT, "Name at least one event type.", field)
    return sorted(set(types), key=lambda t: t.name)


# ------------------------------------------------------------------------------ URLs (R67)

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}


def _refuse(message: str, field: Sequence[str]) -> RuleViolation:
    return RuleViolation(UserErrorCode.INVALID_INPUT, message, field)


def check_url(url: str, field: Sequence[str], *, allow_http_loopback: bool) -> tuple[str, str]:
    """The URL, trimmed, and its host, or INVALID_INPUT. HTTPS only; plain `http` only to a
    loopback host and only when the development setting allows it. The host's addresses are
    checked apart (`check_addresses`), since a name resolves at registration and again later."""
    url = url.strip()
    if not url or len(url) > MAX_URL_LENGTH:
        raise _refuse(f"The URL must be 1 to {MAX_URL_LENGTH} characters.", field)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise _refuse("The URL must not contain spaces or control characters.", field)
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is no number or out of range
    except ValueError:
        raise _refuse("The URL is not valid.", field) from None
    if port == 0:
        raise _refuse("The URL's port must not be 0.", field)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise _refuse("The URL needs a host.", field)
    if parts.username is not None or parts.password is not None:
        raise _refuse("The URL must not carry a user name or password.", field)
    if parts.fragment:
        raise _refuse("The URL must not have a fragment.", field)
    if scheme == "http":
        if not (allow_http_loopback and is_loopback_host(host)):
            raise _refuse("The URL must use https (http only to a loopback host, in development).", field)
    elif scheme != "https":
        raise _refuse("The URL must use https.", field)
    return url, host


def is_loopback_host(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def address_refusal(address: str, *, allow_loopback: bool) -> str | None:
    """Why an endpoint may not be reached at this address (server-side request forgery), or None:
    only public unicast addresses; loopback too in development."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return None if allow_loopback else "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or ip.is_reserved or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "a private or reserved address"
    return None


def check_addresses(addresses: Sequence[str], field: Sequence[str], *, allow_loopback: bool) -> None:
    if not addresses:
        raise _refuse("The URL's host does not resolve.", field)
    for address in addresses:
        refusal = address_refusal(address, allow_loopback=allow_loopback)
        if refusal is not None:
            raise _refuse(f"The URL's host resolves to {refusal}, which webhooks may not reach.", field)
