-- How long a workspace's notification content is kept (days, 1 to 3650).
ALTER TABLE workspaces ADD COLUMN payload_retention_days INTEGER NOT NULL DEFAULT 30;
