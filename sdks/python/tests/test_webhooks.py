"""A webhook channel pointing at a local receiver: a notification is delivered, signed, and
its signature verifies with verify_webhook; a tampered body or an old timestamp does not."""

from __future__ import annotations

import email.message
import time
from datetime import datetime, timedelta, timezone

import pytest
from standardwebhooks.webhooks import Webhook

from chimatic import Chimatic, WebhookVerificationError, verify_webhook
from chimatic.models import ChannelCreated
from tests.server import LocalHTTPServer, Received, wait_until


@pytest.fixture(scope="module")
def channel(client: Chimatic, receiver: LocalHTTPServer) -> ChannelCreated:
    return client.channels.create(url=f"{receiver.url}/hook")


@pytest.fixture(scope="module")
def delivered(client: Chimatic, channel: ChannelCreated, receiver: LocalHTTPServer) -> Received:
    sent = client.notifications.create(
        channel_id=channel.id, payload={"order": "o-1042", "status": "shipped"}
    )
    assert sent.status == "queued"
    got = receiver.wait_for(lambda r: r.headers.get("webhook-id") == sent.id)
    view = wait_until(lambda: (n := client.notifications.get(sent.id)).status == "delivered" and n)
    assert view.attempt_count == 1 and view.attempts[0].succeeded
    assert view.attempts[0].status_code == 200
    assert view.channel_id == channel.id
    return got


def test_channel_created(channel: ChannelCreated, client: Chimatic) -> None:
    assert channel.signing_secret.startswith("whsec_")
    assert channel.status == "active"
    again = client.channels.get(channel.id)
    assert again.id == channel.id and again.url_masked is not None
    assert channel.id in [c.id for c in client.channels.iterate()]


def test_signature_verifies(channel: ChannelCreated, delivered: Received) -> None:
    assert delivered.method == "POST" and delivered.path == "/hook"
    payload = verify_webhook(channel.signing_secret, delivered.body, delivered.headers)
    assert payload == {"order": "o-1042", "status": "shipped"}
    # As str too, and with the headers of http.server (an email.message.Message).
    message = email.message.Message()
    for k, v in delivered.headers.items():
        message[k] = v
    assert verify_webhook(channel.signing_secret, delivered.body.decode(), message) == payload


def test_tampered_body_fails(channel: ChannelCreated, delivered: Received) -> None:
    tampered = delivered.body.replace(b"o-1042", b"o-1043")
    assert tampered != delivered.body
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_webhook(channel.signing_secret, tampered, delivered.headers)


def test_other_secret_fails(delivered: Received) -> None:
    other = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    with pytest.raises(WebhookVerificationError):
        verify_webhook(other, delivered.body, delivered.headers)


def test_old_timestamp_fails(channel: ChannelCreated, delivered: Received) -> None:
    # The delivered request with its timestamp moved back: the signature no longer matches,
    # and the timestamp is refused before that is even checked.
    headers = dict(delivered.headers)
    headers["webhook-timestamp"] = str(int(time.time()) - 600)
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(channel.signing_secret, delivered.body, headers)
    # A correctly signed but old message (a replay ten minutes later) fails too.
    old = datetime.now(timezone.utc) - timedelta(minutes=10)
    msg_id = delivered.headers["webhook-id"]
    signature = Webhook(channel.signing_secret).sign(msg_id, old, delivered.body)
    replay = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": signature,
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(channel.signing_secret, delivered.body, replay)
    # The same message signed now verifies: only the timestamp made it fail.
    now = datetime.now(timezone.utc)
    fresh = dict(
        replay,
        **{
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(channel.signing_secret).sign(msg_id, now, delivered.body),
        },
    )
    assert verify_webhook(channel.signing_secret, delivered.body, fresh)["order"] == "o-1042"


def test_missing_headers_and_bad_secret(channel: ChannelCreated, delivered: Received) -> None:
    with pytest.raises(WebhookVerificationError, match="headers"):
        verify_webhook(channel.signing_secret, delivered.body, {})
    with pytest.raises(WebhookVerificationError, match="secret"):
        verify_webhook("whsec_", delivered.body, delivered.headers)


def test_deactivate_and_reactivate(client: Chimatic, receiver: LocalHTTPServer) -> None:
    ch = client.channels.create(url=f"{receiver.url}/other")
    off = client.channels.deactivate(ch.id)
    assert off.status == "deactivated" and off.url_masked is None
    assert off.cancelled_notifications == 0
    on = client.channels.reactivate(ch.id)
    assert on.status == "active"
