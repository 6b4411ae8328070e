"""The Python SDK of Chimatic, the self-hosted notification engine.

from chimatic import Chimatic
client = Chimatic(api_key="chm_…", base_url="http://127.0.0.1:8080")
client.events.send(name="order.shipped", to=["user-42"], data={"order": "o-1042"})
"""

from ._client import AsyncChimatic, Chimatic
from ._core import Op, RetryPolicy
from ._errors import (
    AuthenticationError,
    BadRequestError,
    ChimaticConnectionError,
    ChimaticError,
    ChimaticException,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)
from ._operations import new_idempotency_key
from ._version import __version__
from ._webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncChimatic",
    "AuthenticationError",
    "BadRequestError",
    "Chimatic",
    "ChimaticConnectionError",
    "ChimaticError",
    "ChimaticException",
    "ConflictError",
    "NotFoundError",
    "Op",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "UnprocessableEntityError",
    "WebhookVerificationError",
    "__version__",
    "new_idempotency_key",
    "verify_webhook",
]
