"""R72: a change that moves seat usage says whose (`UnitOfWork.audit(..., affects=[...])`), and a
live seatUsageChanged subscriber of each subscription it moved hears of it. Nothing is guessed
from the audit row: a mutation that forgot `affects` leaves its subscribers waiting, and the step
below that made it fails, naming the pools that did not hear.

Each step reads the seats of every subscription of the firm over HTTP before and after, and
expects a message, with the numbers read after, from exactly the pools whose numbers changed.
The subscriber sits on a server of its own (uvicorn, lifespan, the PostgreSQL listener); the
mutations go through the test's app, so every event crosses the database's NOTIFY."""

from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from typing import Any

from auth.principal import PLATFORM_ADMIN, Principal
from models import Subscription, ids
from resolvers import periods
from resolvers.base import run_in_transaction
from resolvers.rollover import ROLLOVER_CLIENT
from tests.api.client import Api, Firm, unique
from tests.api.test_live_events import SEATS, Live, Server, live, server, subscribed

__all__ = ["server"]  # the fixture, imported for pytest

POOLS = """query($id: ID!) { node(id: $id) { ... on LicenseSubscription {
    seats { licenseType purchased inUse available nextPeriodPurchased } } } }"""
MEMBERSHIP = "membership { id status licenseType }"
Pools = dict[tuple[str, str], dict[str, Any]]  # (subscription's name, licence type): the pool


class Steps:
    def __init__(self, api: Api, firm: Firm, client: Live, subscriptions: dict[str, str]) -> None:
        self.api, self.firm, self.client, self.subscriptions = api, firm, client, subscriptions

    async def pools(self) -> Pools:
        found: Pools = {}
        for name, subscription_id in self.subscriptions.items():
            data = await self.api.ok(POOLS, {"id": subscription_id}, token=self.firm.admin)
            for pool in data["node"]["seats"]:
                found[name, pool["licenseType"]] = pool
        return found

    async def step(self, what: str, change: Callable[[], Awaitable[Any]]) -> Any:
        before = await self.pools()
        result = await change()
        after = await self.pools()
        moved = {key: pool for key, pool in after.items() if before.get(key) != pool}
        assert moved, f"{what}: no seats moved, so this step proves nothing"
        heard: Pools = {}
        while heard.keys() != moved.keys():
            try:
                message = await self.client.receive(10)
            except TimeoutError:
                raise AssertionError(f"{what}: no seatUsageChanged from {sorted(moved.keys() - heard.keys())} "
                                     "(does its audit row say what it affects?)") from None
            assert message["type"] == "next", (what, message)
            pool = message["payload"]["data"]["seatUsageChanged"]
            key = (message["id"], pool["licenseType"])
            assert key in moved and key not in heard, f"{what}: unexpected {key}: {pool}"
            heard[key] = pool
        assert heard == moved, what
        return result

    async def mutate(self, name: str, input: dict[str, Any], selection: str, *, token: str | None = None) -> Any:
        return await self.step(name, partial(self.api.mutate, name, input, selection,
                                             token=token or self.firm.admin))


async def _advance(api: Api, subscription_id: str) -> None:
    """The rollover's step for one subscription: its period ends, its scheduled changes apply."""
    pk = ids.decode_as(subscription_id, "LicenseSubscription")
    assert pk is not None
    async with api.runtime.database.sessions() as session:
        end: date = (await session.get_one(Subscription, pk)).current_period_end
    system = Principal(client_id=ROLLOVER_CLIENT, scopes=frozenset({PLATFORM_ADMIN}))
    done = await run_in_transaction(api.runtime, system, partial(periods.advance, subscription_id=pk, until=end))
    assert done.value is not None and done.value.changes == 1, done


