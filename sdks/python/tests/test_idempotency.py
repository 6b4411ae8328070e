"""Idempotency keys: the same key twice gives the same notification or event; without one
the client makes a fresh key per call."""

from __future__ import annotations

import pytest

from chimatic import Chimatic
from chimatic.models import ChannelCreated
from tests.server import LocalHTTPServer


@pytest.fixture(scope="module")
def channel(client: Chimatic, receiver: LocalHTTPServer) -> ChannelCreated:
    return client.channels.create(url=f"{receiver.url}/idem")


def test_same_key_same_notification(client: Chimatic, channel: ChannelCreated) -> None:
    first = client.notifications.create(
        channel_id=channel.id, payload={"order": "o-1"}, idempotency_key="o-1-shipped"
    )
    again = client.notifications.create(
        channel_id=channel.id, payload={"order": "o-1"}, idempotency_key="o-1-shipped"
    )
    assert again.id == first.id


def test_generated_keys_differ(client: Chimatic, channel: ChannelCreated) -> None:
    a = client.notifications.create(channel_id=channel.id, payload={"order": "o-2"})
    b = client.notifications.create(channel_id=channel.id, payload={"order": "o-2"})
    assert a.id != b.id


def test_batch_keys(client: Chimatic, channel: ChannelCreated) -> None:
    items = [
        {"channel_id": channel.id, "payload": {"n": 1}, "idempotency_key": "batch-1"},
        {"channel_id": channel.id, "payload": {"n": 2}, "idempotency_key": "batch-2"},
    ]
    first = client.notifications.create_batch(items)
    again = client.notifications.create_batch(items)
    assert [i.id for i in again.data] == [i.id for i in first.data]
    assert [i.idempotent_replayed for i in first.data] == [False, False]
    assert [i.idempotent_replayed for i in again.data] == [True, True]
    # Items without a key each get a generated one: a second batch makes new notifications.
    bare = [{"channel_id": channel.id, "payload": {"n": 3}}]
    assert client.notifications.create_batch(bare).data[0].id != (
        client.notifications.create_batch(bare).data[0].id
    )


def test_same_key_same_event(client: Chimatic) -> None:
    client.workflows.create("idem.event", [{"channel": "inapp", "text": "hello"}])
    client.subscribers.add_channel(client.subscribers.identify("x").id, "inapp")
    first = client.events.send(name="idem.event", to=["x"], idempotency_key="evt-key-1")
    again = client.events.send(name="idem.event", to=["x"], idempotency_key="evt-key-1")
    assert again.event_id == first.event_id
    assert (first.idempotent_replayed, again.idempotent_replayed) == (False, True)
    assert len(first.notifications) == 1 and again.notifications == []
