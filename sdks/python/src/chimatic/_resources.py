"""The namespaces of both clients. Each attribute binds one operation of `_operations`;
`Resource[SyncMode]` answers with the model, `Resource[AsyncMode]` with an awaitable of it."""

from __future__ import annotations

from . import _operations as ops
from ._core import ModeT, Resource, endpoint, paginated


class Notifications(Resource[ModeT]):
    create = endpoint(ops.notifications_create)
    create_batch = endpoint(ops.notifications_create_batch)
    get = endpoint(ops.notifications_get)
    replay = endpoint(ops.notifications_replay)


class Events(Resource[ModeT]):
    send = endpoint(ops.events_send)


class Channels(Resource[ModeT]):
    create = endpoint(ops.channels_create)
    list = endpoint(ops.channels_list)
    iterate = paginated(ops.channels_list, cursor="after")
    get = endpoint(ops.channels_get)
    deactivate = endpoint(ops.channels_deactivate)
    reactivate = endpoint(ops.channels_reactivate)


class Subscribers(Resource[ModeT]):
    identify = endpoint(ops.subscribers_identify)
    get = endpoint(ops.subscribers_get)
    update = endpoint(ops.subscribers_update)
    erase = endpoint(ops.subscribers_erase)
    list = endpoint(ops.subscribers_list)
    iterate = paginated(ops.subscribers_list, cursor="after")
    add_channel = endpoint(ops.subscribers_add_channel)
    list_channels = endpoint(ops.subscribers_list_channels)
    remove_channel = endpoint(ops.subscribers_remove_channel)
    get_preferences = endpoint(ops.subscribers_preferences)
    set_preferences = endpoint(ops.subscribers_set_preferences)
    inbox = endpoint(ops.subscribers_inbox)
    iterate_inbox = paginated(ops.subscribers_inbox, cursor="before")
    mark_inbox = endpoint(ops.subscribers_mark_inbox)
    issue_token = endpoint(ops.subscribers_issue_token)


class Inbox(Resource[ModeT]):
    """The inbox of the subscriber whose token (`sbt_…`) the client was made with."""

    list = endpoint(ops.inbox_list)
    iterate = paginated(ops.inbox_list, cursor="before")
    mark = endpoint(ops.inbox_mark)
    read_all = endpoint(ops.inbox_read_all)
    get_preferences = endpoint(ops.inbox_preferences)
    set_preferences = endpoint(ops.inbox_set_preferences)


class Portal(Resource[ModeT]):
    """The webhook endpoints of the subscriber whose token (`sbt_…`, `portal` scope) the client
    was made with."""

    list = endpoint(ops.portal_list)
    create = endpoint(ops.portal_create)
    delete = endpoint(ops.portal_delete)
    rotate_secret = endpoint(ops.portal_rotate_secret)
    disable = endpoint(ops.portal_disable)
    enable = endpoint(ops.portal_enable)
    deliveries = endpoint(ops.portal_deliveries)
    iterate_deliveries = paginated(ops.portal_deliveries, cursor="before")
    replay = endpoint(ops.portal_replay)


class Topics(Resource[ModeT]):
    create = endpoint(ops.topics_create)
    list = endpoint(ops.topics_list)
    get = endpoint(ops.topics_get)
    add_subscribers = endpoint(ops.topics_add)
    remove_subscribers = endpoint(ops.topics_remove)
    list_subscribers = endpoint(ops.topics_members)
    iterate_subscribers = paginated(ops.topics_members, cursor="after")


class Workflows(Resource[ModeT]):
    create = endpoint(ops.workflows_create)
    list = endpoint(ops.workflows_list)
    get = endpoint(ops.workflows_get)
    replace = endpoint(ops.workflows_replace)
    delete = endpoint(ops.workflows_delete)
    preview = endpoint(ops.workflows_preview)


class Integrations(Resource[ModeT]):
    create = endpoint(ops.integrations_create)
    list = endpoint(ops.integrations_list)
    get = endpoint(ops.integrations_get)
    update = endpoint(ops.integrations_update)
    delete = endpoint(ops.integrations_delete)
    check = endpoint(ops.integrations_check)
    inbound_history = endpoint(ops.integrations_inbound_history)
    iterate_inbound = paginated(ops.integrations_inbound_history, cursor="before")
    oauth_start = endpoint(ops.integrations_oauth_start)
    oauth_finish = endpoint(ops.integrations_oauth_finish)


class Suppressions(Resource[ModeT]):
    list = endpoint(ops.suppressions_list)
    iterate = paginated(ops.suppressions_list, cursor="after")
    create = endpoint(ops.suppressions_create)
    delete = endpoint(ops.suppressions_delete)


class Audit(Resource[ModeT]):
    list = endpoint(ops.audit_list)
    iterate = paginated(ops.audit_list, cursor="cursor")
    export = endpoint(ops.audit_export)
    public_key = endpoint(ops.audit_public_key)


class ApiKeys(Resource[ModeT]):
    create = endpoint(ops.api_keys_create)
    list = endpoint(ops.api_keys_list)
    revoke = endpoint(ops.api_keys_revoke)


class Workspace(Resource[ModeT]):
    get = endpoint(ops.workspace_get)
    delete = endpoint(ops.workspace_delete)
    stats = endpoint(ops.workspace_stats)
    use_kms = endpoint(ops.workspace_use_kms)
    rotate_dek = endpoint(ops.workspace_rotate_dek)


class Admin(Resource[ModeT]):
    """Operator endpoints: a client made with the operator token as `api_key`."""

    freeze = endpoint(ops.admin_freeze)
    unfreeze = endpoint(ops.admin_unfreeze)
