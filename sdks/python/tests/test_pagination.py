"""Iterators over every page: 120 subscribers at 25 a page, and the audit log's own cursor."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from chimatic import Chimatic
from tests.server import Server, Workspace

COUNT = 120


@pytest.fixture(scope="module")
def requests_seen() -> list[httpx.Request]:
    return []


@pytest.fixture(scope="module")
def counted(
    server: Server, workspace: Workspace, requests_seen: list[httpx.Request]
) -> Iterator[Chimatic]:
    """A client whose requests are recorded, to count the pages fetched."""
    http = httpx.Client(event_hooks={"request": [requests_seen.append]})
    with Chimatic(api_key=workspace.api_key, base_url=server.url, http_client=http) as c:
        yield c
    http.close()


@pytest.fixture(scope="module")
def subscriber_ids(client: Chimatic) -> list[str]:
    with ThreadPoolExecutor(4) as pool:
        subs = list(pool.map(lambda i: client.subscribers.identify(f"page-{i:03}"), range(COUNT)))
    return [s.id for s in subs]


def test_iterate_subscribers(
    counted: Chimatic, subscriber_ids: list[str], requests_seen: list[httpx.Request]
) -> None:
    requests_seen.clear()
    seen = [s.id for s in counted.subscribers.iterate(limit=25)]
    assert sorted(seen) == sorted(subscriber_ids)
    assert len(set(seen)) == COUNT
    pages = [r for r in requests_seen if r.url.path == "/v1/subscribers"]
    assert len(pages) == 5  # 25 + 25 + 25 + 25 + 20
    assert "after" not in pages[0].url.params
    assert all(r.url.params["limit"] == "25" for r in pages)
    assert all(r.url.params["after"].startswith("sub_") for r in pages[1:])


def test_one_page_by_hand(client: Chimatic, subscriber_ids: list[str]) -> None:
    first = client.subscribers.list(limit=100)
    assert len(first.data) == 100 and first.next_cursor is not None
    rest = client.subscribers.list(after=first.next_cursor, limit=100)
    assert len(rest.data) == COUNT - 100 and rest.next_cursor is None


def test_iterate_stops_early(client: Chimatic, subscriber_ids: list[str]) -> None:
    it = client.subscribers.iterate(limit=10)
    assert len([next(it) for _ in range(15)]) == 15


def test_audit_log_cursor(client: Chimatic) -> None:
    for i in range(7):  # audited, in the control plane's chain
        client.api_keys.revoke(client.api_keys.create(f"audit-{i}", ["audit:read"]).id)
    everything = client.audit.list(limit=500)
    assert everything.next_cursor is None
    assert len(everything.data) > 14
    paged = list(client.audit.iterate(limit=3))
    assert [(e.stream, e.seq) for e in paged] == [(e.stream, e.seq) for e in everything.data]
    assert [e.action for e in client.audit.iterate(action="api_key.revoked", limit=2)] == [
        "api_key.revoked"
    ] * 7
    assert client.audit.public_key().public_key
    assert "workspace.created" in client.audit.export()
