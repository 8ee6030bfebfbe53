//! Registered clients and their secrets (only SHA-256 hashes of 256-bit secrets are stored).

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::ClientId;
use usher_domain::oidc::client::Admission;
use usher_domain::oidc::{AuthMethod, Scopes, SigningAlg, SubjectType};
use usher_domain::organisation::OrganisationKind;
use usher_domain::secret::TokenHash;

use super::{decode_error, opt_time, time};
use crate::{Result, Tx};

#[derive(Debug, Clone)]
pub struct OidcClient {
    pub id: ClientId,
    pub name: String,
    pub auth_method: AuthMethod,
    /// The client's public keys (a JWK Set) for `private_key_jwt`.
    pub jwks: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the client hears that a session it signed in through has ended (OpenID Connect
    /// Back-Channel Logout 1.0).
    pub backchannel_logout_uri: Option<String>,
    pub scopes: Scopes,
    pub admission: Admission,
    pub second_factor_required: bool,
    pub subject_type: SubjectType,
    pub sector: String,
    pub id_token_alg: SigningAlg,
    pub access_token_seconds: i64,
    pub id_token_seconds: i64,
    pub refresh_token_seconds: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub disabled_at: Option<Timestamp>,
}

const COLUMNS: &str = "id, name, auth_method, jwks, redirect_uris, post_logout_redirect_uris, scopes, \
    organisation_kinds, organisation_ids, second_factor_required, subject_type, sector, id_token_alg, \
    access_token_seconds, id_token_seconds, refresh_token_seconds, created_at, updated_at, disabled_at, backchannel_logout_uri";

fn lines(text: &str) -> Vec<String> {
    text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

fn from_row(row: &AnyRow) -> Result<OidcClient> {
    let auth: String = row.try_get("auth_method")?;
    let subject: String = row.try_get("subject_type")?;
    let alg: String = row.try_get("id_token_alg")?;
    let scopes: String = row.try_get("scopes")?;
    let kinds: String = row.try_get("organisation_kinds")?;
    let ids: String = row.try_get("organisation_ids")?;
    Ok(OidcClient {
        id: ClientId::from_trusted(row.try_get("id")?),
        name: row.try_get("name")?,
        auth_method: AuthMethod::parse(&auth).ok_or_else(|| decode_error("client auth method"))?,
        jwks: row.try_get("jwks")?,
        redirect_uris: lines(&row.try_get::<String, _>("redirect_uris")?),
        post_logout_redirect_uris: lines(&row.try_get::<String, _>("post_logout_redirect_uris")?),
        scopes: Scopes::parse(&scopes).map_err(|_| decode_error("client scopes"))?,
        admission: Admission {
            kinds: kinds.split_whitespace().filter_map(OrganisationKind::parse).collect(),
            organisation_ids: ids.split_whitespace().map(str::to_owned).collect(),
        },
        second_factor_required: row.try_get::<i64, _>("second_factor_required")? != 0,
        subject_type: SubjectType::parse(&subject).ok_or_else(|| decode_error("client subject type"))?,
        sector: row.try_get("sector")?,
        id_token_alg: SigningAlg::parse(&alg).ok_or_else(|| decode_error("client signing algorithm"))?,
        access_token_seconds: row.try_get("access_token_seconds")?,
        id_token_seconds: row.try_get("id_token_seconds")?,
        refresh_token_seconds: row.try_get("refresh_token_seconds")?,
        created_at: time(row, "created_at")?,
        updated_at: time(row, "updated_at")?,
        disabled_at: opt_time(row, "disabled_at")?,
        backchannel_logout_uri: row.try_get("backchannel_logout_uri")?,
    })
}

impl Tx {
    pub async fn insert_client(&mut self, c: &OidcClient) -> Result<()> {
        let kinds: Vec<&str> = c.admission.kinds.iter().map(|k| k.as_str()).collect();
        sqlx::query(&format!(
            "INSERT INTO oidc_clients ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)"
        ))
        .bind(c.id.as_str())
        .bind(&c.name)
        .bind(c.auth_method.as_str())
        .bind(c.jwks.clone())
        .bind(c.redirect_uris.join("\n"))
        .bind(c.post_logout_redirect_uris.join("\n"))
        .bind(c.scopes.to_string())
        .bind(kinds.join(" "))
        .bind(c.admission.organisation_ids.join(" "))
        .bind(i64::from(c.second_factor_required))
        .bind(c.subject_type.as_str())
        .bind(&c.sector)
        .bind(c.id_token_alg.as_str())
        .bind(c.access_token_seconds)
        .bind(c.id_token_seconds)
        .bind(c.refresh_token_seconds)
        .bind(c.created_at.unix())
        .bind(c.updated_at.unix())
        .bind(c.disabled_at.map(Timestamp::unix))
        .bind(c.backchannel_logout_uri.clone())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn client(&mut self, id: &ClientId) -> Result<Option<OidcClient>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM oidc_clients WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&mut *self.tx)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Every client, by name.
    pub async fn clients(&mut self) -> Result<Vec<OidcClient>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM oidc_clients ORDER BY name, id"))
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    /// Disables a client at once. False when it was disabled already.
    pub async fn disable_client(&mut self, id: &ClientId, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE oidc_clients SET disabled_at = $1, updated_at = $1 WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(now.unix())
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds a secret. Every secret still without an end gets `overlap_until` as its end, so the
    /// old one keeps working while the client moves to the new one.
    pub async fn add_client_secret(
        &mut self,
        id: &ClientId,
        hash: &TokenHash,
        overlap_until: Timestamp,
        now: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE oidc_client_secrets SET expires_at = $1 \
             WHERE client_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
        )
        .bind(overlap_until.unix())
        .bind(id.as_str())
        .execute(&mut *self.tx)
        .await?;
        sqlx::query("INSERT INTO oidc_client_secrets (secret_hash, client_id, created_at) VALUES ($1, $2, $3)")
            .bind(hash.as_str())
            .bind(id.as_str())
            .bind(now.unix())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// The hashes of the client's secrets that still work at `now`.
    pub async fn live_client_secrets(&mut self, id: &ClientId, now: Timestamp) -> Result<Vec<TokenHash>> {
        let rows = sqlx::query(
            "SELECT secret_hash FROM oidc_client_secrets WHERE client_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(id.as_str())
        .bind(now.unix())
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(|r| Ok(TokenHash::from_stored(r.try_get("secret_hash")?))).collect()
    }
}

impl Tx {
    /// Records a client assertion's ID until it expires. False when it was used before.
    pub async fn use_assertion_id(&mut self, client: &ClientId, jti: &str, expires_at: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO oidc_assertion_ids (client_id, jti, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, jti) DO NOTHING",
        )
        .bind(client.as_str())
        .bind(jti)
        .bind(expires_at.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets assertion IDs that expired before `before`.
    pub async fn purge_assertion_ids(&mut self, before: Timestamp) -> Result<u64> {
        let done = sqlx::query("DELETE FROM oidc_assertion_ids WHERE expires_at < $1")
            .bind(before.unix())
            .execute(&mut *self.tx)
            .await?;
        Ok(done.rows_affected())
    }
}
