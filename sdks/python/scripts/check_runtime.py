#!/usr/bin/env python3
"""A runtime check of the package without the dev tools, for interpreters the pinned tools do
not support (run-tests.sh runs it on Python 3.9 when one is installed): imports, the generated
models, every kind of operation builder, webhook verification."""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

import chimatic
from chimatic import _operations as ops
from chimatic import models as m


def main() -> None:
    assert m.SendEvent(name="x", to=["a", m.TopicRef(topic="t")]).to[1] == m.TopicRef(topic="t")
    prefs = m.Preferences.model_validate({"channels": {"sms": False}})
    assert prefs.channels == {"sms": False}
    view = m.ChannelCreated.model_validate(
        {
            "id": "ch_" + "a" * 32,
            "type": "webhook",
            "status": "active",
            "created_at": "now",
            "signing_secret": "whsec_x",
        }
    )
    assert view.id.startswith("ch_")
    op = ops.subscribers_add_channel("sub_x", "email", address="a@example.com")
    assert op.body == {"type": "email", "address": "a@example.com"}
    op2 = ops.events_send("order.shipped", ["u-1", {"topic": "t"}], data={"a": 1})
    assert op2.retryable and op2.body["idempotency_key"]
    batch = ops.notifications_create_batch([{"channel_id": "ch_" + "a" * 32, "payload": {}}])
    assert batch.body["items"][0]["idempotency_key"]
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    now = datetime.now(timezone.utc)
    sig = Webhook(secret).sign("msg_1", now, '{"a":1}')  # str: standardwebhooks 1.1 signs str only
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sig,
    }
    assert chimatic.verify_webhook(secret, b'{"a":1}', headers) == {"a": 1}
    client = chimatic.Chimatic(api_key="chm_x", base_url="http://127.0.0.1:9")
    assert callable(client.subscribers.iterate)
    client.close()
    print(f"chimatic {chimatic.__version__} works on Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
