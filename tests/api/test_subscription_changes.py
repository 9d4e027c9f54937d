"""Seat, edition and add-on changes through HTTP (R7-R12, R26 dry runs)."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from tests.api.client import Api, Firm, unique

PREVIEW = "preview { effectiveOn amountDueNow { amount currency } nextMonthlyPrice { amount } warnings }"
SUB = ("subscription { seats { licenseType purchased inUse available nextPeriodPurchased } "
       "scheduledChanges { kind effectiveOn licenseType fromValue toValue } monthlyPrice { amount } "
       "currentPeriod { start end } edition { code } features { feature { code } enabled } }")


@contextmanager
def clock(api: Api, when: datetime) -> Iterator[None]:
    previous = api.runtime.clock
    api.runtime.clock = lambda: when
    try:
        yield
    finally:
        api.runtime.clock = previous


async def subscribed(api: Api, *, named: int = 10, mode: str = "CUSTOMER", starts_on: str = "2026-11-01",
                     edition: str = "STANDARD", firm: Firm | None = None) -> tuple[Firm, str, str]:
    firm = firm or await api.firm(reseller=True)
    agreement_id, company_id = await api.agreement(firm, billing_mode=mode)
    assert company_id is not None
    payload = await api.mutate("createSubscription", {
        "ownerId": agreement_id, "editionCode": edition, "billingInterval": "MONTHLY", "startsOn": starts_on,
        "seats": [{"licenseType": "NAMED", "count": named}]}, "subscription { id }", token=firm.admin)
    return firm, payload["subscription"]["id"], company_id


async def change_seats(api: Api, firm: Firm, subscription_id: str, seats: int, *, dry_run: bool = False,
                       expect_errors: bool = False) -> dict[str, Any]:
    return await api.mutate("changeSeats", {"subscriptionId": subscription_id, "licenseType": "NAMED",
                                            "seats": seats, "dryRun": dry_run},
                            f"{SUB} order {{ number total {{ amount }} lines {{ quantity unitPrice {{ amount }} "
                            f"amount {{ amount }} }} }} scheduledChange {{ kind toValue effectiveOn }} {PREVIEW}",
                            token=firm.admin, expect_errors=expect_errors)


NOV_11 = datetime(2026, 11, 11, 9, 0, tzinfo=UTC)


async def test_adding_seats_orders_the_prorated_rest_of_the_period(api: Api) -> None:
    with clock(api, NOV_11):
        firm, sub_id, _ = await subscribed(api, named=10)
        payload = await change_seats(api, firm, sub_id, 12)
    # STANDARD 149.00 SEK a seat, 2 seats, 20 of 30 days: 149 x 2 x 20 / 30 = 198.666.. -> 198.67
    assert payload["order"]["total"]["amount"] == "198.67"
    assert payload["order"]["lines"] == [{"quantity": 2, "unitPrice": {"amount": "149.00"},
                                          "amount": {"amount": "198.67"}}]
    assert payload["preview"]["amountDueNow"] == {"amount": "198.67", "currency": "SEK"}
    assert payload["preview"]["effectiveOn"] == "2026-11-11"
    assert payload["preview"]["nextMonthlyPrice"]["amount"] == "1788.00"  # 12 x 149
    assert payload["subscription"]["seats"][0]["purchased"] == 12


async def test_firm_billed_orders_are_priced_at_reseller_prices(api: Api) -> None:
    vendor = await api.vendor()
    with clock(api, NOV_11):
        firm = await api.firm(reseller=True)
        await api.mutate("updateFirm", {"firmId": firm.id, "resellerDiscountPercent": "20"}, "firm { id }",
                         token=vendor)
        firm, sub_id, _ = await subscribed(api, mode="FIRM", firm=firm)
        payload = await change_seats(api, firm, sub_id, 11)
    # 149.00 x 0.8 = 119.20 a seat; 1 seat for 20 of 30 days = 79.466.. -> 79.47
    assert payload["order"]["lines"][0]["unitPrice"]["amount"] == "119.20"
    assert payload["order"]["total"]["amount"] == "79.47"


async def test_seat_decrease_waits_for_next_period(api: Api) -> None:
    with clock(api, NOV_11):
        firm, sub_id, _ = await subscribed(api, named=10)
        payload = await change_seats(api, firm, sub_id, 8)
    assert payload["order"] is None
    assert payload["scheduledChange"] == {"kind": "SEAT_DECREASE", "toValue": "8", "effectiveOn": "2026-12-01"}
    seats = payload["subscription"]["seats"][0]
    assert (seats["purchased"], seats["nextPeriodPurchased"]) == (10, 8)
    assert payload["preview"]["amountDueNow"]["amount"] == "0.00"
    assert payload["preview"]["nextMonthlyPrice"]["amount"] == "1192.00"


async def test_seats_already_paid_this_period_are_not_charged_again(api: Api) -> None:
    with clock(api, NOV_11):
        firm, sub_id, _ = await subscribed(api, named=10)
        await change_seats(api, firm, sub_id, 8)
        replaced = await change_seats(api, firm, sub_id, 9)
        assert replaced["order"] is None and replaced["preview"]["warnings"]
        assert replaced["subscription"]["scheduledChanges"] == [
            {"kind": "SEAT_DECREASE", "effectiveOn": "2026-12-01", "licenseType": "NAMED", "fromValue": "10",
             "toValue": "9"}]
        increased = await change_seats(api, firm, sub_id, 12)
    assert increased["order"]["lines"][0]["quantity"] == 2
    assert increased["subscription"]["scheduledChanges"] == []


async def test_seats_cannot_go_below_active_users(api: Api) -> None:
    firm, sub_id, company_id = await subscribed(api, named=3)
    for _ in range(2):
        await api.invite(firm.admin, company_id, email=unique("u") + "@x.example")
    payload = await change_seats(api, firm, sub_id, 1, expect_errors=True)
    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [
        ("SEATS_BELOW_ACTIVE_USERS", ["input", "seats"])]
    await change_seats(api, firm, sub_id, 2)


async def test_dry_run_returns_the_same_preview_and_stores_nothing(api: Api) -> None:
    with clock(api, NOV_11):
        firm, sub_id, _ = await subscribed(api, named=10)
        dry = await change_seats(api, firm, sub_id, 12, dry_run=True)
        assert dry["order"] is None
        assert dry["subscription"]["seats"][0]["purchased"] == 10
        real = await change_seats(api, firm, sub_id, 12)
    assert dry["preview"] == real["preview"]
    data = await api.ok("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { orders { totalCount } "
                        "auditLog { edges { node { action } } } } } }", {"id": sub_id}, token=firm.admin)
    assert data["node"]["orders"]["totalCount"] == 1
    assert [e["node"]["action"] for e in data["node"]["auditLog"]["edges"]] == [
        "subscription.seats_added", "subscription.created"]


async def test_edition_change_waits_and_only_one_may_be_pending(api: Api) -> None:
    with clock(api, NOV_11):
        firm, sub_id, _ = await subscribed(api, named=2)
        changed = await api.mutate("changeEdition", {"subscriptionId": sub_id, "editionCode": "PREMIUM"},
                                   f"{SUB} {PREVIEW}", token=firm.admin)
        assert changed["subscription"]["edition"]["code"] == "STANDARD"
        assert changed["preview"]["effectiveOn"] == "2026-12-01"
        assert changed["preview"]["nextMonthlyPrice"]["amount"] == "798.00"  # 2 x 399
        second = await api.mutate("changeEdition", {"subscriptionId": sub_id, "editionCode": "PLUS"},
                                  "subscription { id }", token=firm.admin, expect_errors=True)
        assert [e["code"] for e in second["userErrors"]] == ["EDITION_CHANGE_PENDING"]
        cancelled = await api.mutate("cancelScheduledChange", {"subscriptionId": sub_id, "kind": "EDITION_CHANGE"},
                                     f"{SUB}", token=firm.admin)
        assert cancelled["subscription"]["scheduledChanges"] == []
        await api.mutate("changeEdition", {"subscriptionId": sub_id, "editionCode": "PLUS"}, "subscription { id }",
                         token=firm.admin)


async def test_marketplace_subscriptions_refuse_every_change(api: Api) -> None:
    firm = await api.firm()
    agreement_id, _ = await api.agreement(firm)
    vendor = await api.vendor()
    sub = await api.mutate("createSubscription", {"ownerId": agreement_id, "editionCode": "STANDARD",
                                                  "billingInterval": "MONTHLY", "channel": "MARKETPLACE",
                                                  "seats": [{"licenseType": "NAMED", "count": 2}]},
                           "subscription { id channel }", token=vendor)
    sub_id = sub["subscription"]["id"]
    assert sub["subscription"]["channel"] == "MARKETPLACE"
    for name, input in (("changeSeats", {"licenseType": "NAMED", "seats": 3, "dryRun": True}),
                        ("changeEdition", {"editionCode": "PLUS"}),
                        ("setFeature", {"featureCode": "PAYROLL", "enabled": True})):
        payload = await api.mutate(name, {"subscriptionId": sub_id, **input}, "subscription { id }",
                                   token=firm.admin, expect_errors=True)
        assert [e["code"] for e in payload["userErrors"]] == ["MANAGED_EXTERNALLY"], name
    # only the vendor records marketplace purchases
    other, _ = await api.agreement(firm)
    body = await api.gql("mutation($input: CreateSubscriptionInput!) { createSubscription(input: $input) { "
                         "subscription { id } } }", {"input": {
                             "ownerId": other, "editionCode": "STANDARD", "billingInterval": "MONTHLY",
                             "channel": "MARKETPLACE", "seats": []}}, token=firm.admin)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_paid_feature_is_ordered_once_per_period_and_disabled_without_credit(api: Api) -> None:
    with clock(api, NOV_11):
        firm, sub_id, _ = await subscribed(api, named=1)
        selection = f"{SUB} order {{ total {{ amount }} }} {PREVIEW}"
        enabled = await api.mutate("setFeature", {"subscriptionId": sub_id, "featureCode": "PAYROLL",
                                                  "enabled": True}, selection, token=firm.admin)
        # PAYROLL 99.00 SEK a month, 20 of 30 days: 66.00
        assert enabled["order"]["total"]["amount"] == "66.00"
        assert {"feature": {"code": "PAYROLL"}, "enabled": True} in enabled["subscription"]["features"]
        assert enabled["subscription"]["monthlyPrice"]["amount"] == "248.00"  # 149 + 99
        disabled = await api.mutate("setFeature", {"subscriptionId": sub_id, "featureCode": "PAYROLL",
                                                   "enabled": False}, selection, token=firm.admin)
        assert disabled["order"] is None and disabled["preview"]["warnings"]
        again = await api.mutate("setFeature", {"subscriptionId": sub_id, "featureCode": "PAYROLL",
                                                "enabled": True}, selection, token=firm.admin)
        assert again["order"] is None
        free = await api.mutate("setFeature", {"subscriptionId": sub_id, "featureCode": "API_ACCESS",
                                               "enabled": True}, selection, token=firm.admin)
        assert free["order"] is None
    log = await api.ok("query($id: ID!) { node(id: $id) { ... on LicenseSubscription { auditLog { edges { node { "
                       "action before after actor { email } clientId } } } } } }", {"id": sub_id}, token=firm.admin)
    actions = [e["node"]["action"] for e in log["node"]["auditLog"]["edges"]]
    assert actions[:4] == ["feature.enabled", "feature.enabled", "feature.disabled", "feature.enabled"]
    latest = log["node"]["auditLog"]["edges"][0]["node"]
    assert latest["actor"]["email"] == firm.admin_email and latest["clientId"] == api.app_client_id


async def test_only_administrators_and_firm_admins_change_seats(api: Api) -> None:
    firm, sub_id, company_id = await subscribed(api, named=5)
    email = unique("acc") + "@x.example"
    await api.invite(firm.admin, company_id, email=email, role="ACCOUNTANT")
    accountant = await api.token(email)
    body = await api.gql("mutation($input: ChangeSeatsInput!) { changeSeats(input: $input) { subscription { id } } }",
                         {"input": {"subscriptionId": sub_id, "licenseType": "NAMED", "seats": 6}}, token=accountant)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    admin_email = unique("adm") + "@x.example"
    await api.invite(firm.admin, company_id, email=admin_email, role="ADMINISTRATOR")
    await api.mutate("changeSeats", {"subscriptionId": sub_id, "licenseType": "NAMED", "seats": 6},
                     "subscription { id }", token=await api.token(admin_email))
