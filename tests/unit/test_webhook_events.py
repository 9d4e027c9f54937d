"""Every audit action the code writes is decided for webhooks (R68): an event type, or no event by
choice (licensing.webhooks.NO_EVENT). A new action fails here until someone decides."""

import re
from pathlib import Path

import pytest

from licensing.webhooks import BY_ACTION, NO_EVENT, EventType, event_type_of

ROOT = Path(__file__).resolve().parents[2]
PREFIXES = ("agreement", "billing_details", "catalog", "client_user", "company", "feature", "firm", "invoice",
            "membership", "session", "subscription", "user", "webhook")
ACTION = re.compile(r'"((?:' + "|".join(PREFIXES) + r')\.[a-z_]+)"')


def written_actions() -> set[str]:
    found: set[str] = set()
    for folder in ("resolvers", "licensing", "auth", "web"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "webhooks.py" and path.parent.name == "licensing":
                continue  # the event types' own names
            found.update(ACTION.findall(path.read_text()))
    return found


def test_the_scan_finds_the_actions() -> None:
    actions = written_actions()
    assert {"membership.invited", "invoice.issued", "subscription.cancelled", "feature.enabled"} <= actions


@pytest.mark.parametrize("action", sorted(written_actions()))
def test_every_audit_action_is_decided(action: str) -> None:
    assert (event_type_of(action) is not None) != (action in NO_EVENT), action


def test_the_tables_name_only_written_actions() -> None:
    actions = written_actions()
    assert set(BY_ACTION) <= actions and NO_EVENT <= actions


def test_lifecycle_and_seat_events() -> None:
    assert event_type_of("subscription.cancelled") is EventType.SUBSCRIPTION_CANCELLED
    assert event_type_of("subscription.seats_added") is EventType.SUBSCRIPTION_CHANGED
    assert event_type_of("company.unarchived") is EventType.RESTORED
    assert event_type_of("invoice.credit_note_issued") is EventType.INVOICE_CORRECTED
    assert event_type_of("firm.updated") is None
