"""What the sync and async clients share: operations as data, retry policy, response parsing,
and the descriptors that bind each operation once to both clients.

An operation is a function that builds an `Op` (method, path, query, body, how to read the
answer, whether it may be retried). The resource namespaces bind these functions with
`endpoint(...)` or `paginated(...)`; the descriptor types the bound method as returning the model
on `Chimatic` and an awaitable of it on `AsyncChimatic`, so each operation is written once.
"""

from __future__ import annotations

import email.utils
import functools
import random
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Generic,
    Optional,
    Protocol,
    TypeVar,
    Union,
    final,
    overload,
)
from urllib.parse import quote

import httpx
from pydantic import BaseModel
from typing_extensions import ParamSpec

from ._errors import ChimaticError

if TYPE_CHECKING:
    from ._client import AsyncChimatic, Chimatic

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")

QueryValue = Union[str, int, bool]

#: Methods that are safe to send twice; a POST is only when it carries an idempotency key.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Answers worth another try (with backoff, or after the server's Retry-After).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Op(Generic[T_co]):
    """One request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T_co]
    query: Mapping[str, Optional[QueryValue]] = field(default_factory=dict)
    body: Any = None
    #: Set for POSTs whose body carries idempotency keys: they are then safe to retry.
    idempotent: bool = False

    @property
    def retryable(self) -> bool:
        return self.method in IDEMPOTENT_METHODS or self.idempotent


def path(template: str, **ids: str) -> str:
    """`template` with each `{name}` replaced by its id, percent-encoded."""
    return template.format(**{k: quote(v, safe="") for k, v in ids.items()})


def model(cls: type[M]) -> Callable[[httpx.Response], M]:
    """Reads a JSON answer as `cls`."""

    def parse(response: httpx.Response) -> M:
        return cls.model_validate_json(response.content)

    return parse


def no_content(response: httpx.Response) -> None:
    """Reads a 204 answer."""
    return None


def text(response: httpx.Response) -> str:
    """Reads an answer as text (NDJSON, CSV)."""
    return response.text


def body_of(m: BaseModel) -> Any:
    """A request model as JSON, without the fields left unset."""
    return m.model_dump(mode="json", by_alias=True, exclude_none=True)


# ---- retry policy ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter: before retry n (1-based) the client waits a random
    time between half and all of `min(max_delay, initial_delay * 2**(n-1))`, or the server's
    `Retry-After` when it sends one (up to `max_retry_after`; beyond that it gives up)."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def backoff(self, retry: int) -> float:
        base = min(self.max_delay, self.initial_delay * 2.0 ** (retry - 1))
        return base * (0.5 + random.random() / 2)

    def delay_after(self, response: Optional[httpx.Response], retry: int) -> Optional[float]:
        """How long to wait before retry `retry`, or None to stop (the answer is final)."""
        if retry > self.max_retries:
            return None
        if response is None:  # a transport error
            return self.backoff(retry)
        if response.status_code not in RETRY_STATUSES:
            return None
        after = parse_retry_after(response.headers.get("retry-after"))
        if after is None:
            return self.backoff(retry)
        if after > self.max_retry_after:
            return None
        return after


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """`Retry-After` as seconds from now: delay-seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---- the part of a client the operations need -----------------------------------------------


class BaseClient:
    """Configuration and the request/response steps both clients share."""

    base_url: str
    retry: RetryPolicy

    def _init_config(
        self,
        api_key: Optional[str],
        base_url: Optional[str],
        max_retries: int,
        retry_initial_delay: float,
        retry_max_delay: float,
    ) -> tuple[str, dict[str, str]]:
        import os

        from ._version import __version__

        key = api_key if api_key is not None else os.environ.get("CHIMATIC_API_KEY")
        if not key:
            raise ValueError("an API key is required: pass api_key= or set CHIMATIC_API_KEY")
        url = base_url if base_url is not None else os.environ.get("CHIMATIC_BASE_URL")
        if not url:
            url = "http://127.0.0.1:8080"
        self.base_url = url.rstrip("/")
        self.retry = RetryPolicy(
            max_retries=max_retries, initial_delay=retry_initial_delay, max_delay=retry_max_delay
        )
        headers = {
            "authorization": f"Bearer {key}",
            "accept": "application/json",
            "user-agent": f"chimatic-python/{__version__}",
        }
        return self.base_url, headers

    @staticmethod
    def _request_kwargs(op: Op[Any]) -> dict[str, Any]:
        query = {k: _query_value(v) for k, v in op.query.items() if v is not None}
        kwargs: dict[str, Any] = {"params": query}
        if op.body is not None:
            kwargs["json"] = op.body
        return kwargs

    @staticmethod
    def _result(op: Op[T], response: httpx.Response) -> T:
        if not response.is_success:
            raise ChimaticError.from_response(response)
        return op.parse(response)


def _query_value(v: QueryValue) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ---- binding operations to both clients -----------------------------------------------------


@final
class SyncMode:
    """Marks a resource namespace of the sync client."""


@final
class AsyncMode:
    """Marks a resource namespace of the async client."""


ModeT = TypeVar("ModeT", SyncMode, AsyncMode)


class Resource(Generic[ModeT]):
    """A namespace of operations (`client.notifications`, ...), bound to one client."""

    def __init__(self, client: Union[Chimatic, AsyncChimatic]) -> None:
        self._client = client


class endpoint(Generic[P, T]):
    """Binds an operation: `create = endpoint(ops.notifications_create)` gives
    `client.notifications.create(...) -> T`, and on the async client an awaitable of T."""

    def __init__(self, build: Callable[P, Op[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__

    @overload
    def __get__(self, obj: None, owner: Any) -> endpoint[P, T]: ...
    @overload
    def __get__(self, obj: Resource[SyncMode], owner: Any) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: Resource[AsyncMode], owner: Any) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, obj: Optional[Resource[Any]], owner: Any) -> Any:
        if obj is None:
            return self
        build = self._build
        execute = obj._client._execute

        @functools.wraps(build)
        def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            return execute(build(*args, **kwargs))

        return call


class Page(Protocol[T_co]):
    """A list answer with a cursor: `data`, and `next_cursor` (absent on the last page)."""

    @property
    def data(self) -> Sequence[T_co]: ...
    @property
    def next_cursor(self) -> Optional[str]: ...


class paginated(Generic[P, T]):
    """Binds a list operation as an iterator over all its items, page after page:
    `iterate = paginated(ops.subscribers_list, cursor="after")`. The named keyword argument of
    the operation takes each page's `next_cursor` for the next request."""

    def __init__(self, build: Callable[P, Op[Page[T]]], *, cursor: str) -> None:
        self._build = build
        self._cursor = cursor
        self.__doc__ = f"Iterates over every item of `{build.__name__}`, fetching page after page."

    @overload
    def __get__(self, obj: None, owner: Any) -> paginated[P, T]: ...
    @overload
    def __get__(self, obj: Resource[SyncMode], owner: Any) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, obj: Resource[AsyncMode], owner: Any) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, obj: Optional[Resource[Any]], owner: Any) -> Any:
        if obj is None:
            return self
        build = self._build
        cursor = self._cursor
        client = obj._client

        def call(*args: P.args, **kwargs: P.kwargs) -> Any:
            def page(after: Optional[str]) -> Op[Page[T]]:
                if after is not None:
                    kwargs[cursor] = after
                return build(*args, **kwargs)

            return client._paginate(page)

        return call
