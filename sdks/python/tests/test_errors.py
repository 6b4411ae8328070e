"""Every non-2xx answer raises ChimaticError (of the subclass its status names) with the
problem document's code."""

from __future__ import annotations

import httpx
import pytest

from chimatic import (
    AuthenticationError,
    BadRequestError,
    Chimatic,
    ChimaticError,
    NotFoundError,
    PermissionDeniedError,
    UnprocessableEntityError,
)
from tests.server import LocalHTTPServer, Server, Workspace

MISSING = "msg_0192f0c1a2b37c4d8e9f0a1b2c3d4e5f"


def test_not_found(client: Chimatic) -> None:
    with pytest.raises(NotFoundError) as e:
        client.notifications.get(MISSING)
    assert (e.value.status, e.value.code) == (404, "not_found")
    assert e.value.detail and e.value.title == "Not Found"
    assert isinstance(e.value, ChimaticError)


def test_unprocessable(client: Chimatic) -> None:
    with pytest.raises(UnprocessableEntityError) as e:
        client.channels.create(url="ftp://example.com/hook")
    assert (e.value.status, e.value.code) == (422, "invalid_url")


def test_batch_item_errors(client: Chimatic, receiver: LocalHTTPServer) -> None:
    ch = client.channels.create(url=f"{receiver.url}/batch")
    client.channels.deactivate(ch.id)
    with pytest.raises(ChimaticError) as e:
        client.notifications.create_batch(
            [
                {"channel_id": ch.id, "payload": {"n": 1}},
                {"channel_id": ch.id, "payload": {"n": 2}},
            ]
        )
    assert e.value.status == 422
    assert [(i.index, i.code) for i in e.value.errors] == [
        (0, "channel_deactivated"),
        (1, "channel_deactivated"),
    ]


def test_bad_request(client: Chimatic) -> None:
    with pytest.raises(BadRequestError) as e:
        client.notifications.get("not-an-id")
    assert (e.value.status, e.value.code) == (400, "invalid_id")


def test_unauthorized_without_key(server: Server) -> None:
    def drop_auth(request: httpx.Request) -> None:
        del request.headers["authorization"]

    http = httpx.Client(event_hooks={"request": [drop_auth]})
    with Chimatic(api_key="chm_unused", base_url=server.url, http_client=http) as anonymous:
        with pytest.raises(AuthenticationError) as e:
            anonymous.workspace.get()
    http.close()
    assert (e.value.status, e.value.code) == (401, "unauthorized")


def test_unauthorized_unknown_key(server: Server) -> None:
    with Chimatic(api_key="chm_" + "x" * 43, base_url=server.url) as c:
        with pytest.raises(AuthenticationError) as e:
            c.channels.list()
    assert e.value.code == "unauthorized"


def test_insufficient_scope(client: Chimatic, server: Server, workspace: Workspace) -> None:
    created = client.api_keys.create("read-only", ["channels:read"])
    assert created.scopes == ["channels:read"] and created.key.startswith("chm_")
    assert created.id in [k.id for k in client.api_keys.list().data]
    with Chimatic(api_key=created.key, base_url=server.url) as narrow:
        narrow.channels.list()  # in scope
        with pytest.raises(PermissionDeniedError) as e:
            narrow.notifications.create(channel_id=MISSING.replace("msg", "ch"), payload={})
        assert (e.value.status, e.value.code) == (403, "insufficient_scope")
        client.api_keys.revoke(created.id)
        with pytest.raises(AuthenticationError):
            narrow.channels.list()


def test_workspace(client: Chimatic, workspace: Workspace) -> None:
    ws = client.workspace.get()
    assert ws.id == workspace.id and ws.name == workspace.name
    stats = client.workspace.stats(days=3)
    assert len(stats.days) == 3
