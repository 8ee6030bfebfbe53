-- What each session has proven and when: the methods (`password:<unix> totp:<unix>`, written
-- and read by usher_domain::evidence) and the time of the last full authentication, for `amr`,
-- `acr`, `auth_time` and `max_age`. Carried forward whenever a session is replaced.
ALTER TABLE sessions ADD COLUMN evidence TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN authenticated_at BIGINT;
-- A full session from before this migration became full when it was created (a session is
-- replaced, with a new start, when it becomes full); which methods it proved is not known.
UPDATE sessions SET authenticated_at = created_at WHERE stage = 'full';
