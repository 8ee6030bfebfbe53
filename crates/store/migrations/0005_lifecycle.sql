-- The account lifecycle: when the current stretch of use began (the last sign-in, activation or
-- reregistration), deregistration and deletion times, and the reminders sent, one row each so
-- that every reminder goes exactly once however many servers run the jobs.

ALTER TABLE users ADD COLUMN active_since BIGINT;
UPDATE users SET active_since = COALESCE(last_sign_in_at, activated_at) WHERE status IN ('active', 'locked');
ALTER TABLE users ADD COLUMN deregistered_at BIGINT;
ALTER TABLE users ADD COLUMN deleted_at BIGINT;
CREATE INDEX users_active_since ON users (active_since);
CREATE INDEX users_deregistered_at ON users (deregistered_at);

CREATE TABLE lifecycle_notices (
    user_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    sent_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, kind, period_start)
);
CREATE INDEX outbox_recipient ON outbox (recipient);
