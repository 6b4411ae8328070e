"""The SDK's surface: every operation of the OpenAPI document has one definition here, bound
on both clients; and the types the two clients answer with (checked by mypy through
assert_type, and at run time where it can be)."""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Awaitable, Iterator
from pathlib import Path

from typing_extensions import assert_type

from chimatic import AsyncChimatic, Chimatic
from chimatic import _operations as ops
from chimatic import _resources
from chimatic._core import endpoint, paginated
from chimatic.models import NotificationAccepted, SubscriberView, TopicView

SPEC = Path(__file__).resolve().parents[2] / "openapi.json"
# Not for an API client: probes and metrics, the provider-signed inbound webhooks, the SSE stream.
LEFT_OUT = {
    "operations_healthz",
    "operations_readyz",
    "operations_metrics",
    "operations_openapi_json",
    "inbound_receive",
    "inbox_stream",
}


def operation_ids() -> dict[str, tuple[str, str]]:
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    return {
        op["operationId"]: (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }


def bound() -> set[str]:
    names = set()
    for _, cls in inspect.getmembers(_resources, inspect.isclass):
        for attr in vars(cls).values():
            if isinstance(attr, (endpoint, paginated)):
                names.add(attr._build.__name__)
    return names


def test_every_operation_is_defined_and_bound() -> None:
    wanted = set(operation_ids()) - LEFT_OUT
    missing = sorted(name for name in wanted if not hasattr(ops, name))
    assert not missing, f"operations of openapi.json without a definition: {missing}"
    unbound = sorted(wanted - bound())
    assert not unbound, f"operations defined but bound to no namespace: {unbound}"


def test_the_clients_have_the_same_namespaces() -> None:
    sync = Chimatic(api_key="chm_x")
    asyn = AsyncChimatic(api_key="chm_x")
    assert set(vars(sync)) == set(vars(asyn))
    assert callable(sync.notifications.create) and callable(asyn.notifications.create)
    assert sync.notifications.create.__doc__ == ops.notifications_create.__doc__
    sync.close()


def _static_types(sync: Chimatic, asyn: AsyncChimatic) -> None:
    """Never run: mypy checks what each client answers with."""
    assert_type(sync.notifications.create("ch_x", {}), NotificationAccepted)
    assert_type(asyn.notifications.create("ch_x", {}), Awaitable[NotificationAccepted])
    assert_type(sync.subscribers.iterate(limit=5), Iterator[SubscriberView])
    assert_type(asyn.subscribers.iterate(limit=5), AsyncIterator[SubscriberView])
    assert_type(sync.topics.iterate_subscribers("top_x"), Iterator[str])
    assert_type(sync.topics.get("top_x"), TopicView)
    assert_type(sync.subscribers.remove_channel("sub_x", "sch_x"), None)
