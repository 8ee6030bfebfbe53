-- A check value per secret key: a known text sealed under the key, so that a start with a lost
-- or different key is refused before it can seal anything new (or lose what was sealed before).
CREATE TABLE key_checks (
    key_id TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
