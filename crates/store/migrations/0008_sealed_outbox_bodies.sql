-- Outbox bodies are sealed (AES-256-GCM under the secret key, bound to the message's ID): a
-- code or link is never written to the database in the clear. Rows from before this migration
-- keep body_sealed = 0: they stay readable as they are, and Usher seals every one of them that
-- still has a body when it migrates or starts (it has the key then; SQL alone does not).
ALTER TABLE outbox ADD COLUMN body_sealed BIGINT NOT NULL DEFAULT 0;
