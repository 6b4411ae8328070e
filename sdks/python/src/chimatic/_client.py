"""`Chimatic` (sync) and `AsyncChimatic` (async): the same operations on httpx."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from types import TracebackType
from typing import Callable, Optional, TypeVar, Union

import anyio
import httpx

from ._core import AsyncMode, BaseClient, Op, Page, SyncMode
from ._errors import ChimaticConnectionError
from ._resources import (
    Admin,
    ApiKeys,
    Audit,
    Channels,
    Events,
    Inbox,
    Integrations,
    Notifications,
    Portal,
    Subscribers,
    Suppressions,
    Topics,
    Workflows,
    Workspace,
)

T = TypeVar("T")

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class Chimatic(BaseClient):
    """A synchronous client of the Chimatic API.

        client = Chimatic(api_key="chm_…", base_url="https://chimatic.example.com")

    `api_key` and `base_url` default to the environment variables `CHIMATIC_API_KEY` and
    `CHIMATIC_BASE_URL`. Requests that are safe to repeat (GET, PUT, DELETE, and the POSTs that
    carry idempotency keys) are retried up to `max_retries` times on 429, 5xx and connection
    errors, with exponential backoff and jitter, or after the server's `Retry-After`.
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: Union[float, httpx.Timeout, None] = None,
        max_retries: int = 2,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        http_client: Optional[httpx.Client] = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        _, headers = self._init_config(
            api_key, base_url, max_retries, retry_initial_delay, retry_max_delay
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout
        )
        self._headers = headers
        self._sleep = sleep
        self.notifications = Notifications[SyncMode](self)
        self.events = Events[SyncMode](self)
        self.channels = Channels[SyncMode](self)
        self.subscribers = Subscribers[SyncMode](self)
        self.topics = Topics[SyncMode](self)
        self.workflows = Workflows[SyncMode](self)
        self.integrations = Integrations[SyncMode](self)
        self.suppressions = Suppressions[SyncMode](self)
        self.audit = Audit[SyncMode](self)
        self.api_keys = ApiKeys[SyncMode](self)
        self.workspace = Workspace[SyncMode](self)
        self.inbox = Inbox[SyncMode](self)
        self.portal = Portal[SyncMode](self)
        self.admin = Admin[SyncMode](self)

    def _execute(self, op: Op[T]) -> T:
        retry = 0
        while True:
            request = self._http.build_request(
                op.method,
                self.base_url + op.path,
                headers=self._headers,
                **self._request_kwargs(op),
            )
            try:
                response = self._http.send(request)
            except httpx.TransportError as e:
                retry += 1
                delay = self.retry.delay_after(None, retry) if op.retryable else None
                if delay is None:
                    raise ChimaticConnectionError(f"{op.method} {op.path}: {e!r}", cause=e) from e
                self._sleep(delay)
                continue
            if not response.is_success and op.retryable:
                delay = self.retry.delay_after(response, retry + 1)
                if delay is not None:
                    retry += 1
                    response.close()
                    self._sleep(delay)
                    continue
            return self._result(op, response)

    def _paginate(self, page: Callable[[Optional[str]], Op[Page[T]]]) -> Iterator[T]:
        cursor: Optional[str] = None
        while True:
            current = self._execute(page(cursor))
            yield from current.data
            cursor = current.next_cursor
            if not cursor or not current.data:
                return

    def close(self) -> None:
        """Closes the connection pool (unless the httpx client was passed in)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Chimatic:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


async def _anyio_sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


class AsyncChimatic(BaseClient):
    """The asynchronous client: the same namespaces and operations as `Chimatic`, each
    awaitable; list iterators are `async for` iterators.

        async with AsyncChimatic(api_key="chm_…", base_url="…") as client:
            accepted = await client.events.send(name="order.shipped", to=["user-42"])
    """

    def __init__(
        self,
        api_key: Optional[str] = None,
        base_url: Optional[str] = None,
        *,
        timeout: Union[float, httpx.Timeout, None] = None,
        max_retries: int = 2,
        retry_initial_delay: float = 0.5,
        retry_max_delay: float = 8.0,
        http_client: Optional[httpx.AsyncClient] = None,
        sleep: Callable[[float], Awaitable[None]] = _anyio_sleep,
    ) -> None:
        _, headers = self._init_config(
            api_key, base_url, max_retries, retry_initial_delay, retry_max_delay
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout
        )
        self._headers = headers
        self._sleep = sleep
        self.notifications = Notifications[AsyncMode](self)
        self.events = Events[AsyncMode](self)
        self.channels = Channels[AsyncMode](self)
        self.subscribers = Subscribers[AsyncMode](self)
        self.topics = Topics[AsyncMode](self)
        self.workflows = Workflows[AsyncMode](self)
        self.integrations = Integrations[AsyncMode](self)
        self.suppressions = Suppressions[AsyncMode](self)
        self.audit = Audit[AsyncMode](self)
        self.api_keys = ApiKeys[AsyncMode](self)
        self.workspace = Workspace[AsyncMode](self)
        self.inbox = Inbox[AsyncMode](self)
        self.portal = Portal[AsyncMode](self)
        self.admin = Admin[AsyncMode](self)

    async def _execute(self, op: Op[T]) -> T:
        retry = 0
        while True:
            request = self._http.build_request(
                op.method,
                self.base_url + op.path,
                headers=self._headers,
                **self._request_kwargs(op),
            )
            try:
                response = await self._http.send(request)
            except httpx.TransportError as e:
                retry += 1
                delay = self.retry.delay_after(None, retry) if op.retryable else None
                if delay is None:
                    raise ChimaticConnectionError(f"{op.method} {op.path}: {e!r}", cause=e) from e
                await self._sleep(delay)
                continue
            if not response.is_success and op.retryable:
                delay = self.retry.delay_after(response, retry + 1)
                if delay is not None:
                    retry += 1
                    await response.aclose()
                    await self._sleep(delay)
                    continue
            return self._result(op, response)

    async def _paginate(self, page: Callable[[Optional[str]], Op[Page[T]]]) -> AsyncIterator[T]:
        cursor: Optional[str] = None
        while True:
            current = await self._execute(page(cursor))
            for item in current.data:
                yield item
            cursor = current.next_cursor
            if not cursor or not current.data:
                return

    async def aclose(self) -> None:
        """Closes the connection pool (unless the httpx client was passed in)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncChimatic:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()
