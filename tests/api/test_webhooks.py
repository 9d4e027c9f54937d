"""Webhooks for partner integrations (R67-R71), through HTTP on PostgreSQL, delivered by the real
worker to a real HTTP receiver on loopback. The worker's clock is the test's: each pass is given
its `now`, and the app's runtime has a clock the test moves (resolvers.runtime.Runtime.clock)."""

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from app import create_app
from models import WebhookEndpoint, WebhookEvent
from models import ids as global_ids
from resolvers.outbox_loop import BACKOFF_BASE
from resolvers.runtime import Runtime
from resolvers.webhook_delivery import DEAD_AFTER, WebhookReport, deliver_due
from tests.api.client import Api, Firm, unique
from tests.api.test_readme_examples import README, indented_block
from tests.api.webhook_receiver import Inbox, Receiver, verify

TIMEOUT = 0.5  # seconds a delivery may take here (BUREAU_WEBHOOK_TIMEOUT)
ENDPOINT = "webhookEndpoint { id url eventTypes enabled createdAt previousSecretExpiresAt }"
DELIVERY = ("id status attemptCount eventId eventType sequence subjectId lastStatusCode lastError createdAt "
            "nextAttemptAt deliveredAt deadAt redeliveryOfId attempts { attemptedAt statusCode error durationMs }")
CREATE = "mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { secret } }"
CREATE_FULL = ("mutation($i: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $i) { "
               "webhookEndpoint { id } secret userErrors { code field } } }")
HISTORY = f"""query($id: ID!) {{ node(id: $id) {{ ... on WebhookEndpoint {{
    deliveries(first: 100) {{ totalCount edges {{ node {{ {DELIVERY} }} }} }} }} }} }}"""


def readme_verify() -> Any:
    """The README's `verify`, as pasted."""
    namespace: dict[str, Any] = {}
    exec(indented_block(README, "import hashlib, hmac, time"), namespace)  # noqa: S102 - our own README
    return namespace["verify"]


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@dataclasses.dataclass
class Hooks:
    api: Api  # the app with BUREAU_WEBHOOKS_ALLOW_HTTP_LOOPBACK=on and the test's clock
    clock: Clock

    async def deliver(self, at: datetime | None = None) -> WebhookReport:
        """One pass of the worker, as `bureau webhooks deliver --once` makes it."""
        return await deliver_due(self.api.runtime.database, at or self.clock.now, request_seconds=TIMEOUT,
                                 allow_loopback=True)


@pytest.fixture(scope="module")
async def hooks(api: Api, runtime: Runtime) -> AsyncIterator[Hooks]:
    clock = Clock()
    settings = dataclasses.replace(runtime.settings, webhooks_allow_http_loopback=True)
    development = Runtime(runtime.database, settings, runtime.keys, runtime.tokens, clock=clock)
    transport = httpx.ASGITransport(app=create_app(runtime=development))
    async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
        yield Hooks(Api(http, development, vendor_client_id=api.vendor_client_id,
                        app_client_id=api.app_client_id), clock)


@pytest.fixture(autouse=True)
async def quiet_endpoints(runtime: Runtime) -> AsyncIterator[None]:
    """Each test's endpoints stop receiving after it, so later passes deliver only the next test's."""
    yield
    async with runtime.database.sessions.begin() as session:
        await session.execute(update(WebhookEndpoint).values(enabled=False))


async def register(api: Api, firm: Firm, url: str, types: list[str], *,
                   expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("createWebhookEndpoint", {"firmId": firm.id, "url": url, "eventTypes": types},
                            f"{ENDPOINT} secret", token=firm.admin, expect_errors=expect_errors)


async def history(api: Api, token: str, endpoint_id: str) -> list[dict[str, Any]]:
    """Deliveries, oldest first (the connection answers newest first)."""
    node = (await api.ok(HISTORY, {"id": endpoint_id}, token=token))["node"]
    return [edge["node"] for edge in reversed(node["deliveries"]["edges"])]


async def world(api: Api, *, named: int = 5) -> tuple[Firm, str, str, str]:
    firm = await api.firm()
    agreement, company = await api.agreement(firm)
    assert company is not None
    subscription = await api.subscription(firm, agreement, named=named)
    return firm, agreement, company, subscription


async def invite(api: Api, firm: Firm, company: str, **extra: Any) -> dict[str, Any]:
    return await api.invite(firm.admin, company, email=f"{unique('hooked')}@client.example",
                            sendWelcomeEmail=False, **extra)


async def events_of(api: Api, firm: Firm) -> int:
    pk = global_ids.decode_as(firm.id, "Firm")
    async with api.runtime.database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(WebhookEvent)
                                        .where(WebhookEvent.firm_id == pk)) or 0)


# ------------------------------------------------------------------ registration (R67, R69)


