"""R57: graphql-transport-ws messages go in text frames. Browsers hand a binary frame to the page
as a Blob, which graphql-ws (the browser client) cannot parse: it closes with 4004 and retries."""

import json

from websockets.asyncio.client import connect as ws_connect
from websockets.typing import Subprotocol

from tests.api.client import Api
from tests.api.test_live_events import SEATS, Live, Server, server, subscribed

__all__ = ["server"]  # the fixture, imported for this test


async def test_every_message_is_a_text_frame(server: Server, api: Api) -> None:
    firm = await api.firm()
    agreement_id, company_id = await api.agreement(firm)
    assert company_id is not None
    subscription_id = await api.subscription(firm, agreement_id, named=5)
    async with ws_connect(server.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=10) as ws:
        # websockets gives a text frame as str, a binary one as bytes.
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {firm.admin}"}}))
        ack = await ws.recv()
        assert isinstance(ack, str) and json.loads(ack) == {"type": "connection_ack"}
        await ws.send(json.dumps({"type": "ping"}))
        pong = await ws.recv()
        assert isinstance(pong, str) and json.loads(pong)["type"] == "pong"
        await subscribed(server, Live(ws), "s", SEATS, {"id": subscription_id})
        await api.invite(firm.admin, company_id, email="text.frames@client.example")
        event = await ws.recv()
        assert isinstance(event, str)
        assert json.loads(event)["payload"]["data"]["seatUsageChanged"]["inUse"] == 1
