-- Organisations, their administrators and users, the terms and conditions, and account
-- activation with a text-message check of the mobile number.

CREATE TABLE organisations (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- The name lower-cased by the application (both engines fold case alike only for ASCII).
    name_key TEXT NOT NULL,
    kind TEXT NOT NULL,
    email_domains TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT
);
CREATE UNIQUE INDEX organisations_name_key ON organisations (name_key);

ALTER TABLE users ADD COLUMN added_by TEXT;
ALTER TABLE users ADD COLUMN phone_verified_at BIGINT;
ALTER TABLE users ADD COLUMN activated_at BIGINT;
-- Name and email lower-cased by the application, for searching and sorting the same way on both engines.
ALTER TABLE users ADD COLUMN search_key TEXT;

ALTER TABLE one_time_links ADD COLUMN terms_version BIGINT;
ALTER TABLE one_time_links ADD COLUMN phone_confirmed_at BIGINT;
-- The number that was confirmed: a later correction makes it stale.
ALTER TABLE one_time_links ADD COLUMN phone_confirmed TEXT;

CREATE TABLE terms (
    version BIGINT PRIMARY KEY,
    body TEXT NOT NULL,
    published_at BIGINT NOT NULL,
    published_by TEXT
);
INSERT INTO terms (version, body, published_at, published_by) VALUES (1,
'You may use this service only for the work of the organisation that gave you your account.

Keep your password and your second factor to yourself. Never share your account, your activation link or any code we send you.

Everything you do is recorded. Misuse may be reported to your organisation and to the authorities.

Tell your organisation administrator at once if you think someone else has used your account.',
0, NULL);

CREATE TABLE terms_acceptances (
    user_id TEXT NOT NULL REFERENCES users (id),
    version BIGINT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, version)
);

CREATE TABLE code_flows (
    flow TEXT PRIMARY KEY,
    user_id TEXT,
    purpose TEXT NOT NULL,
    sends BIGINT NOT NULL DEFAULT 0,
    failures BIGINT NOT NULL DEFAULT 0,
    last_sent_at BIGINT,
    created_at BIGINT NOT NULL
);

CREATE TABLE one_time_codes (
    id TEXT PRIMARY KEY,
    flow TEXT NOT NULL REFERENCES code_flows (flow),
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    superseded_at BIGINT
);
CREATE INDEX one_time_codes_flow ON one_time_codes (flow);