async def test_r72_every_seat_moving_change_reaches_the_subscribers_of_what_it_moved(server: Server,
                                                                                      api: Api) -> None:
    firm = await api.firm(certified=True)
    master = await api.subscription(firm, firm.id, named=0, client_user=3)
    a, a_company = await api.agreement(firm)
    b, b_company = await api.agreement(firm)
    assert a_company is not None and b_company is not None
    subscriptions = {"master": master, "a": await api.subscription(firm, a, named=5, concurrent=2),
                     "b": await api.subscription(firm, b, named=5)}
    async with live(server, firm.admin) as client:
        for name, subscription_id in subscriptions.items():
            await subscribed(server, client, name, SEATS, {"id": subscription_id})
        steps = Steps(api, firm, client, subscriptions)

        # NAMED seats of a company's agreement: memberships (R13)
        email = unique("seat") + "@client.example"
        member = (await steps.step("inviteUser", partial(api.invite, firm.admin, a_company, email=email)))[
            "membership"]["id"]
        accountant = (await steps.mutate("grantAccountantAccess", {
            "companyId": a_company, "name": "Acc Ountant", "email": unique("acc") + "@books.example"},
            MEMBERSHIP))["membership"]["id"]
        await steps.mutate("revokeAccountantAccess", {"membershipId": accountant}, MEMBERSHIP)
        await steps.mutate("deactivateMembership", {"membershipId": member}, MEMBERSHIP)
        await steps.mutate("reactivateMembership", {"membershipId": member}, MEMBERSHIP)
        await steps.mutate("updateMembership", {"membershipId": member, "licenseType": "CONCURRENT"}, MEMBERSHIP)

        # CONCURRENT seats: live sessions (R14)
        user = await api.token(email)
        session = (await steps.mutate("startSession", {"companyId": a_company}, "session { id }",
                                      token=user))["session"]["id"]
        await steps.mutate("endSession", {"sessionId": session}, "session { id }", token=user)
        await steps.mutate("updateMembership", {"membershipId": member, "licenseType": "NAMED"}, MEMBERSHIP)

        # A company and its seats move between agreements (R5); archiving ends them, undoing gives them back
        await steps.mutate("moveCompany", {"companyId": a_company, "toAgreementId": b}, "company { id }")
        await steps.mutate("archiveCompany", {"companyId": a_company}, "company { id }")
        await steps.mutate("unarchiveCompany", {"companyId": a_company}, "company { id }")

        # CLIENT_USER seats of the firm's master licence (R16)
        client_user = (await steps.mutate("assignClientUser", {
            "firmId": firm.id, "companyIds": [b_company], "name": "Client Person",
            "email": unique("client") + "@client.example"}, "clientUser { id }"))["clientUser"]["id"]
        await steps.mutate("removeClientUser", {"clientUserId": client_user}, "removedClientUserId")

        # Purchased seats and scheduled decreases (R7-R9), and the period change that applies one
        seats = "subscription { id }"
        await steps.mutate("changeSeats", {"subscriptionId": subscriptions["b"], "licenseType": "NAMED", "seats": 7},
                           seats)
        await steps.mutate("changeSeats", {"subscriptionId": subscriptions["b"], "licenseType": "NAMED", "seats": 3},
                           seats)
        await steps.mutate("cancelScheduledChange", {"subscriptionId": subscriptions["b"], "kind": "SEAT_DECREASE",
                                                     "licenseType": "NAMED"}, seats)
        await steps.mutate("changeSeats", {"subscriptionId": subscriptions["b"], "licenseType": "NAMED", "seats": 3},
                           seats)
        await steps.step("the period change (bureau rollover)", partial(_advance, api, subscriptions["b"]))

        # Cancelling at once drops the scheduled decrease
        await steps.mutate("changeSeats", {"subscriptionId": subscriptions["a"], "licenseType": "NAMED", "seats": 2},
                           seats)
        await steps.mutate("cancelSubscription", {"subscriptionId": subscriptions["a"], "immediately": True}, seats,
                           token=await api.vendor())
        await client.nothing(0.5)  # and no pool heard of a change it did not have
