-- When each KEK version was first used here: automatic rotation replaces the current KEK once
-- it has been current for the configured interval. Ids only, no key material.
CREATE TABLE kek_versions (
    kek_id        TEXT PRIMARY KEY,
    first_used_at INTEGER NOT NULL
);
