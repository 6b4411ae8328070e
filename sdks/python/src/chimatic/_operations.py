"""Every API operation, defined once: a function of the caller's arguments that builds the
request (`Op`). Named after the OpenAPI `operationId`; bound to `Chimatic` and `AsyncChimatic`
in `_resources.py`. Request bodies go through the generated request models, so a wrong field
fails here (pydantic.ValidationError) before anything is sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Dict, Literal, Optional, Union

from pydantic import TypeAdapter

from . import _models as m
from ._core import Op, body_of, model, no_content, path, text

JsonObject = Mapping[str, Any]


def new_idempotency_key() -> str:
    """A fresh idempotency key (a random UUID), as the client makes one when none is given."""
    return str(uuid.uuid4())


# ---- notifications --------------------------------------------------------------------------


def notifications_create(
    channel_id: str, payload: JsonObject, *, idempotency_key: Optional[str] = None
) -> Op[m.NotificationAccepted]:
    """Queues a notification to a webhook channel (`POST /v1/notifications`, 202).

    Without `idempotency_key` a random one is generated, so a retried request (after a
    timeout or a 5xx) cannot queue the notification twice; pass your own to make re-sends from
    your side safe as well (honoured for 24 hours)."""
    body = m.CreateNotification.model_validate(
        {
            "channel_id": channel_id,
            "payload": payload,
            "idempotency_key": idempotency_key or new_idempotency_key(),
        }
    )
    return Op(
        "POST",
        "/v1/notifications",
        model(m.NotificationAccepted),
        body=body_of(body),
        idempotent=True,
    )


def notifications_create_batch(
    items: Sequence[Union[m.CreateNotification, JsonObject]],
) -> Op[m.BatchAccepted]:
    """Queues 1 to 1000 notifications in one transaction (`POST /v1/notifications/batch`).

    All or nothing: an invalid item fails the whole batch with a 422 whose `errors` name the
    items. Each item without an `idempotency_key` gets a generated one."""
    validated = []
    for item in items:
        n = (
            item.model_copy()
            if isinstance(item, m.CreateNotification)
            else m.CreateNotification.model_validate(item)
        )
        if not n.idempotency_key:
            n.idempotency_key = new_idempotency_key()
        validated.append(n)
    body = m.CreateNotificationBatch(items=validated)
    return Op(
        "POST",
        "/v1/notifications/batch",
        model(m.BatchAccepted),
        body=body_of(body),
        idempotent=True,
    )


def notifications_get(id: str) -> Op[m.NotificationView]:
    """A notification's status, masked payload and every delivery attempt."""
    return Op("GET", path("/v1/notifications/{id}", id=id), model(m.NotificationView))


def notifications_replay(id: str) -> Op[m.NotificationAccepted]:
    """Re-queues a `failed` notification with a fresh retry schedule."""
    return Op("POST", path("/v1/notifications/{id}/replay", id=id), model(m.NotificationAccepted))


# ---- events ---------------------------------------------------------------------------------


def events_send(
    name: str,
    to: Sequence[Union[str, m.TopicRef, Mapping[str, str]]],
    *,
    data: Optional[JsonObject] = None,
    idempotency_key: Optional[str] = None,
) -> Op[m.EventAccepted]:
    """Sends an event to 1 to 100 recipients (`POST /v1/events`): subscribers by your
    `external_id`, or topics as `{"topic": "key"}`. The workflow whose key is `name` decides
    what is sent. Without `idempotency_key` a random one is generated (kept across retries)."""
    body = m.SendEvent.model_validate(
        {
            "name": name,
            "to": [t.model_dump() if isinstance(t, m.TopicRef) else t for t in to],
            "data": data,
            "idempotency_key": idempotency_key or new_idempotency_key(),
        }
    )
    return Op("POST", "/v1/events", model(m.EventAccepted), body=body_of(body), idempotent=True)


# ---- channels -------------------------------------------------------------------------------


def channels_create(
    url: str,
    *,
    type: m.ChannelType = "webhook",
    tls: Optional[Union[m.ChannelTls, JsonObject]] = None,
) -> Op[m.ChannelCreated]:
    """Creates a webhook channel; the answer carries its signing secret, shown only once."""
    body = m.CreateChannel.model_validate({"type": type, "url": url, "tls": tls})
    return Op("POST", "/v1/channels", model(m.ChannelCreated), body=body_of(body))


