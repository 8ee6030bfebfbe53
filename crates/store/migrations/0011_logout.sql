-- Signing out everywhere: the address at which a client hears that a session ended
-- (OpenID Connect Back-Channel Logout 1.0), and the services each session signed in to, with
-- the `sid` their ID tokens carry. When a session ends its rows end with it (once, by a
-- compare-and-set on ended_at) and each client with a logout address gets one logout token
-- through the outbox (message_id).

ALTER TABLE oidc_clients ADD COLUMN backchannel_logout_uri TEXT;

-- The `sid` a code and the grant it issues carry; before this migration it was the session ID.
ALTER TABLE oidc_codes ADD COLUMN sid TEXT NOT NULL DEFAULT '';
ALTER TABLE oidc_grants ADD COLUMN sid TEXT NOT NULL DEFAULT '';
UPDATE oidc_codes SET sid = session_id;
UPDATE oidc_grants SET sid = session_id;

CREATE TABLE oidc_session_clients (
    session_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES oidc_clients (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    -- Random per session and client, so two services cannot link a person's sessions by it.
    sid TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ended_at BIGINT,
    -- The outbox message carrying the logout token; NULL when the client has no logout address.
    message_id TEXT,
    PRIMARY KEY (session_id, client_id)
);
CREATE INDEX oidc_session_clients_client ON oidc_session_clients (client_id, ended_at);
CREATE INDEX oidc_session_clients_user ON oidc_session_clients (user_id);
CREATE INDEX oidc_session_clients_live ON oidc_session_clients (ended_at, session_id);

-- The sessions that signed in to a client before this migration, so they are told too.
INSERT INTO oidc_session_clients (session_id, client_id, user_id, sid, created_at)
SELECT g.session_id, g.client_id, MIN(g.user_id), g.session_id, MIN(g.created_at)
FROM oidc_grants g JOIN sessions s ON s.id = g.session_id
WHERE g.revoked_at IS NULL AND s.ended_at IS NULL
GROUP BY g.session_id, g.client_id;

CREATE INDEX oidc_grants_session ON oidc_grants (session_id);
CREATE INDEX oidc_codes_session ON oidc_codes (session_id);
