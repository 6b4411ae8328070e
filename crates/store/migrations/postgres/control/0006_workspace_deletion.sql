-- Only the owner key (the one created with the workspace) may delete the workspace.
ALTER TABLE workspaces ADD COLUMN owner_key_id TEXT;
UPDATE workspaces SET owner_key_id = (
    SELECT k.id FROM api_keys k WHERE k.workspace_id = workspaces.id AND k.name = 'owner'
    ORDER BY k.created_at, k.id LIMIT 1);
-- Set when a deletion starts: from then on none of the workspace's keys works, and the nodes of
-- its region finish the deletion if the request that started it did not.
ALTER TABLE workspaces ADD COLUMN deleting_at BIGINT;
CREATE INDEX workspaces_deleting ON workspaces (region) WHERE deleting_at IS NOT NULL;
