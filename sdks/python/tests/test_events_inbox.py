"""An event through a workflow with an in-app step reaches a subscriber's inbox; the
subscriber's own token reads and marks it."""

from __future__ import annotations

import pytest

from chimatic import Chimatic
from chimatic.models import SubscriberView, WorkflowStep, WorkflowView
from tests.server import Server, wait_until


@pytest.fixture(scope="module")
def workflow(client: Chimatic) -> WorkflowView:
    return client.workflows.create(
        key="order.shipped",
        steps=[
            WorkflowStep(
                channel="inapp", title="Shipped", text="Order {{ data.order }} is on its way"
            )
        ],
    )


@pytest.fixture(scope="module")
def alice(client: Chimatic) -> SubscriberView:
    sub = client.subscribers.identify("alice-1", attributes={"name": "Alice", "locale": "en"})
    ch = client.subscribers.add_channel(sub.id, "inapp")
    assert ch.type == "inapp"
    return sub


def test_workflow_round_trip(client: Chimatic, workflow: WorkflowView) -> None:
    assert workflow.key == "order.shipped" and workflow.steps[0].channel == "inapp"
    assert client.workflows.get(workflow.id).steps == workflow.steps
    assert workflow.id in [w.id for w in client.workflows.list().data]
    preview = client.workflows.preview(workflow.id, data={"order": "o-7"})
    assert preview.steps[0].text == "Order o-7 is on its way"


def test_event_reaches_inbox(
    client: Chimatic, server: Server, workflow: WorkflowView, alice: SubscriberView
) -> None:
    sent = client.events.send(name="order.shipped", to=["alice-1", "nobody"], data={"order": "o-1"})
    assert len(sent.notifications) == 1
    assert [(s.index, s.reason) for s in sent.skipped] == [(1, "unknown_subscriber")]

    inbox = wait_until(lambda: (box := client.subscribers.inbox(alice.id)).data and box)
    message = inbox.data[0]
    assert message.id == sent.notifications[0]
    assert (message.title, message.text) == ("Shipped", "Order o-1 is on its way")
    assert inbox.unread_count == 1

    view = wait_until(
        lambda: (n := client.notifications.get(sent.notifications[0])).status == "delivered" and n
    )
    assert view.type == "inapp" and view.subscriber_id == alice.id
    assert view.event_id == sent.event_id

    # The subscriber's own token sees the same inbox, and marks the message read.
    token = client.subscribers.issue_token(alice.id, ttl_seconds=600)
    assert token.token.startswith("sbt_")
    with Chimatic(api_key=token.token, base_url=server.url) as front_end:
        assert [m.id for m in front_end.inbox.list().data] == [message.id]
        read = front_end.inbox.mark(message.id, read=True)
        assert read.read_at is not None
        assert [m.id for m in front_end.inbox.iterate(limit=1)] == [message.id]
        assert front_end.inbox.read_all().marked == 0
        # The subscriber edits their own opt-outs; the API key sees the same.
        own = front_end.inbox.set_preferences(categories={"marketing": False})
        assert own.categories == {"marketing": False}
        assert front_end.inbox.get_preferences().categories == {"marketing": False}
        assert client.subscribers.get_preferences(alice.id).categories == {"marketing": False}
        front_end.inbox.set_preferences()
    assert client.subscribers.inbox(alice.id).unread_count == 0


def test_preferences_and_channels(client: Chimatic, alice: SubscriberView) -> None:
    assert client.subscribers.get_preferences(alice.id).channels in ({}, None)
    prefs = client.subscribers.set_preferences(alice.id, channels={"sms": False})
    assert prefs.channels == {"sms": False}
    assert client.subscribers.get_preferences(alice.id).channels == {"sms": False}
    email = client.subscribers.add_channel(alice.id, "email", address="alice@example.com")
    assert email.address_masked != "alice@example.com"
    kinds = sorted(c.type for c in client.subscribers.list_channels(alice.id).data)
    assert kinds == ["email", "inapp"]
    client.subscribers.remove_channel(alice.id, email.id)
    assert [c.type for c in client.subscribers.list_channels(alice.id).data] == ["inapp"]


def test_update_and_erase(client: Chimatic) -> None:
    bob = client.subscribers.identify("bob-1")
    updated = client.subscribers.update(bob.id, attributes={"plan": "pro"})
    assert list(updated.attributes_masked) == ["plan"]
    receipt = client.subscribers.erase(bob.id)
    assert receipt.subscriber_id == bob.id and receipt.key_destroyed


def test_topics(client: Chimatic, workflow: WorkflowView) -> None:
    members = [client.subscribers.identify(f"topic-member-{i}") for i in range(3)]
    for s in members:
        client.subscribers.add_channel(s.id, "inapp")
    topic = client.topics.create("project.42.watchers")
    changed = client.topics.add_subscribers(topic.id, [s.id for s in members])
    assert changed.changed == 3
    assert sorted(client.topics.iterate_subscribers(topic.id, limit=2)) == sorted(
        s.id for s in members
    )
    assert client.topics.get(topic.id).subscriber_count == 3
    sent = client.events.send(name="order.shipped", to=[{"topic": topic.key}], data={"order": "t"})
    assert sent.fanouts == [topic.key]
    wait_until(lambda: all(client.subscribers.inbox(s.id).data for s in members))
    assert client.topics.remove_subscribers(topic.id, [members[0].id]).changed == 1
