//! Organisations and the terms and conditions.

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;
use usher_domain::ids::{OrganisationId, UserId};
use usher_domain::organisation::{EmailDomains, OrganisationKind};

use crate::{Result, StoreError, Tx};

#[derive(Debug, Clone)]
pub struct Organisation {
    pub id: OrganisationId,
    pub name: String,
    pub kind: OrganisationKind,
    pub email_domains: EmailDomains,
    pub created_at: Timestamp,
    /// The organisation's own minimum password length, if tighter than the deployment's.
    pub min_password_length: Option<i64>,
    /// Whether a second factor is required; `None`: the deployment's default.
    pub mfa_required: Option<bool>,
    /// Whether emailed codes may serve as a second factor; `None`: the deployment's default.
    pub email_codes_allowed: Option<bool>,
}

fn from_row(row: &AnyRow) -> Result<Organisation> {
    let kind: String = row.try_get("kind")?;
    let domains: String = row.try_get("email_domains")?;
    Ok(Organisation {
        id: OrganisationId::from_trusted(row.try_get("id")?),
        name: row.try_get("name")?,
        kind: OrganisationKind::parse(&kind)
            .ok_or_else(|| StoreError::Query(sqlx::Error::Decode("unknown organisation kind".into())))?,
        email_domains: EmailDomains::from_stored(&domains),
        created_at: Timestamp::from_unix(row.try_get("created_at")?),
        min_password_length: row.try_get("min_password_length")?,
        mfa_required: row.try_get::<Option<i64>, _>("mfa_required")?.map(|v| v != 0),
        email_codes_allowed: row.try_get::<Option<i64>, _>("email_codes_allowed")?.map(|v| v != 0),
    })
}

/// One version of the terms and conditions.
#[derive(Debug, Clone)]
pub struct Terms {
    pub version: i64,
    pub body: String,
    pub published_at: Timestamp,
}

impl Tx {
    pub async fn insert_organisation(&mut self, o: &Organisation, created_by: &UserId) -> Result<()> {
        sqlx::query(
            "INSERT INTO organisations (id, name, name_key, kind, email_domains, created_at, created_by, min_password_length, \
             mfa_required, email_codes_allowed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(o.id.as_str())
        .bind(&o.name)
        .bind(o.name.to_lowercase())
        .bind(o.kind.as_str())
        .bind(o.email_domains.to_stored())
        .bind(o.created_at.unix())
        .bind(created_by.as_str())
        .bind(o.min_password_length)
        .bind(o.mfa_required.map(i64::from))
        .bind(o.email_codes_allowed.map(i64::from))
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    pub async fn organisation(&mut self, id: &OrganisationId) -> Result<Option<Organisation>> {
        let row = sqlx::query(
            "SELECT id, name, kind, email_domains, created_at, min_password_length, mfa_required, email_codes_allowed FROM organisations WHERE id = $1",
        )
        .bind(id.as_str())
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    pub async fn organisations(&mut self) -> Result<Vec<Organisation>> {
        let rows = sqlx::query("SELECT id, name, kind, email_domains, created_at, min_password_length, mfa_required, email_codes_allowed FROM organisations ORDER BY name_key")
            .fetch_all(&mut *self.tx)
            .await?;
        rows.iter().map(from_row).collect()
    }

    pub async fn set_min_password_length(&mut self, id: &OrganisationId, length: Option<i64>) -> Result<()> {
        sqlx::query("UPDATE organisations SET min_password_length = $1 WHERE id = $2")
            .bind(length)
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    /// Records an organisation's choices about second factors (`None`: the deployment's default).
    pub async fn set_second_factor_rules(
        &mut self,
        id: &OrganisationId,
        mfa_required: Option<bool>,
        email_codes_allowed: Option<bool>,
    ) -> Result<()> {
        sqlx::query("UPDATE organisations SET mfa_required = $1, email_codes_allowed = $2 WHERE id = $3")
            .bind(mfa_required.map(i64::from))
            .bind(email_codes_allowed.map(i64::from))
            .bind(id.as_str())
            .execute(&mut *self.tx)
            .await?;
        Ok(())
    }

    pub async fn current_terms(&mut self) -> Result<Terms> {
        let row = sqlx::query("SELECT version, body, published_at FROM terms ORDER BY version DESC LIMIT 1")
            .fetch_one(&mut *self.tx)
            .await?;
        Ok(Terms {
            version: row.try_get("version")?,
            body: row.try_get("body")?,
            published_at: Timestamp::from_unix(row.try_get("published_at")?),
        })
    }

    /// Publishes a new version; returns its number.
    pub async fn publish_terms(&mut self, body: &str, by: &UserId, now: Timestamp) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO terms (version, body, published_at, published_by) \
             SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3 FROM terms RETURNING version",
        )
        .bind(body)
        .bind(now.unix())
        .bind(by.as_str())
        .fetch_one(&mut *self.tx)
        .await?;
        Ok(row.try_get("version")?)
    }

    pub async fn record_terms_acceptance(&mut self, user: &UserId, version: i64, now: Timestamp) -> Result<()> {
        sqlx::query(
            "INSERT INTO terms_acceptances (user_id, version, accepted_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, version) DO NOTHING",
        )
        .bind(user.as_str())
        .bind(version)
        .bind(now.unix())
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }
}
