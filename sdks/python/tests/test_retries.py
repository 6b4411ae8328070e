"""Retries against a local fake server whose answers the test scripts: 429 and 503 with
Retry-After, 5xx without it, dropped connections. The waits are recorded through the client's
`sleep` hook (really sleeping), so nothing depends on how fast the machine is."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Sequence
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest

from chimatic import (
    AsyncChimatic,
    Chimatic,
    ChimaticConnectionError,
    RateLimitError,
    ServerError,
)
from chimatic._core import parse_retry_after
from tests.server import LocalHTTPServer, Received

MSG = "msg_" + "0" * 31 + "1"
Answer = tuple[int, dict[str, str], bytes]


def problem(status: int, code: str, **headers: str) -> Answer:
    body = {
        "type": "about:blank",
        "title": "x",
        "status": status,
        "detail": "try later",
        "code": code,
    }
    return (
        status,
        {"content-type": "application/problem+json", **headers},
        json.dumps(body).encode(),
    )


def ok(body: object, status: int = 200) -> Answer:
    return status, {"content-type": "application/json"}, json.dumps(body).encode()


ACCEPTED = ok({"id": MSG, "status": "queued"}, 202)
CHANNELS = ok({"data": []})
EVENT = ok(
    {
        "event_id": "evt_" + "0" * 32,
        "notifications": [],
        "skipped": [],
        "fanouts": [],
        "idempotent_replayed": False,
    },
    202,
)
DROP: Answer = (0, {}, b"")


class Fake:
    """A LocalHTTPServer answering with `answers` in order (the last one again after that)."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        self.answers = list(answers)

        def respond(r: Received) -> Answer:
            n = len(self.http.received) - 1
            return self.answers[min(n, len(self.answers) - 1)]

        self.http = LocalHTTPServer(respond)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, **kw: float) -> Chimatic:
        return Chimatic(api_key="chm_test", base_url=self.http.url, sleep=self.sleep, **kw)  # type: ignore[arg-type]

    def bodies(self) -> list[dict[str, object]]:
        return [json.loads(r.body) for r in self.http.received]


@pytest.fixture
def fake(request: pytest.FixtureRequest) -> Iterator[Fake]:
    f = Fake(request.param)
    yield f
    f.http.close()


@pytest.mark.parametrize(
    "fake",
    [
        [
            problem(429, "rate_limited", **{"retry-after": "1"}),
            problem(503, "unavailable", **{"retry-after": "1"}),
            ACCEPTED,
        ]
    ],
    indirect=True,
)
def test_retry_after_is_honoured_and_the_key_kept(fake: Fake) -> None:
    with fake.client() as c:
        sent = c.notifications.create(channel_id="ch_" + "a" * 32, payload={"n": 1})
    assert sent.id == MSG
    assert len(fake.http.received) == 3
    assert fake.sleeps == [1.0, 1.0]
    keys = {b["idempotency_key"] for b in fake.bodies()}
    assert len(keys) == 1
    uuid.UUID(str(keys.pop()))  # a generated uuid4, the same on every attempt
    gaps = [b - a for a, b in zip(fake.http.arrivals, fake.http.arrivals[1:])]
    assert all(g >= 0.9 for g in gaps), gaps  # waited at least Retry-After (no upper bound)


@pytest.mark.parametrize(
    "fake",
    [[problem(500, "internal"), problem(502, "bad_gateway"), problem(504, "x"), CHANNELS]],
    indirect=True,
)
def test_exponential_backoff_with_jitter(fake: Fake) -> None:
    with fake.client(max_retries=3, retry_initial_delay=0.01) as c:
        assert c.channels.list().data == []
    assert len(fake.http.received) == 4
    # Retry n waits between half and all of 0.01 * 2**(n-1).
    for n, slept in enumerate(fake.sleeps, start=1):
        assert 0.005 * 2 ** (n - 1) <= slept <= 0.01 * 2 ** (n - 1)


@pytest.mark.parametrize(
    "fake", [[problem(503, "unavailable", **{"retry-after": "0"})]], indirect=True
)
def test_gives_up_after_max_retries(fake: Fake) -> None:
    with fake.client(max_retries=2) as c:
        with pytest.raises(ServerError) as e:
            c.channels.get("ch_" + "a" * 32)
    assert len(fake.http.received) == 3
    assert (e.value.status, e.value.code, e.value.retry_after) == (503, "unavailable", "0")


@pytest.mark.parametrize(
    "fake", [[problem(429, "rate_limited", **{"retry-after": "3600"}), CHANNELS]], indirect=True
)
def test_retry_after_beyond_the_limit_is_not_waited(fake: Fake) -> None:
    with fake.client() as c:
        with pytest.raises(RateLimitError) as e:
            c.channels.list()
    assert e.value.retry_after == "3600"
    assert len(fake.http.received) == 1 and fake.sleeps == []


@pytest.mark.parametrize(
    "fake", [[problem(503, "unavailable", **{"retry-after": "0"})]], indirect=True
)
def test_post_without_idempotency_key_is_not_retried(fake: Fake) -> None:
    with fake.client() as c:
        with pytest.raises(ServerError):
            c.channels.create(url="https://example.com/hook")
        with pytest.raises(ServerError):
            c.notifications.replay(MSG)
    assert len(fake.http.received) == 2  # one attempt each


@pytest.mark.parametrize("fake", [[DROP, CHANNELS]], indirect=True)
def test_dropped_connection_is_retried(fake: Fake) -> None:
    with fake.client(retry_initial_delay=0.01) as c:
        assert c.channels.list().data == []
    assert len(fake.http.received) == 2 and len(fake.sleeps) == 1


@pytest.mark.parametrize("fake", [[DROP, ACCEPTED]], indirect=True)
def test_dropped_connection_of_a_plain_post_raises(fake: Fake) -> None:
    with fake.client() as c:
        with pytest.raises(ChimaticConnectionError):
            c.channels.create(url="https://example.com/hook")
    assert len(fake.http.received) == 1 and fake.sleeps == []


def test_connection_refused_is_retried_then_raised() -> None:
    closed = LocalHTTPServer()
    url = closed.url
    closed.close()  # nothing listens there any more
    sleeps: list[float] = []
    with Chimatic(
        api_key="chm_test", base_url=url, retry_initial_delay=0.01, sleep=sleeps.append
    ) as c:
        with pytest.raises(ChimaticConnectionError):
            c.workspace.get()
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    "fake",
    [[problem(429, "rate_limited", **{"retry-after": "1"}), problem(503, "x"), EVENT]],
    indirect=True,
)
async def test_async_retries_keep_the_key(fake: Fake) -> None:
    async with AsyncChimatic(
        api_key="chm_test", base_url=fake.http.url, sleep=fake.async_sleep, retry_initial_delay=0.01
    ) as c:
        accepted = await c.events.send(name="order.shipped", to=["u-1"])
    assert accepted.event_id.startswith("evt_")
    assert len(fake.http.received) == 3
    assert fake.sleeps[0] == 1.0 and 0.005 <= fake.sleeps[1] <= 0.02
    assert len({b["idempotency_key"] for b in fake.bodies()}) == 1


def test_parse_retry_after() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    seconds = parse_retry_after(format_datetime(later, usegmt=True))
    assert seconds is not None and 25 <= seconds <= 31
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
