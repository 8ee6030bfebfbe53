-- The account lifecycle: when the current stretch of use began (the last sign-in, activation or
-- reregistration), deregistration and deletion times, and the reminders sent, one row each so
-- that every reminder goes exactly once however many servers run the jobs.

-- Accounts from before are given a stretch by the first run of the jobs, late enough that they
-- get the reminders before any deregistration.
ALTER TABLE users ADD COLUMN active_since BIGINT;
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
