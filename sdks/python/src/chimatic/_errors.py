"""The exceptions the client raises."""

from __future__ import annotations

import json
from typing import Any, Optional

import httpx

from ._models import ItemError

__all__ = [
    "ChimaticException",
    "ChimaticError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "ServerError",
    "ChimaticConnectionError",
]


class ChimaticException(Exception):
    """Base of everything this package raises (except argument errors such as pydantic's)."""


class ChimaticError(ChimaticException):
    """A non-2xx answer from the server, read from its `application/problem+json` body.

    `code` is the stable machine-readable code (`not_found`, `invalid_body`,
    `insufficient_scope`, ...); `errors` lists per-item problems of a batch request.
    """

    status: int
    code: str
    detail: str
    title: str
    type: str
    errors: list[ItemError]
    headers: httpx.Headers
    body: Any

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str = "",
        type: str = "about:blank",
        errors: Optional[list[ItemError]] = None,
        headers: Optional[httpx.Headers] = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title
        self.type = type
        self.errors = errors or []
        self.headers = headers if headers is not None else httpx.Headers()
        self.body = body

    @property
    def retry_after(self) -> Optional[str]:
        """The `Retry-After` header of the answer (429 and 503), as sent."""
        value = self.headers.get("retry-after")
        return None if value is None else str(value)

    @classmethod
    def from_response(cls, response: httpx.Response) -> ChimaticError:
        """The error a non-2xx response stands for, of the subclass its status names."""
        status = response.status_code
        body: Any = None
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        kind = _class_for(status)
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            raw_errors = body.get("errors")
            errors = (
                [ItemError.model_validate(e) for e in raw_errors]
                if isinstance(raw_errors, list)
                else []
            )
            return kind(
                status,
                body["code"],
                str(body.get("detail", "")),
                title=str(body.get("title", "")),
                type=str(body.get("type", "about:blank")),
                errors=errors,
                headers=response.headers,
                body=body,
            )
        # Not a problem document (a proxy in between, a crash): keep what there is.
        reason = response.reason_phrase or "error"
        text = response.text[:500] if body is None else json.dumps(body)[:500]
        return kind(
            status,
            f"http_{status}",
            text or reason,
            title=reason,
            headers=response.headers,
            body=body if body is not None else response.text,
        )


class BadRequestError(ChimaticError):
    """400: malformed JSON, an invalid id or query."""


class AuthenticationError(ChimaticError):
    """401: no key, or an unknown or revoked one."""


class PermissionDeniedError(ChimaticError):
    """403: the key lacks the scope (`insufficient_scope`), or the action is the owner's."""


class NotFoundError(ChimaticError):
    """404: no such resource in this workspace."""


class ConflictError(ChimaticError):
    """409."""


class UnprocessableEntityError(ChimaticError):
    """422: the request is well-formed but invalid; see `code` and `errors`."""


class RateLimitError(ChimaticError):
    """429: see `retry_after`."""


class ServerError(ChimaticError):
    """5xx."""


def _class_for(status: int) -> type[ChimaticError]:
    if status >= 500:
        return ServerError
    return {
        400: BadRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        422: UnprocessableEntityError,
        429: RateLimitError,
    }.get(status, ChimaticError)


class ChimaticConnectionError(ChimaticException):
    """The server could not be reached or the connection broke (after the retries allowed)."""

    def __init__(self, message: str, *, cause: BaseException) -> None:
        super().__init__(message)
        self.__cause__ = cause