def channels_list(*, after: Optional[str] = None, limit: Optional[int] = None) -> Op[m.ChannelList]:
    """One page of channels; pass the page's `next_cursor` as `after` for the next."""
    return Op("GET", "/v1/channels", model(m.ChannelList), query={"after": after, "limit": limit})


def channels_get(id: str) -> Op[m.ChannelView]:
    return Op("GET", path("/v1/channels/{id}", id=id), model(m.ChannelView))


def channels_deactivate(id: str) -> Op[m.ChannelDeactivated]:
    """Takes a channel out of use at once; its queued notifications are cancelled."""
    return Op("POST", path("/v1/channels/{id}/deactivate", id=id), model(m.ChannelDeactivated))


def channels_reactivate(id: str) -> Op[m.ChannelView]:
    """Puts a deactivated channel back in use (before its `purge_at`)."""
    return Op("POST", path("/v1/channels/{id}/reactivate", id=id), model(m.ChannelView))


# ---- subscribers ----------------------------------------------------------------------------

_subscriber_channel = TypeAdapter[m.CreateSubscriberChannel](m.CreateSubscriberChannel)


def subscribers_identify(
    external_id: str, *, attributes: Optional[JsonObject] = None
) -> Op[m.SubscriberView]:
    """Creates a subscriber, or replaces the attributes of the one with this `external_id`."""
    body = m.IdentifySubscriber.model_validate(
        {"external_id": external_id, "attributes": attributes}
    )
    # PUT-like: identifying twice leaves the same state, so it is safe to retry.
    return Op(
        "POST", "/v1/subscribers", model(m.SubscriberView), body=body_of(body), idempotent=True
    )


def subscribers_get(id: str) -> Op[m.SubscriberView]:
    return Op("GET", path("/v1/subscribers/{id}", id=id), model(m.SubscriberView))


def subscribers_update(id: str, *, attributes: JsonObject) -> Op[m.SubscriberView]:
    """Replaces the subscriber's attributes."""
    body = m.UpdateSubscriber.model_validate({"attributes": attributes})
    return Op(
        "PATCH", path("/v1/subscribers/{id}", id=id), model(m.SubscriberView), body=body_of(body)
    )


def subscribers_erase(id: str) -> Op[m.ErasureReceipt]:
    """GDPR erasure: destroys the subscriber's key, then everything of it."""
    return Op("DELETE", path("/v1/subscribers/{id}", id=id), model(m.ErasureReceipt))


def subscribers_list(
    *, after: Optional[str] = None, limit: Optional[int] = None
) -> Op[m.SubscriberList]:
    """One page of subscribers (`limit` 1 to 200); `next_cursor` goes into `after`."""
    return Op(
        "GET", "/v1/subscribers", model(m.SubscriberList), query={"after": after, "limit": limit}
    )


def subscribers_add_channel(
    id: str,
    type: m.ChannelKind,
    *,
    address: Optional[str] = None,
    phone: Optional[str] = None,
    url: Optional[str] = None,
    webhook_url: Optional[str] = None,
    channel_id: Optional[str] = None,
) -> Op[m.SubscriberChannelView]:
    """Adds a way to reach the subscriber: `email` (address), `sms` (phone, E.164), `slack`
    (webhook_url or channel_id), `webhook` (url) or `inapp`."""
    fields = {
        "type": type,
        "address": address,
        "phone": phone,
        "url": url,
        "webhook_url": webhook_url,
        "channel_id": channel_id,
    }
    body = _subscriber_channel.validate_python({k: v for k, v in fields.items() if v is not None})
    return Op(
        "POST",
        path("/v1/subscribers/{id}/channels", id=id),
        model(m.SubscriberChannelView),
        body=_subscriber_channel.dump_python(body, mode="json", exclude_none=True),
    )


def subscribers_list_channels(id: str) -> Op[m.SubscriberChannelList]:
    return Op("GET", path("/v1/subscribers/{id}/channels", id=id), model(m.SubscriberChannelList))


def subscribers_remove_channel(id: str, channel_id: str) -> Op[None]:
    return Op(
        "DELETE",
        path("/v1/subscribers/{id}/channels/{channel_id}", id=id, channel_id=channel_id),
        no_content,
    )


def subscribers_preferences(id: str) -> Op[m.Preferences]:
    """The subscriber's opt-outs by channel type and by workflow category."""
    return Op("GET", path("/v1/subscribers/{id}/preferences", id=id), model(m.Preferences))


