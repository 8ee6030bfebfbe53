-- Second factors: authenticator apps (TOTP secrets sealed under a key outside the database)
-- and email codes, recovery codes, the recovery phone, sessions that have proven only the
-- password, and each organisation's choice about second factors.

CREATE TABLE factors (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    kind TEXT NOT NULL,
    secret TEXT,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    session_id TEXT,
    superseded_at BIGINT,
    removed_at BIGINT,
    last_used_at BIGINT
);
CREATE INDEX factors_user ON factors (user_id);

CREATE TABLE recovery_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- The highest TOTP step accepted for the person: a step is never accepted twice (S9).
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE users ADD COLUMN failed_second_factors BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN recovery_phone TEXT;
ALTER TABLE users ADD COLUMN recovery_phone_verified_at BIGINT;

-- full: signed in; second_factor: password proven, second factor awaited; setup: password
-- proven, no factor yet where one is required.
ALTER TABLE sessions ADD COLUMN stage TEXT NOT NULL DEFAULT 'full';
ALTER TABLE sessions ADD COLUMN reauthenticated_at BIGINT;

-- A reset link whose second factor has been proven.
ALTER TABLE one_time_links ADD COLUMN second_factor_at BIGINT;

-- NULL: the deployment's default applies; 0 or 1: the organisation's own choice.
ALTER TABLE organisations ADD COLUMN mfa_required BIGINT;
ALTER TABLE organisations ADD COLUMN email_codes_allowed BIGINT;
