-- Deactivated channels: out of use at once (nothing is sent to them and their address is not
-- decrypted for the API), kept for reactivation until purge_at, then purged for good with their
-- notifications and attempts by a background job.
ALTER TABLE channels ADD COLUMN deactivated_at BIGINT;
ALTER TABLE channels ADD COLUMN purge_at BIGINT;
CREATE INDEX channels_to_purge ON channels (purge_at) WHERE purge_at IS NOT NULL;
-- A channel's notifications: for its deactivation and purge, and for the foreign-key check when
-- its row is deleted.
CREATE INDEX notifications_by_channel ON notifications (channel_id) WHERE channel_id IS NOT NULL;
-- Payload retention: a finished notification's content is removed (payload emptied) once it is
-- older than its workspace's payload retention; its delivery metadata and attempts stay.
ALTER TABLE notifications ADD COLUMN payload_removed_at BIGINT;
CREATE INDEX notifications_with_payload ON notifications (workspace_id, created_at) WHERE payload_removed_at IS NULL;
