-- Usher as an OpenID Connect provider: the relying parties an operator registers, their
-- secrets (only hashes), the keys that sign tokens (sealed under the secret key), the secret
-- behind pairwise subjects (sealed), authorization requests waiting for a person, codes,
-- grants (what one code issued) and refresh tokens (only hashes), each spent by a
-- compare-and-set update so two servers on one database agree.

CREATE TABLE oidc_clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    -- client_secret_basic, client_secret_post, private_key_jwt or none (public, PKCE only)
    auth_method TEXT NOT NULL,
    jwks TEXT,
    -- one per line, compared exactly
    redirect_uris TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,
    -- space-separated organisation kinds and IDs that may use the client; both empty: any
    organisation_kinds TEXT NOT NULL DEFAULT '',
    organisation_ids TEXT NOT NULL DEFAULT '',
    second_factor_required BIGINT NOT NULL DEFAULT 1,
    -- pairwise or public
    subject_type TEXT NOT NULL,
    sector TEXT NOT NULL,
    id_token_alg TEXT NOT NULL,
    access_token_seconds BIGINT NOT NULL,
    id_token_seconds BIGINT NOT NULL,
    refresh_token_seconds BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE oidc_client_secrets (
    secret_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id),
    created_at BIGINT NOT NULL,
    -- set when a newer secret replaces it: it still works until then (the overlap)
    expires_at BIGINT
);
CREATE INDEX oidc_client_secrets_client ON oidc_client_secrets (client_id);

-- A signing key is published from created_at, signs from signs_from (NULL: not yet: the next
-- key), stops signing at retired_at, and is no longer published after unpublish_at.
CREATE TABLE oidc_signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    signs_from BIGINT,
    retired_at BIGINT,
    unpublish_at BIGINT
);

-- Sealed secrets of the provider that are not signing keys: the pairwise subject secret.
CREATE TABLE oidc_secrets (
    name TEXT PRIMARY KEY,
    sealed TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

-- An authorization request that passed its checks and waits for a person to sign in and
-- continue (or cancel). Not a credential: it only names what a client asked for.
CREATE TABLE oidc_requests (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id),
    request TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    done_at BIGINT
);
CREATE INDEX oidc_requests_expiry ON oidc_requests (expires_at);

CREATE TABLE oidc_codes (
    code_hash TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    session_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    nonce TEXT,
    auth_time BIGINT NOT NULL,
    -- How the session was proven (Evidence::stored): the methods and when.
    evidence TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oidc_codes_expiry ON oidc_codes (expires_at);

-- What one code issued: its refresh tokens (a family) and access tokens (which name it).
CREATE TABLE oidc_grants (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    session_id TEXT NOT NULL,
    code_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    auth_time BIGINT NOT NULL,
    -- How the session was proven (Evidence::stored): the methods and when.
    evidence TEXT NOT NULL,
    acr TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_because TEXT
);
CREATE INDEX oidc_grants_user ON oidc_grants (user_id);

CREATE TABLE oidc_refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES oidc_grants (id),
    created_at BIGINT NOT NULL,
    spent_at BIGINT
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);

-- The IDs (jti) of client assertions (private_key_jwt) already used, until they expire: a
-- replayed assertion is refused (RFC 7523 §3).
CREATE TABLE oidc_assertion_ids (
    client_id TEXT NOT NULL REFERENCES oidc_clients (id),
    jti TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