def subscribers_set_preferences(
    id: str,
    *,
    channels: Optional[Mapping[m.ChannelKind, bool]] = None,
    categories: Optional[Mapping[str, bool]] = None,
) -> Op[m.Preferences]:
    """Replaces the subscriber's opt-outs, e.g. `channels={"sms": False}`."""
    body = m.Preferences.model_validate({"channels": channels, "categories": categories})
    return Op(
        "PUT",
        path("/v1/subscribers/{id}/preferences", id=id),
        model(m.Preferences),
        body=body_of(body),
    )


def subscribers_inbox(
    id: str,
    *,
    before: Optional[str] = None,
    limit: Optional[int] = None,
    archived: Optional[bool] = None,
) -> Op[m.Inbox]:
    """One page of the subscriber's in-app messages, newest first; `next_cursor` goes into
    `before`."""
    return Op(
        "GET",
        path("/v1/subscribers/{id}/inbox", id=id),
        model(m.Inbox),
        query={"before": before, "limit": limit, "archived": archived},
    )


def subscribers_mark_inbox(
    id: str, message_id: str, *, read: Optional[bool] = None, archived: Optional[bool] = None
) -> Op[m.InboxMessage]:
    body = m.MarkInboxMessage.model_validate({"read": read, "archived": archived})
    return Op(
        "PATCH",
        path("/v1/subscribers/{id}/inbox/{message_id}", id=id, message_id=message_id),
        model(m.InboxMessage),
        body=body_of(body),
    )


def subscribers_issue_token(
    id: str, *, ttl_seconds: Optional[int] = None, scopes: Optional[Sequence[str]] = None
) -> Op[m.SubscriberToken]:
    """A subscriber token (`sbt_…`) for your front end: with `inbox` (the default) it reads and
    marks this subscriber's inbox (`/v1/inbox`), with `portal` it manages their webhook
    endpoints (`/v1/portal/…`), nothing else."""
    body = m.IssueToken.model_validate(
        {"ttl_seconds": ttl_seconds, "scopes": list(scopes) if scopes is not None else None}
    )
    return Op(
        "POST",
        path("/v1/subscribers/{id}/token", id=id),
        model(m.SubscriberToken),
        body=body_of(body),
    )


# ---- the inbox, with a subscriber token -----------------------------------------------------


def inbox_list(
    *, before: Optional[str] = None, limit: Optional[int] = None, archived: Optional[bool] = None
) -> Op[m.Inbox]:
    """The token's subscriber's inbox (a client made with `api_key="sbt_…"`)."""
    return Op(
        "GET",
        "/v1/inbox",
        model(m.Inbox),
        query={"before": before, "limit": limit, "archived": archived},
    )


def inbox_mark(
    message_id: str, *, read: Optional[bool] = None, archived: Optional[bool] = None
) -> Op[m.InboxMessage]:
    body = m.MarkInboxMessage.model_validate({"read": read, "archived": archived})
    return Op(
        "PATCH",
        path("/v1/inbox/{message_id}", message_id=message_id),
        model(m.InboxMessage),
        body=body_of(body),
    )


def inbox_read_all() -> Op[m.InboxRead]:
    """Marks every unread message of the token's subscriber read."""
    return Op("POST", "/v1/inbox/read-all", model(m.InboxRead))


def inbox_preferences() -> Op[m.Preferences]:
    """The token's subscriber's own opt-outs."""
    return Op("GET", "/v1/inbox/preferences", model(m.Preferences))


def inbox_set_preferences(
    *, channels: Optional[Dict[str, bool]] = None, categories: Optional[Dict[str, bool]] = None
) -> Op[m.Preferences]:
    """Replaces the token's subscriber's own opt-outs."""
    body = m.Preferences.model_validate({"channels": channels or {}, "categories": categories or {}})
    return Op("PUT", "/v1/inbox/preferences", model(m.Preferences), body=body_of(body))


# ---- the webhook portal, with a subscriber token (`portal` scope) ---------------------------


def portal_list() -> Op[m.EndpointList]:
    """The token's subscriber's webhook endpoints, URLs masked."""
    return Op("GET", "/v1/portal/endpoints", model(m.EndpointList))


def portal_create(url: str) -> Op[m.EndpointWithSecret]:
    """Adds a webhook endpoint; its signing secret (`whsec_…`) is in this answer only."""
    body = m.CreateEndpoint.model_validate({"url": url})
    return Op("POST", "/v1/portal/endpoints", model(m.EndpointWithSecret), body=body_of(body))


