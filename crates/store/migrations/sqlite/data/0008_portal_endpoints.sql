-- Webhook endpoints a subscriber manages through the portal: their own signing secrets under
-- the subscriber key (the current one, and the one it replaced while its overlap lasts), and
-- since when the endpoint is disabled (nothing is sent to it meanwhile).
ALTER TABLE subscriber_channels ADD COLUMN signing_secrets BLOB;
ALTER TABLE subscriber_channels ADD COLUMN disabled_at INTEGER;
