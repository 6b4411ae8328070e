"""The async client against the real server: send, get, iterate, errors."""

from __future__ import annotations

import asyncio

import pytest

from chimatic import AsyncChimatic, NotFoundError, verify_webhook
from tests.server import LocalHTTPServer, Server, Workspace


@pytest.fixture
async def aclient(server: Server, workspace: Workspace) -> AsyncChimatic:
    return AsyncChimatic(api_key=workspace.api_key, base_url=server.url)


async def test_send_get_iterate(aclient: AsyncChimatic, receiver: LocalHTTPServer) -> None:
    async with aclient as c:
        channel = await c.channels.create(url=f"{receiver.url}/async")
        sent = await c.notifications.create(channel_id=channel.id, payload={"via": "async"})
        got = await asyncio.to_thread(
            receiver.wait_for, lambda r: r.headers.get("webhook-id") == sent.id
        )
        assert verify_webhook(channel.signing_secret, got.body, got.headers) == {"via": "async"}
        for _ in range(600):
            view = await c.notifications.get(sent.id)
            if view.status == "delivered":
                break
            await asyncio.sleep(0.05)
        assert view.status == "delivered" and view.attempts[0].succeeded

        # An event through a workflow, to subscribers made concurrently.
        await c.workflows.create(
            "async.hello", [{"channel": "inapp", "text": "hi {{ subscriber.name }}"}]
        )
        subs = await asyncio.gather(
            *(c.subscribers.identify(f"async-{i}", attributes={"name": f"n{i}"}) for i in range(30))
        )
        await asyncio.gather(*(c.subscribers.add_channel(s.id, "inapp") for s in subs))
        accepted = await c.events.send(name="async.hello", to=[f"async-{i}" for i in range(3)])
        assert len(accepted.notifications) == 3 and not accepted.idempotent_replayed

        seen = [s.id async for s in c.subscribers.iterate(limit=7)]
        assert sorted(seen) == sorted(s.id for s in subs)

        for _ in range(600):
            inbox = await c.subscribers.inbox(subs[0].id)
            if inbox.data:
                break
            await asyncio.sleep(0.05)
        assert inbox.data[0].text == "hi n0"
        assert [m.id async for m in c.subscribers.iterate_inbox(subs[0].id, limit=1)] == [
            inbox.data[0].id
        ]


async def test_async_errors(aclient: AsyncChimatic) -> None:
    async with aclient as c:
        with pytest.raises(NotFoundError) as e:
            await c.subscribers.get("sub_" + "0" * 32)
        assert e.value.code == "not_found"