def portal_delete(id: str) -> Op[None]:
    return Op("DELETE", path("/v1/portal/endpoints/{id}", id=id), no_content)


def portal_rotate_secret(id: str, *, overlap_seconds: Optional[int] = None) -> Op[m.EndpointWithSecret]:
    """A new signing secret (in this answer only); the old one keeps signing for the overlap."""
    body = m.RotateSecret.model_validate({"overlap_seconds": overlap_seconds})
    return Op(
        "POST",
        path("/v1/portal/endpoints/{id}/rotate-secret", id=id),
        model(m.EndpointWithSecret),
        body=body_of(body),
    )


def portal_disable(id: str) -> Op[m.Endpoint]:
    return Op("POST", path("/v1/portal/endpoints/{id}/disable", id=id), model(m.Endpoint))


def portal_enable(id: str) -> Op[m.Endpoint]:
    return Op("POST", path("/v1/portal/endpoints/{id}/enable", id=id), model(m.Endpoint))


def portal_deliveries(
    id: str, *, before: Optional[str] = None, limit: Optional[int] = None
) -> Op[m.DeliveryList]:
    """An endpoint's recent deliveries with their attempts, newest first."""
    return Op(
        "GET",
        path("/v1/portal/endpoints/{id}/deliveries", id=id),
        model(m.DeliveryList),
        query={"before": before, "limit": limit},
    )


def portal_replay(id: str, message_id: str) -> Op[m.NotificationAccepted]:
    """Sends a failed delivery of the endpoint again."""
    return Op(
        "POST",
        path("/v1/portal/endpoints/{id}/deliveries/{message_id}/replay", id=id, message_id=message_id),
        model(m.NotificationAccepted),
    )


# ---- topics ---------------------------------------------------------------------------------


def topics_create(key: str) -> Op[m.TopicView]:
    body = m.CreateTopic.model_validate({"key": key})
    return Op("POST", "/v1/topics", model(m.TopicView), body=body_of(body))


def topics_list() -> Op[m.TopicList]:
    return Op("GET", "/v1/topics", model(m.TopicList))


def topics_get(id: str) -> Op[m.TopicView]:
    return Op("GET", path("/v1/topics/{id}", id=id), model(m.TopicView))


def topics_add(id: str, subscriber_ids: Sequence[str]) -> Op[m.MembersChanged]:
    """Adds 1 to 1000 subscribers (`sub_…`) to the topic."""
    body = m.TopicMembers.model_validate({"subscriber_ids": list(subscriber_ids)})
    # Adding members already present changes nothing: safe to retry.
    return Op(
        "POST",
        path("/v1/topics/{id}/subscribers", id=id),
        model(m.MembersChanged),
        body=body_of(body),
        idempotent=True,
    )


def topics_remove(id: str, subscriber_ids: Sequence[str]) -> Op[m.MembersChanged]:
    body = m.TopicMembers.model_validate({"subscriber_ids": list(subscriber_ids)})
    return Op(
        "POST",
        path("/v1/topics/{id}/subscribers/remove", id=id),
        model(m.MembersChanged),
        body=body_of(body),
        idempotent=True,
    )


def topics_members(
    id: str, *, after: Optional[str] = None, limit: Optional[int] = None
) -> Op[m.MemberList]:
    """One page of the topic's member ids."""
    return Op(
        "GET",
        path("/v1/topics/{id}/subscribers", id=id),
        model(m.MemberList),
        query={"after": after, "limit": limit},
    )


# ---- workflows ------------------------------------------------------------------------------

Steps = Sequence[Union[m.WorkflowStep, JsonObject]]


def _steps(steps: Steps) -> list[Any]:
    return [s.model_dump(exclude_none=True) if isinstance(s, m.WorkflowStep) else s for s in steps]


def workflows_create(
    key: str, steps: Steps, *, category: Optional[str] = None
) -> Op[m.WorkflowView]:
    """A workflow for the event `key`: 1 to 10 steps, one per channel type."""
    body = m.CreateWorkflow.model_validate(
        {"key": key, "steps": _steps(steps), "category": category}
    )
    return Op("POST", "/v1/workflows", model(m.WorkflowView), body=body_of(body))


def workflows_list() -> Op[m.WorkflowList]:
    return Op("GET", "/v1/workflows", model(m.WorkflowList))


