"""The remaining namespaces against the real server: integrations, suppressions, workspace,
replay of a failed notification."""

from __future__ import annotations

import pytest

from chimatic import Chimatic, ConflictError, UnprocessableEntityError
from tests.server import LocalHTTPServer, wait_until


def test_integrations(client: Chimatic) -> None:
    created = client.integrations.create("webhook", "outbound hooks")
    assert created.kind == "webhook" and (created.signing_secret or "").startswith("whsec_")
    assert client.integrations.get(created.id).name == "outbound hooks"
    renamed = client.integrations.update(created.id, name="renamed")
    assert renamed.name == "renamed"
    assert created.id in [i.id for i in client.integrations.list().data]
    assert list(client.integrations.iterate_inbound(created.id)) == []
    client.integrations.delete(created.id)
    assert created.id not in [i.id for i in client.integrations.list().data]


def test_suppressions(client: Chimatic) -> None:
    added = [client.suppressions.create("email", f"bounced-{i}@example.com") for i in range(3)]
    assert all(s.reason == "manual" for s in added)
    listed = [s.id for s in client.suppressions.iterate(limit=2)]
    assert sorted(listed) == sorted(s.id for s in added)
    client.suppressions.delete(added[0].id)
    assert len(client.suppressions.list().data) == 2
    with pytest.raises(UnprocessableEntityError):
        client.suppressions.create("email", "not an address")


def test_replay_of_a_failed_notification(client: Chimatic) -> None:
    failing = LocalHTTPServer(lambda _r: (500, {}, b"no"))
    try:
        ch = client.channels.create(url=f"{failing.url}/fails")
        sent = client.notifications.create(channel_id=ch.id, payload={"n": 1})
        # Four attempts on the test schedule (200 ms, 400 ms, 800 ms), then failed.
        failed = wait_until(
            lambda: (n := client.notifications.get(sent.id)).status == "failed" and n, timeout=60
        )
        assert failed.attempt_count == 4 and not any(a.succeeded for a in failed.attempts)
        assert {a.status_code for a in failed.attempts} == {500}
        again = client.notifications.replay(sent.id)
        assert again.id == sent.id and again.status == "queued"
        with pytest.raises(ConflictError):  # only a failed notification can be replayed
            client.notifications.replay(sent.id)
    finally:
        failing.close()
