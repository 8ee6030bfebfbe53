-- Sign-in, passwords and sessions: rate limits shared by every node, the password history
-- (the last passwords may not be reused), and an organisation's own tighter password length.

CREATE TABLE rate_limits (
    bucket TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    hits BIGINT NOT NULL
);

CREATE TABLE password_history (
    user_id TEXT NOT NULL REFERENCES users (id),
    password_hash TEXT NOT NULL,
    set_at BIGINT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, set_at);

ALTER TABLE organisations ADD COLUMN min_password_length BIGINT;
