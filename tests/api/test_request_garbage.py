"""A read leaves no cyclic garbage on the server (R100).

What a reference cycle holds lives until the cyclic collector runs, and with a server's raised
thresholds (R78) that was hundreds of requests later: each one's session, principal and answer,
megabytes a second under load. Requests are sent through the ASGI app with the collector saving
what it finds; only the client's own objects (httpx's) may be among it.
"""

import gc
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest

from bench import workloads
from tests.api.client import Api

# The client side of the test (httpx, its transport) makes cycles of its own; they are not the server's.
CLIENT_MODULES = ("httpx", "httpcore", "anyio", "h11", "urllib", "email", "tests.")


async def cycles_left_by(send: Callable[[], Awaitable[None]]) -> list[object]:
    """What the cyclic collector finds after `send`, and only after it: whatever earlier made is freed
    first (DEBUG_SAVEALL keeps what it finds alive, so it is on only around `send`)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        await send()
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.collect()


def server_garbage(found: list[object]) -> Counter[str]:
    kinds: Counter[str] = Counter()
    for thing in found:
        module = type(thing).__module__
        if type(thing) in (tuple, list, dict, set, frozenset) or module.startswith(CLIENT_MODULES):
            continue  # containers are counted through the objects that own them
        kinds[f"{module}.{type(thing).__qualname__}"] += 1
    return kinds


@pytest.mark.parametrize("query", [workloads.NODE, workloads.COMPANY_PAGE])
async def test_a_read_leaves_no_cycle(api: Api, query: str) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    variables = {"id": company_id} if query == workloads.NODE else {"firm": firm.id}
    for _ in range(3):  # the document, the statement and the principal kept first
        assert (await api.post(query, variables, firm.admin)).status_code == 200

    async def reads() -> None:
        for _ in range(5):
            response = await api.post(query, variables, firm.admin)
            assert response.status_code == 200 and "errors" not in response.json()

    found = server_garbage(await cycles_left_by(reads))
    assert not found, sorted(found.items())
