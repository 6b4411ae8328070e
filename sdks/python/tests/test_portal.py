"""The webhook portal from Python: a subscriber token with the `portal` scope adds an endpoint,
whose own secret verifies what an event delivers there, rotates it with an overlap, and reads
the endpoint's deliveries."""

from __future__ import annotations

import pytest

from chimatic import Chimatic, ChimaticError, verify_webhook
from chimatic.models import WorkflowStep
from tests.server import LocalHTTPServer, Server, wait_until


def test_portal_round_trip(client: Chimatic, server: Server, receiver: LocalHTTPServer) -> None:
    hooks = client.integrations.create(kind="webhook", name="hooks")
    client.workflows.create(
        key="invoice.paid",
        steps=[WorkflowStep(channel="webhook", integration_id=hooks.id, text="Invoice {{ data.n }} paid")],
    )
    sub = client.subscribers.identify("portal-1")
    inbox_only = client.subscribers.issue_token(sub.id)
    assert inbox_only.scopes == ["inbox"]
    token = client.subscribers.issue_token(sub.id, scopes=["portal"])
    with Chimatic(api_key=inbox_only.token, base_url=server.url) as wrong:
        with pytest.raises(ChimaticError) as refused:
            wrong.portal.list()
        assert refused.value.status == 403 and refused.value.code == "insufficient_scope"
    with Chimatic(api_key=token.token, base_url=server.url) as portal:
        added = portal.portal.create(url=f"{receiver.url}/portal")
        assert added.signing_secret.startswith("whsec_") and added.signed_with == "endpoint"
        assert [e.id for e in portal.portal.list().data] == [added.id]

        sent = client.events.send(name="invoice.paid", to=["portal-1"], data={"n": 7})
        got = receiver.wait_for(lambda r: r.headers.get("webhook-id") == sent.notifications[0])
        assert verify_webhook(added.signing_secret, got.body, got.headers)["text"] == "Invoice 7 paid"

        rotated = portal.portal.rotate_secret(added.id, overlap_seconds=600)
        assert rotated.previous_secret_expires_at is not None
        again = client.events.send(name="invoice.paid", to=["portal-1"], data={"n": 8})
        got = receiver.wait_for(lambda r: r.headers.get("webhook-id") == again.notifications[0])
        for secret in (added.signing_secret, rotated.signing_secret):
            assert verify_webhook(secret, got.body, got.headers)["text"] == "Invoice 8 paid"

        def both_delivered() -> object:
            page = portal.portal.deliveries(added.id)
            statuses = [d.status for d in page.data]
            return statuses == ["delivered", "delivered"] and page

        done = wait_until(both_delivered)
        assert [d.id for d in done.data] == [again.notifications[0], sent.notifications[0]]
        assert [d.id for d in portal.portal.iterate_deliveries(added.id, limit=1)] == [d.id for d in done.data]
        assert portal.portal.disable(added.id).status == "disabled"
        assert portal.portal.enable(added.id).status == "active"
        portal.portal.delete(added.id)
        assert portal.portal.list().data == []