def workflows_get(id: str) -> Op[m.WorkflowView]:
    return Op("GET", path("/v1/workflows/{id}", id=id), model(m.WorkflowView))


def workflows_replace(
    id: str, steps: Steps, *, category: Optional[str] = None
) -> Op[m.WorkflowView]:
    body = m.ReplaceWorkflow.model_validate({"steps": _steps(steps), "category": category})
    return Op("PUT", path("/v1/workflows/{id}", id=id), model(m.WorkflowView), body=body_of(body))


def workflows_delete(id: str) -> Op[None]:
    return Op("DELETE", path("/v1/workflows/{id}", id=id), no_content)


def workflows_preview(
    id: str, *, data: Optional[JsonObject] = None, subscriber: Optional[JsonObject] = None
) -> Op[m.Preview]:
    """Renders every step with sample `data` and `subscriber` attributes."""
    body = m.PreviewRequest.model_validate({"data": data, "subscriber": subscriber})
    return Op(
        "POST",
        path("/v1/workflows/{id}/preview", id=id),
        model(m.Preview),
        body=body_of(body),
        idempotent=True,
    )


# ---- integrations ---------------------------------------------------------------------------


def integrations_create(
    kind: m.IntegrationKind,
    name: str,
    *,
    settings: Optional[JsonObject] = None,
    credentials: Optional[JsonObject] = None,
) -> Op[m.IntegrationCreated]:
    body = m.CreateIntegration.model_validate(
        {"kind": kind, "name": name, "settings": settings, "credentials": credentials}
    )
    return Op("POST", "/v1/integrations", model(m.IntegrationCreated), body=body_of(body))


def integrations_list() -> Op[m.IntegrationList]:
    return Op("GET", "/v1/integrations", model(m.IntegrationList))


def integrations_get(id: str) -> Op[m.IntegrationView]:
    return Op("GET", path("/v1/integrations/{id}", id=id), model(m.IntegrationView))


def integrations_update(
    id: str,
    *,
    name: Optional[str] = None,
    settings: Optional[JsonObject] = None,
    credentials: Optional[JsonObject] = None,
) -> Op[m.IntegrationView]:
    body = m.UpdateIntegration.model_validate(
        {"name": name, "settings": settings, "credentials": credentials}
    )
    return Op(
        "PATCH", path("/v1/integrations/{id}", id=id), model(m.IntegrationView), body=body_of(body)
    )


def integrations_delete(id: str) -> Op[None]:
    return Op("DELETE", path("/v1/integrations/{id}", id=id), no_content)


def integrations_check(id: str) -> Op[m.CheckResult]:
    """Runs the integration's health check now."""
    return Op("POST", path("/v1/integrations/{id}/check", id=id), model(m.CheckResult))


def integrations_inbound_history(
    id: str, *, before: Optional[str] = None, limit: Optional[int] = None
) -> Op[m.InboundEventList]:
    """One page of the provider webhooks received for the integration, newest first."""
    return Op(
        "GET",
        path("/v1/integrations/{id}/inbound", id=id),
        model(m.InboundEventList),
        query={"before": before, "limit": limit},
    )


def integrations_oauth_start(
    provider: m.OAuthProvider, name: str, redirect_uri: str, *, send_as: Optional[str] = None
) -> Op[m.ConnectionStarted]:
    body = m.StartConnection.model_validate(
        {"name": name, "redirect_uri": redirect_uri, "send_as": send_as}
    )
    return Op(
        "POST",
        path("/v1/integrations/oauth/{provider}/start", provider=provider),
        model(m.ConnectionStarted),
        body=body_of(body),
    )


def integrations_oauth_finish(
    provider: m.OAuthProvider, state: str, code: str
) -> Op[m.IntegrationView]:
    body = m.FinishConnection.model_validate({"state": state, "code": code})
    return Op(
        "POST",
        path("/v1/integrations/oauth/{provider}/finish", provider=provider),
        model(m.IntegrationView),
        body=body_of(body),
    )


# ---- suppressions ---------------------------------------------------------------------------


def suppressions_list(
    *, after: Optional[str] = None, limit: Optional[int] = None
) -> Op[m.SuppressionList]:
    return Op(
        "GET", "/v1/suppressions", model(m.SuppressionList), query={"after": after, "limit": limit}
    )