async def test_registration_answers_the_secret_once_and_stores_it_encrypted(hooks: Hooks) -> None:
    api = hooks.api
    firm, *_ = await world(api)
    created = await register(api, firm, "http://127.0.0.1:9/hooks", ["MEMBERSHIP_INVITED", "INVOICE_ISSUED"])
    secret = created["secret"]
    endpoint = created["webhookEndpoint"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert endpoint["eventTypes"] == ["INVOICE_ISSUED", "MEMBERSHIP_INVITED"] and endpoint["enabled"] is True

    # Never answered again: not by the endpoint, the firm's list, nor the audit log.
    read = await api.post("""query($firm: ID!, $id: ID!) {
        node(id: $id) { ... on WebhookEndpoint { id url eventTypes } }
        firm(id: $firm) { webhookEndpoints { totalCount edges { node { id url } } }
                          auditLog(first: 50) { edges { node { action summary before after } } } } }""",
                          {"firm": firm.id, "id": endpoint["id"]}, firm.admin)
    body = read.json()
    assert "errors" not in body and body["data"]["node"]["id"] == endpoint["id"]
    assert body["data"]["firm"]["webhookEndpoints"]["totalCount"] == 1
    assert "webhook.endpoint_created" in [e["node"]["action"] for e in body["data"]["firm"]["auditLog"]["edges"]]
    assert secret not in read.text and secret[6:] not in read.text
    async with api.runtime.database.sessions() as session:
        row = await session.get(WebhookEndpoint, global_ids.decode_as(endpoint["id"], "WebhookEndpoint"))
        assert row is not None and secret not in row.secret_encrypted and secret[6:] not in row.secret_encrypted


REFUSED_URLS = [
    "http://example.com/hooks",  # plain http to anything but loopback
    "ftp://127.0.0.1/hooks",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "",
    "   ",
    "https://",
    "https:///path-only",
    "https://user:password@127.0.0.1/hooks",
    "https://10.1.2.3/hooks",  # private
    "https://192.168.1.1/hooks",
    "https://172.16.0.1/hooks",
    "https://169.254.169.254/latest/meta-data",  # link-local: cloud metadata
    "https://[fe80::1]/hooks",
    "https://[fd00::1]/hooks",
    "https://[::ffff:10.0.0.1]/hooks",
    "https://0.0.0.0/hooks",
    "https://224.0.0.1/hooks",
    "https://127.0.0.1:99999/hooks",  # no such port
    "https://127.0.0.1:0/hooks",
    "https://[fe80::1%25eth0]/hooks",  # a link-local address with its zone
    "https://127.0.0.1/hooks#fragment",
    "https://127.0.0.1/ho\nks",
    "https://127.0.0.1/\x00hooks",
    "https://127.0.0.1/ho oks",
    "https://127.0.0.1/" + "a" * 2100,
]


@pytest.mark.parametrize("url", REFUSED_URLS)
async def test_urls_that_are_not_https_to_a_public_host_are_refused(hooks: Hooks, url: str) -> None:
    firm = await hooks.api.firm()
    body = await hooks.api.gql(CREATE_FULL, {"i": {"firmId": firm.id, "url": url, "eventTypes": ["ARCHIVED"]}},
                               token=firm.admin)
    if body.get("errors"):  # control characters stop before execution (R58)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["INVALID_INPUT"]
        return
    refused = body["data"]["createWebhookEndpoint"]
    assert refused["webhookEndpoint"] is None and refused["secret"] is None
    assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID_INPUT", ["input", "url"])]


async def test_loopback_is_refused_outside_development(api: Api) -> None:
    """The session's app runs with BUREAU_WEBHOOKS_ALLOW_HTTP_LOOPBACK off, as production does."""
    firm = await api.firm()
    for url in ("http://127.0.0.1:8080/hooks", "https://127.0.0.1/hooks", "https://localhost/hooks",
                "https://[::1]/hooks"):
        refused = await register(api, firm, url, ["MEMBERSHIP_INVITED"], expect_errors=True)
        assert [e["code"] for e in refused["userErrors"]] == ["INVALID_INPUT"], url


async def test_event_types_and_overlaps_are_checked(hooks: Hooks) -> None:
    api = hooks.api
    firm = await api.firm()
    none = await register(api, firm, "http://127.0.0.1:9/", [], expect_errors=True)
    assert [(e["code"], e["field"]) for e in none["userErrors"]] == [("INVALID_INPUT", ["input", "eventTypes"])]
    unknown = await api.post(CREATE,
                             {"i": {"firmId": firm.id, "url": "http://127.0.0.1:9/", "eventTypes": ["EVERYTHING"]}},
                             firm.admin)
    assert unknown.status_code in (200, 400) and unknown.json()["errors"]
    endpoint = (await register(api, firm, "http://127.0.0.1:9/", ["ARCHIVED"]))["webhookEndpoint"]["id"]
    for overlap in (-1, 7 * 86400 + 1):
        rolled = await api.mutate("rollWebhookSecret", {"webhookEndpointId": endpoint, "overlapSeconds": overlap},
                                  "secret", token=firm.admin, expect_errors=True)
        assert rolled["secret"] is None and [e["code"] for e in rolled["userErrors"]] == ["INVALID_INPUT"]


async def test_only_the_firms_admins_manage_its_endpoints(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    other = await api.firm()
    endpoint = (await register(api, firm, "http://127.0.0.1:9/", ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
    await invite(api, firm, company)
    async with api.runtime.database.sessions() as session:
        from models import WebhookDelivery

        delivery = global_ids.encode("WebhookDelivery", int(await session.scalar(
            select(func.max(WebhookDelivery.id)).where(
                WebhookDelivery.endpoint_id == global_ids.decode_as(endpoint, "WebhookEndpoint"))) or 0))

    # Another firm's admin: the endpoint and its deliveries do not exist for it.
    for name, input in (("updateWebhookEndpoint", {"webhookEndpointId": endpoint, "enabled": False}),
                        ("rollWebhookSecret", {"webhookEndpointId": endpoint}),
                        ("deleteWebhookEndpoint", {"webhookEndpointId": endpoint}),
                        ("redeliverWebhook", {"deliveryId": delivery})):
        selection = {"rollWebhookSecret": "secret", "deleteWebhookEndpoint": "deletedWebhookEndpointId",
                     "redeliverWebhook": "delivery { id }"}.get(name, "webhookEndpoint { id }")
        payload = await api.mutate(name, input, selection, token=other.admin, expect_errors=True)
        assert [e["code"] for e in payload["userErrors"]] == ["NOT_FOUND"], name
    foreign = await register(api, Firm(firm.id, other.admin_email, other.admin), "http://127.0.0.1:9/",
                             ["MEMBERSHIP_INVITED"], expect_errors=True)
    assert [e["code"] for e in foreign["userErrors"]] == ["NOT_FOUND"]
    seen = await api.ok("query($id: ID!) { node(id: $id) { id } }", {"id": endpoint}, token=other.admin)
    assert seen["node"] is None

    # The firm's advisor sees the firm but not its endpoints, and may not add one.
    advisor_email = f"{unique('advisor')}@firm.example"
    await api.mutate("addFirmStaff", {"firmId": firm.id, "name": "Advisor", "email": advisor_email,
                                      "role": "FIRM_ADVISOR"}, "firmMember { id }", token=firm.admin)
    advisor = await api.token(advisor_email)
    listed = await api.ok("query($id: ID!) { firm(id: $id) { name webhookEndpoints { totalCount } } }",
                          {"id": firm.id}, token=advisor)
    assert listed["firm"]["name"] and listed["firm"]["webhookEndpoints"]["totalCount"] == 0
    denied = await api.post(CREATE,
                            {"i": {"firmId": firm.id, "url": "http://127.0.0.1:9/", "eventTypes": ["ARCHIVED"]}},
                            advisor)
    assert denied.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    # Without firms:write the mutation is refused before it runs.
    reader = await api.token(firm.admin_email, scopes=["firms:read"])
    scoped = await api.post("mutation($i: RollWebhookSecretInput!) { rollWebhookSecret(input: $i) { secret } }",
                            {"i": {"webhookEndpointId": endpoint}}, reader)
    assert scoped.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"


# ------------------------------------------------------------------ events and delivery (R68, R69, R70)


async def test_an_invitation_is_delivered_signed_with_its_seat_usage(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, subscription = await world(api)
    with Receiver().start() as receiver:
        created = await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED", "SEAT_USAGE_CHANGED"])
        endpoint, secret = created["webhookEndpoint"]["id"], created["secret"]
        invited = await invite(api, firm, company)
        membership = invited["membership"]["id"]

        report = await hooks.deliver()
        assert report.delivered >= 2
        bodies = {r.event["type"]: r for r in receiver.received}
        assert set(bodies) == {"membership.invited", "seat_usage.changed"}
        pasted = readme_verify()
        for received in receiver.received:
            assert verify(secret, received.headers["bureau-signature"], received.body)
            assert pasted(secret, received.headers["bureau-signature"], received.body)
            assert not pasted(secret, received.headers["bureau-signature"], received.body + b" ")
            assert not verify("whsec_wrong", received.headers["bureau-signature"], received.body)
            assert received.headers["bureau-event-id"] == received.event["id"]
            assert received.headers["content-type"] == "application/json"
        invited_event = bodies["membership.invited"].event
        assert invited_event["subject"] == membership and invited_event["firm"] == firm.id
        assert invited_event["data"]["action"] == "membership.invited" and invited_event["sequence"] == 1
        seat_event = bodies["seat_usage.changed"].event
        assert seat_event["subject"] == subscription and seat_event["data"]["subscription"] == subscription
        # A tampered body no longer verifies.
        tampered = bodies["membership.invited"].body.replace(b"membership.invited", b"membership.deactivated")
        assert not verify(secret, bodies["membership.invited"].headers["bureau-signature"], tampered)

    [first, second] = await history(api, firm.admin, endpoint)
    for delivery in (first, second):
        assert delivery["status"] == "DELIVERED" and delivery["attemptCount"] == 1
        assert delivery["lastStatusCode"] == 200 and delivery["lastError"] is None
        assert [a["statusCode"] for a in delivery["attempts"]] == [200]
    assert {first["eventId"], second["eventId"]} == {r.event["id"] for r in receiver.received}
    # Delivered once: a later pass sends nothing again.
    count = len(receiver.received)
    await hooks.deliver(hooks.clock.now + timedelta(hours=2))
    assert len(receiver.received) == count


async def test_only_the_event_types_an_endpoint_asked_for_reach_it(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        await register(api, firm, receiver.url, ["ARCHIVED"])
        await invite(api, firm, company)
        await hooks.deliver()
        assert receiver.received == []
        await api.mutate("archiveCompany", {"companyId": company}, "company { id }", token=firm.admin)
        await hooks.deliver()
        assert [r.event["type"] for r in receiver.received] == ["archived"]
        assert receiver.received[0].event["subject"] == company


async def test_a_receiver_that_is_down_is_retried_with_backoff_until_it_is_up(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    receiver = Receiver()  # not listening yet
    endpoint = (await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
    await invite(api, firm, company)
    start = hooks.clock.now

    await hooks.deliver(start)
    [pending] = await history(api, firm.admin, endpoint)
    assert pending["status"] == "PENDING" and pending["attemptCount"] == 1 and pending["lastStatusCode"] is None
    assert "Connect" in pending["lastError"]
    due = datetime.fromisoformat(pending["nextAttemptAt"])
    assert start + BACKOFF_BASE <= due <= start + BACKOFF_BASE * 1.1

    with receiver.start():
        await hooks.deliver(start + timedelta(seconds=10))  # not due yet: not tried, though the receiver is up
        assert receiver.received == []
        [waiting] = await history(api, firm.admin, endpoint)
        assert waiting["attemptCount"] == 1

        await hooks.deliver(due)
        [delivered] = await history(api, firm.admin, endpoint)
        assert delivered["status"] == "DELIVERED" and delivered["attemptCount"] == 2
        assert [a["statusCode"] for a in delivered["attempts"]] == [None, 200]
        assert delivered["attempts"][0]["error"] and delivered["attempts"][1]["error"] is None
        assert len(receiver.received) == 1


async def test_a_slow_receiver_times_out_and_that_counts_as_a_failure(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        receiver.delay = TIMEOUT * 4
        endpoint = (await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
        await invite(api, firm, company)
        report = await hooks.deliver()
        assert report.failed >= 1
        [slow] = await history(api, firm.admin, endpoint)
        assert slow["status"] == "PENDING" and slow["lastError"] == f"timed out after {TIMEOUT:g}s"
        assert slow["attempts"][0]["statusCode"] is None

        receiver.delay = 0
        await hooks.deliver(datetime.fromisoformat(slow["nextAttemptAt"]))
        [done] = await history(api, firm.admin, endpoint)
        assert done["status"] == "DELIVERED" and done["attemptCount"] == 2
        # The receiver saw the event twice (it read the first before it stalled): the same id.
        assert len({r.event["id"] for r in receiver.received}) == 1 and len(receiver.received) == 2


async def test_a_delivery_that_keeps_failing_dies_after_about_a_day_and_can_be_redelivered(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        receiver.status = 500
        endpoint = (await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
        await invite(api, firm, company)
        at = hooks.clock.now
        for _ in range(100):
            await hooks.deliver(at)
            [delivery] = await history(api, firm.admin, endpoint)
            if delivery["status"] != "PENDING":
                break
            at = datetime.fromisoformat(delivery["nextAttemptAt"])
        assert delivery["status"] == "DEAD" and delivery["nextAttemptAt"] is None
        lived = datetime.fromisoformat(delivery["deadAt"]) - datetime.fromisoformat(delivery["createdAt"])
        assert DEAD_AFTER - timedelta(hours=2) <= lived <= DEAD_AFTER
        assert 20 <= delivery["attemptCount"] <= 40 and delivery["lastStatusCode"] == 500
        assert delivery["lastError"] == "HTTP 500" and len(delivery["attempts"]) == delivery["attemptCount"]
        assert len(receiver.received) == delivery["attemptCount"]
        # Exponential: the gaps double from 30 seconds up to the hour.
        times = [datetime.fromisoformat(a["attemptedAt"]) for a in delivery["attempts"]]
        gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
        assert gaps[0] >= BACKOFF_BASE and gaps[1] >= 2 * BACKOFF_BASE and gaps[3] >= 8 * BACKOFF_BASE
        assert max(gaps) <= timedelta(hours=1.1)
        # Dead: no pass tries it again.
        await hooks.deliver(at + timedelta(days=2))
        assert len(receiver.received) == delivery["attemptCount"]

        # Redelivery: a new delivery of the same event, with its own retries.
        receiver.status = 204
        again = await api.mutate("redeliverWebhook", {"deliveryId": delivery["id"]}, f"delivery {{ {DELIVERY} }}",
                                 token=firm.admin)
        assert again["delivery"]["status"] == "PENDING" and again["delivery"]["redeliveryOfId"] == delivery["id"]
        assert again["delivery"]["eventId"] == delivery["eventId"]
        assert again["delivery"]["sequence"] == delivery["sequence"]
        await hooks.deliver(hooks.clock.now)
        deliveries = await history(api, firm.admin, endpoint)
        assert [d["status"] for d in deliveries] == ["DEAD", "DELIVERED"]
        assert receiver.received[-1].event["id"] == delivery["eventId"]
        gauge = REGISTRY.get_sample_value("bureau_webhook_deliveries_dead")
        assert gauge is not None and gauge >= 1


async def test_event_ids_are_unique_and_sequences_let_receivers_drop_duplicates_and_late_ones(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        endpoint = (await register(api, firm, receiver.url,
                                   ["MEMBERSHIP_INVITED", "MEMBERSHIP_DEACTIVATED", "MEMBERSHIP_ACTIVATED"]))
        endpoint_id = endpoint["webhookEndpoint"]["id"]
        membership = (await invite(api, firm, company))["membership"]["id"]
        for name in ("deactivateMembership", "reactivateMembership", "deactivateMembership"):
            await api.mutate(name, {"membershipId": membership}, "membership { id }", token=firm.admin)
        await hooks.deliver()
        events = [r.event for r in receiver.received]
        assert [e["type"] for e in events] == ["membership.invited", "membership.deactivated",
                                               "membership.activated", "membership.deactivated"]
        assert [e["sequence"] for e in events] == [1, 2, 3, 4] and {e["subject"] for e in events} == {membership}
        assert len({e["id"] for e in events}) == 4

        # Sent again (a redelivery), and one arriving late: a receiver keeping ids and sequences drops both.
        deliveries = await history(api, firm.admin, endpoint_id)
        await api.mutate("redeliverWebhook", {"deliveryId": deliveries[1]["id"]}, "delivery { id }", token=firm.admin)
        await hooks.deliver()
        inbox = Inbox()
        accepted = [inbox.take(r.event) for r in receiver.received]
        assert accepted == [True, True, True, True, False]
        assert inbox.take({**events[2], "id": "evt_late"}) is False  # an older sequence, whatever its id


async def test_parallel_changes_to_one_subject_get_distinct_sequences_in_commit_order(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, _, subscription = await world(api, named=5)
    with Receiver().start() as receiver:
        await register(api, firm, receiver.url, ["SUBSCRIPTION_CHANGED"])
        outcomes = await asyncio.gather(*(api.mutate(
            "changeSeats", {"subscriptionId": subscription, "licenseType": "NAMED", "seats": 6 + i},
            "subscription { id }", token=firm.admin, expect_errors=True) for i in range(5)))
        assert all(o["userErrors"] == [] for o in outcomes)
        await hooks.deliver()
        events = sorted((r.event for r in receiver.received), key=lambda e: e["sequence"])
        assert [e["sequence"] for e in events] == [1, 2, 3, 4, 5]
        # In commit order: each change's "after" is what the next one's "before" saw.
        seats = [e["data"]["after"] for e in events]
        assert len(seats) == 5 and all(e["subject"] == subscription for e in events)


async def test_a_secret_roll_signs_with_both_secrets_during_the_overlap(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        created = await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"])
        endpoint, old = created["webhookEndpoint"]["id"], created["secret"]
        rolled = await api.mutate("rollWebhookSecret", {"webhookEndpointId": endpoint, "overlapSeconds": 3600},
                                  f"{ENDPOINT} secret", token=firm.admin)
        new = rolled["secret"]
        assert new.startswith("whsec_") and new != old
        overlap_ends = datetime.fromisoformat(rolled["webhookEndpoint"]["previousSecretExpiresAt"])
        assert overlap_ends == hooks.clock.now + timedelta(hours=1)

        await invite(api, firm, company)
        await hooks.deliver()
        during = receiver.received[-1]
        header = during.headers["bureau-signature"]
        assert header.count("v1=") == 2
        assert verify(new, header, during.body) and verify(old, header, during.body)

        hooks.clock.now = overlap_ends + timedelta(seconds=1)
        try:
            await invite(api, firm, company)
            await hooks.deliver()
        finally:
            hooks.clock.now = datetime.now(UTC).replace(microsecond=0)
        after = receiver.received[-1]
        assert after.headers["bureau-signature"].count("v1=") == 1
        assert verify(new, after.headers["bureau-signature"], after.body)
        assert not verify(old, after.headers["bureau-signature"], after.body)


async def test_nothing_is_written_when_the_mutation_fails_or_is_a_dry_run(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, subscription = await world(api, named=1)
    await register(api, firm, "http://127.0.0.1:9/", ["MEMBERSHIP_INVITED", "SEAT_USAGE_CHANGED",
                                                       "SUBSCRIPTION_CHANGED"])
    await invite(api, firm, company)
    written = await events_of(api, firm)
    assert written == 2  # membership.invited and seat_usage.changed

    full = await api.invite(firm.admin, company, email=f"{unique('over')}@client.example", sendWelcomeEmail=False,
                            expect_errors=True)
    assert [e["code"] for e in full["userErrors"]] == ["SEAT_LIMIT_REACHED"]
    dry = await api.mutate("changeSeats", {"subscriptionId": subscription, "licenseType": "NAMED", "seats": 3,
                                           "dryRun": True}, "preview { amountDueNow { amount } }", token=firm.admin)
    assert dry["userErrors"] == []
    assert await events_of(api, firm) == written


async def test_a_disabled_endpoint_gets_nothing_new_and_a_deleted_one_nothing_at_all(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        endpoint = (await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
        await api.mutate("updateWebhookEndpoint", {"webhookEndpointId": endpoint, "enabled": False},
                         "webhookEndpoint { enabled }", token=firm.admin)
        await invite(api, firm, company)
        await hooks.deliver()
        assert receiver.received == [] and await history(api, firm.admin, endpoint) == []
        deleted = await api.mutate("deleteWebhookEndpoint", {"webhookEndpointId": endpoint},
                                   "deletedWebhookEndpointId", token=firm.admin)
        assert deleted["deletedWebhookEndpointId"] == endpoint
        assert (await api.ok("query($id: ID!) { node(id: $id) { id } }", {"id": endpoint},
                             token=firm.admin))["node"] is None


async def test_bureau_webhooks_deliver_once_sends_what_is_due(hooks: Hooks, database_url: str) -> None:
    """The command line end to end, on the test database: one pass, a JSON summary on the last line."""
    import json
    import os
    import sys

    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        created = await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"])
        await invite(api, firm, company)
        env = {**os.environ, "DATABASE_URL": database_url, "BUREAU_WEBHOOKS_ALLOW_HTTP_LOOPBACK": "on"}
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "webhooks", "deliver", "--once",
                                                       env=env, stdout=asyncio.subprocess.PIPE,
                                                       stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["delivered"] >= 1 and set(summary) == {"delivered", "failed", "dead"}
        [received] = receiver.received
        assert verify(created["secret"], received.headers["bureau-signature"], received.body)
        assert received.event["type"] == "membership.invited"


async def test_webhooks_on_sqlite(tmp_path: Any) -> None:
    """The embedded default: the same events, sequences and signed deliveries on an SQLite file."""
    from auth.clients import ALL_SCOPES, register_client
    from models.db import connect
    from models.migrate import migrate
    from settings import Settings

    url = f"sqlite+aiosqlite:///{tmp_path / 'hooks.db'}"
    await migrate(url)
    database = connect(url)
    try:
        async with database.sessions.begin() as session:
            client = await register_client(session, name="vendor", scopes=list(ALL_SCOPES))
        runtime = Runtime.create(database, dataclasses.replace(Settings(), webhooks_allow_http_loopback=True))
        transport = httpx.ASGITransport(app=create_app(runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://bureau.test") as http:
            api = Api(http, runtime, vendor_client_id=client.client_id, app_client_id=client.client_id)
            firm, _, company, subscription = await world(api)
            with Receiver().start() as receiver:
                created = await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED", "SEAT_USAGE_CHANGED"])
                membership = (await invite(api, firm, company))["membership"]["id"]
                await api.mutate("deactivateMembership", {"membershipId": membership}, "membership { id }",
                                 token=firm.admin)
                report = await deliver_due(database, datetime.now(UTC), request_seconds=TIMEOUT, allow_loopback=True)
                assert report == WebhookReport(delivered=3)
                events = [(r.event["type"], r.event["subject"], r.event["sequence"]) for r in receiver.received]
                assert sorted(events) == [("membership.invited", membership, 1),
                                          ("seat_usage.changed", subscription, 1),
                                          ("seat_usage.changed", subscription, 2)]
                assert all(verify(created["secret"], r.headers["bureau-signature"], r.body) for r in receiver.received)
    finally:
        await database.dispose()


async def test_bureau_serve_runs_the_webhook_worker(hooks: Hooks, database_url: str, tmp_path: Any) -> None:
    """`bureau serve` delivers beside serving (R70), as it sends mail when SMTP_URL is set."""
    import os
    import signal
    import sys

    from tests.api.mail import free_port
    from tests.api.test_slow_clients import until_healthy

    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        created = await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"])
        await invite(api, firm, company)
        port, log = free_port(), tmp_path / "serve.log"
        env = {**os.environ, "DATABASE_URL": database_url, "BUREAU_WEBHOOKS_ALLOW_HTTP_LOOPBACK": "on"}
        with log.open("wb") as sink:
            process = await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", "serve", "--port", str(port),
                                                           "--workers", "1", env=env, stdout=sink, stderr=sink)
        try:
            await until_healthy(port, log)
            for _ in range(240):  # the worker's first pass runs at start-up; wait up to a minute for it
                if receiver.received:
                    break
                await asyncio.sleep(0.25)
            [received] = receiver.received
            assert verify(created["secret"], received.headers["bureau-signature"], received.body)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)


async def test_writing_events_leaves_other_firms_cached_answers_alone(hooks: Hooks) -> None:
    """The sequence counters have no firm: they must not bump the global data version (R82)."""
    from models.data_versions import GLOBAL, current_versions

    api = hooks.api
    firm, _, company, _ = await world(api)
    await register(api, firm, "http://127.0.0.1:9/", ["MEMBERSHIP_INVITED", "SEAT_USAGE_CHANGED"])
    async with api.runtime.database.sessions() as session:
        before = await current_versions(session, [GLOBAL])
    await invite(api, firm, company)
    assert await events_of(api, firm) == 2
    async with api.runtime.database.sessions() as session:
        assert await current_versions(session, [GLOBAL]) == before


async def test_redirects_are_not_followed_and_count_as_failures(hooks: Hooks) -> None:
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        receiver.status = 302
        endpoint = (await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
        await invite(api, firm, company)
        await hooks.deliver()
        [delivery] = await history(api, firm.admin, endpoint)
        assert delivery["status"] == "PENDING" and delivery["lastStatusCode"] == 302
        assert delivery["lastError"] == "HTTP 302" and len(receiver.received) == 1


async def test_the_address_is_checked_again_before_each_delivery(hooks: Hooks) -> None:
    """A host may point elsewhere after registration: a delivery to an address that is not allowed
    at delivery time is not sent, and is a failed attempt."""
    api = hooks.api
    firm, _, company, _ = await world(api)
    with Receiver().start() as receiver:
        endpoint = (await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"]))["webhookEndpoint"]["id"]
        await invite(api, firm, company)
        # The same worker as in production, where loopback is not allowed.
        await deliver_due(api.runtime.database, hooks.clock.now, request_seconds=TIMEOUT, allow_loopback=False)
        assert receiver.received == []
        [delivery] = await history(api, firm.admin, endpoint)
        assert delivery["status"] == "PENDING" and delivery["lastStatusCode"] is None
        assert delivery["lastError"] == "not sent: the host resolves to a loopback address"


async def test_the_period_change_announces_the_invoices_it_issues(hooks: Hooks) -> None:
    """Writers outside mutations are seen too: `bureau rollover` issues invoices in its own transactions."""
    from datetime import date

    from resolvers.rollover import rollover

    api = hooks.api
    firm = await api.firm()
    agreement, _ = await api.agreement(firm)
    # A month no other test touches (the app's clock set back), so that this rollover moves this firm only.
    hooks.clock.now = datetime(2023, 3, 10, 12, tzinfo=UTC)
    try:
        subscription = await api.mutate("createSubscription", {
            "ownerId": agreement, "editionCode": "STANDARD", "billingInterval": "MONTHLY", "startsOn": "2023-03-01",
            "seats": [{"licenseType": "NAMED", "count": 2}]}, "subscription { id }", token=firm.admin)
    finally:
        hooks.clock.now = datetime.now(UTC).replace(microsecond=0)
    with Receiver().start() as receiver:
        created = await register(api, firm, receiver.url, ["INVOICE_ISSUED", "SUBSCRIPTION_CHANGED"])
        report = await rollover(api.runtime, date(2023, 4, 1))
        assert report.invoices_issued >= 1 and report.periods_started >= 1
        await hooks.deliver()
        types = sorted(r.event["type"] for r in receiver.received)
        assert types == ["invoice.issued", "subscription.changed"]
        issued = next(r.event for r in receiver.received if r.event["type"] == "invoice.issued")
        assert global_ids.decode(issued["subject"])[0] == "Invoice" and issued["firm"] == firm.id
        period = next(r.event for r in receiver.received if r.event["type"] == "subscription.changed")
        assert period["subject"] == subscription["subscription"]["id"]
        assert period["data"]["action"] == "subscription.period_started"
        assert all(verify(created["secret"], r.headers["bureau-signature"], r.body) for r in receiver.received)


async def test_a_move_changes_seat_usage_of_both_agreements_once_each(hooks: Hooks) -> None:
    api = hooks.api
    firm, source, company, source_subscription = await world(api)
    target, _ = await api.agreement(firm, company=False)
    target_subscription = await api.subscription(firm, target, named=5)
    await invite(api, firm, company)
    with Receiver().start() as receiver:
        await register(api, firm, receiver.url, ["SEAT_USAGE_CHANGED"])
        await api.mutate("moveCompany", {"companyId": company, "toAgreementId": target}, "company { id }",
                         token=firm.admin)
        await hooks.deliver()
        subjects = sorted(r.event["subject"] for r in receiver.received)
        assert subjects == sorted([source_subscription, target_subscription])
        assert {r.event["data"]["action"] for r in receiver.received} == {"company.moved"}


async def test_removing_a_client_user_changes_the_firms_licence_only(hooks: Hooks) -> None:
    """A client user's licence counts on the firm's master subscription; its CLIENT_USER memberships
    take no seat of the agreement's (what the writer says it affected: R72)."""
    api = hooks.api
    firm = await api.firm(certified=True)
    agreement, company = await api.agreement(firm)
    assert company is not None
    subscription = await api.subscription(firm, agreement, named=5)
    master = await api.subscription(firm, firm.id, named=0, client_user=3)
    second = await api.company(firm, agreement)
    assigned = await api.mutate("assignClientUser", {"firmId": firm.id, "name": "Client Person",
                                                     "email": f"{unique('cu')}@client.example",
                                                     "companyIds": [company, second]},
                                "clientUser { id }", token=firm.admin)
    with Receiver().start() as receiver:
        await register(api, firm, receiver.url, ["SEAT_USAGE_CHANGED"])
        await api.mutate("removeClientUser", {"clientUserId": assigned["clientUser"]["id"]},
                         "removedClientUserId", token=firm.admin)
        await hooks.deliver()
        subjects = sorted(r.event["subject"] for r in receiver.received)
        assert subjects == [master] and subscription != master


async def test_an_endpoint_can_be_changed_within_the_same_rules(hooks: Hooks) -> None:
    api = hooks.api
    firm = await api.firm()
    endpoint = (await register(api, firm, "http://127.0.0.1:9/a", ["ARCHIVED"]))["webhookEndpoint"]["id"]
    changed = await api.mutate("updateWebhookEndpoint", {"webhookEndpointId": endpoint, "url": "http://127.0.0.1:9/b",
                                                         "eventTypes": ["RESTORED", "ARCHIVED", "RESTORED"]},
                               "webhookEndpoint { url eventTypes enabled }", token=firm.admin)
    assert changed["webhookEndpoint"] == {"url": "http://127.0.0.1:9/b", "eventTypes": ["ARCHIVED", "RESTORED"],
                                          "enabled": True}
    for input, field in (({"url": "https://192.168.0.1/"}, "url"), ({"eventTypes": []}, "eventTypes")):
        refused = await api.mutate("updateWebhookEndpoint", {"webhookEndpointId": endpoint, **input},
                                   "webhookEndpoint { url }", token=firm.admin, expect_errors=True)
        assert [(e["code"], e["field"]) for e in refused["userErrors"]] == [("INVALID_INPUT", ["input", field])]
    node = await api.ok("query($id: ID!) { node(id: $id) { ... on WebhookEndpoint { url eventTypes } } }",
                        {"id": endpoint}, token=firm.admin)
    assert node["node"] == {"url": "http://127.0.0.1:9/b", "eventTypes": ["ARCHIVED", "RESTORED"]}


async def test_secrets_are_never_logged(hooks: Hooks, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    api = hooks.api
    firm, _, company, _ = await world(api)
    caplog.set_level(logging.DEBUG)
    with Receiver().start() as receiver:
        receiver.status = 500  # failures are logged: with what?
        created = await register(api, firm, receiver.url, ["MEMBERSHIP_INVITED"])
        endpoint = created["webhookEndpoint"]["id"]
        rolled = await api.mutate("rollWebhookSecret", {"webhookEndpointId": endpoint}, "secret", token=firm.admin)
        await invite(api, firm, company)
        await hooks.deliver()
        assert len(receiver.received) == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "webhooks: delivery" in logged  # the failure was logged
    for secret in (created["secret"], rolled["secret"]):
        assert secret not in logged and secret[6:] not in logged


async def test_a_pass_loads_no_certificates_of_its_own(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every pass made a client, and httpx a TLS context for it from the whole CA bundle: 14 ms of the event
    loop's time every five seconds, deliveries or none. The context is made once a process (auth.tls)."""
    import ssl

    loaded = 0
    load = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        nonlocal loaded
        loaded += 1
        load(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    await deliver_due(api.runtime.database, api.runtime.now())  # the first may make the process's context
    loaded = 0
    for _ in range(3):
        await deliver_due(api.runtime.database, api.runtime.now())
    assert loaded == 0
