//! A person's own security page: their factors, recovery codes and recovery phone, and
//! removing a factor.

use usher_domain::phone::MobileNumber;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::FactorKind;

use super::kind_words;
use crate::sessions::Authenticated;
use crate::{App, RequestContext, audit_person as audit, store_error};

/// One of a person's factors, for the security page.
#[derive(Debug, Clone)]
pub struct FactorRow {
    pub id: String,
    pub kind: FactorKind,
    pub added_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// The security page.
#[derive(Debug, Clone)]
pub struct SecurityView {
    pub factors: Vec<FactorRow>,
    pub recovery_codes_left: usize,
    pub recovery_phone: Option<String>,
    pub required: bool,
    pub email_allowed: bool,
}

impl App {
    pub async fn security_view(&self, who: &Authenticated) -> Result<SecurityView, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let (required, email_allowed) = self.second_factor_rules(&mut tx, &who.user).await?;
        let factors = tx
            .factors(&who.user.id)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(|f| FactorRow {
                id: f.id,
                kind: f.kind,
                added_at: f.confirmed_at.unwrap_or(f.created_at),
                last_used_at: f.last_used_at,
            })
            .collect();
        Ok(SecurityView {
            factors,
            recovery_codes_left: tx.unused_recovery_codes(&who.user.id).await.map_err(store_error)?.len(),
            recovery_phone: who
                .user
                .recovery_phone
                .clone()
                .map(|p| MobileNumber::from_trusted(p).last_four().to_owned()),
            required,
            email_allowed,
        })
    }

    /// Removes one of the person's factors; never the last where a second factor is required.
    pub async fn remove_factor(
        &self,
        who: &Authenticated,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        self.require_recent_password(who, now)?;
        let user = &who.user;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock(&format!("user:{}", user.id)).await.map_err(store_error)?;
        let factors = tx.factors(&user.id).await.map_err(store_error)?;
        let Some(factor) = factors.iter().find(|f| f.id == id) else { return Err(Error::not_found()) };
        let (required, _) = self.second_factor_rules(&mut tx, user).await?;
        if required && factors.len() == 1 {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This is your only second factor and your organisation requires one. Add another before removing it.",
            ));
        }
        tx.remove_factor(&user.id, id, now).await.map_err(store_error)?;
        let subject = kind_words(factor.kind).removed_subject;
        let what = format!("a second factor ({subject}) was removed from your account.");
        self.tell(&mut tx, user, "factor_removed", subject, &what, now).await?;
        audit(&mut tx, ctx, "mfa.factor_removed", "success", user, Some(factor.kind.as_str().into()), now).await?;
        tx.commit().await.map_err(store_error)
    }
}