def suppressions_create(type: m.ChannelKind, address: str) -> Op[m.SuppressionView]:
    """Puts an address (`email`) or phone number (`sms`) on the suppression list."""
    body = m.CreateSuppression.model_validate({"type": type, "address": address})
    return Op("POST", "/v1/suppressions", model(m.SuppressionView), body=body_of(body))


def suppressions_delete(id: str) -> Op[None]:
    return Op("DELETE", path("/v1/suppressions/{id}", id=id), no_content)


# ---- audit ----------------------------------------------------------------------------------


def audit_list(
    *,
    from_: Optional[str] = None,
    to: Optional[str] = None,
    action: Optional[str] = None,
    actor: Optional[str] = None,
    limit: Optional[int] = None,
    cursor: Optional[str] = None,
) -> Op[m.AuditPage]:
    """One page of the audit log, newest first (`from_`/`to`: RFC 3339; `limit` 1 to 500);
    the page's `next_cursor` goes into `cursor`."""
    return Op(
        "GET",
        "/v1/audit",
        model(m.AuditPage),
        query={
            "from": from_,
            "to": to,
            "action": action,
            "actor": actor,
            "limit": limit,
            "cursor": cursor,
        },
    )


def audit_export(*, format: Optional[Literal["jsonl", "csv"]] = None) -> Op[str]:
    """The whole audit log as text: JSON lines (default; verify with `chimatic audit verify`)
    or CSV."""
    return Op("GET", "/v1/audit/export", text, query={"format": format})


def audit_public_key() -> Op[m.AuditPublicKey]:
    return Op("GET", "/v1/audit/public-key", model(m.AuditPublicKey))


# ---- API keys -------------------------------------------------------------------------------


def api_keys_create(name: str, scopes: Sequence[m.Scope]) -> Op[m.ApiKeyCreated]:
    """A new API key with these scopes; the key itself is in this answer only."""
    body = m.CreateApiKey.model_validate({"name": name, "scopes": list(scopes)})
    return Op("POST", "/v1/api-keys", model(m.ApiKeyCreated), body=body_of(body))


def api_keys_list() -> Op[m.ApiKeyList]:
    return Op("GET", "/v1/api-keys", model(m.ApiKeyList))


def api_keys_revoke(id: str) -> Op[None]:
    return Op("DELETE", path("/v1/api-keys/{id}", id=id), no_content)


# ---- workspace ------------------------------------------------------------------------------


def workspace_get() -> Op[m.WorkspaceView]:
    return Op("GET", "/v1/workspace", model(m.WorkspaceView))


def workspace_delete(confirm: str) -> Op[m.WorkspaceDeleted]:
    """Deletes the workspace and everything of it, for good (the owner key only); `confirm`
    is the workspace's id."""
    body = m.DeleteWorkspace.model_validate({"confirm": confirm})
    return Op("DELETE", "/v1/workspace", model(m.WorkspaceDeleted), body=body_of(body))


def workspace_stats(*, days: Optional[int] = None) -> Op[m.DeliveryStatsView]:
    """Delivery analytics per UTC day (`days` 1 to 90, default 7)."""
    return Op("GET", "/v1/stats", model(m.DeliveryStatsView), query={"days": days})


def workspace_use_kms(
    endpoint: str,
    region: str,
    key_id: str,
    access_key_id: str,
    secret_access_key: str,
    *,
    session_token: Optional[str] = None,
) -> Op[m.WorkspaceKmsInUse]:
    body = m.UseWorkspaceKms.model_validate(
        {
            "endpoint": endpoint,
            "region": region,
            "key_id": key_id,
            "access_key_id": access_key_id,
            "secret_access_key": secret_access_key,
            "session_token": session_token,
        }
    )
    return Op("PUT", "/v1/workspace/kms", model(m.WorkspaceKmsInUse), body=body_of(body))


def workspace_rotate_dek() -> Op[m.DekRotated]:
    return Op("POST", "/v1/workspace/rotate-dek", model(m.DekRotated))


# ---- operator -------------------------------------------------------------------------------


def admin_freeze(id: str) -> Op[m.FreezeState]:
    """Freezes a workspace (a client made with the operator token as `api_key`)."""
    return Op("POST", path("/v1/admin/workspaces/{id}/freeze", id=id), model(m.FreezeState))


def admin_unfreeze(id: str) -> Op[m.FreezeState]:
    return Op("POST", path("/v1/admin/workspaces/{id}/unfreeze", id=id), model(m.FreezeState))
