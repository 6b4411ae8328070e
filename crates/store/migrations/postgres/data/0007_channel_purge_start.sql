-- Set by the purger before it deletes anything of a channel: from then on the channel cannot be
-- reactivated, whatever the clock of the node asking says.
ALTER TABLE channels ADD COLUMN purge_started_at BIGINT;
