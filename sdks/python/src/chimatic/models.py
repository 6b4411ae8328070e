"""The API's request and response models, generated from its OpenAPI document."""

from ._models import *  # noqa: F403
