-- A workspace's plan sets its audit retention (free 7 days, pro 30, scale 90, enterprise as
-- configured in audit_retention_days).
ALTER TABLE workspaces ADD COLUMN plan TEXT NOT NULL DEFAULT 'free';
ALTER TABLE workspaces ADD COLUMN audit_retention_days BIGINT;
