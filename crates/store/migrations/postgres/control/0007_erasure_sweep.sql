-- A deleted workspace stays as a tombstone (no name, no keys, no rows anywhere) until its
-- region's nodes have swept every store once more, after requests and deliveries that were
-- already under way when the deletion started have finished.
ALTER TABLE workspaces ADD COLUMN erased_at BIGINT;
