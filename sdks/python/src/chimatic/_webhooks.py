"""Verifying the webhooks Chimatic sends (Standard Webhooks signatures)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol, Union

from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as _StdError

from ._errors import ChimaticException

__all__ = ["WebhookVerificationError", "verify_webhook"]


class WebhookVerificationError(ChimaticException):
    """The webhook's signature, id or timestamp does not check out: reject the request."""


class _HeaderItems(Protocol):
    def items(self) -> Iterable[tuple[str, Any]]: ...


def verify_webhook(
    secret: str, body: Union[bytes, str], headers: Union[Mapping[str, str], _HeaderItems]
) -> Any:
    """Checks a webhook from Chimatic and returns its JSON payload.

    `secret` is the channel's (or webhook integration's) signing secret, `whsec_…`; `body` the
    raw request body exactly as received (bytes, before any JSON parsing); `headers` the
    request's headers (any mapping, or an object with `.items()` such as
    `http.server.BaseHTTPRequestHandler.headers`), of which `webhook-id`, `webhook-timestamp`
    and `webhook-signature` are used. Raises `WebhookVerificationError` if the signature does
    not match or the timestamp is more than five minutes away from now (a replay).
    """
    plain = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        wh = Webhook(secret)
    except Exception as e:  # a secret that is not base64, or empty
        raise WebhookVerificationError(f"invalid signing secret: {e}") from e
    try:
        return wh.verify(body, plain)
    except _StdError as e:
        raise WebhookVerificationError(str(e)) from e
    except ValueError as e:  # the body is not JSON (json.JSONDecodeError)
        raise WebhookVerificationError(f"the body is not JSON: {e}") from e
