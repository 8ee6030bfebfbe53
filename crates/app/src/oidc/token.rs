//! The token endpoint's rules (RFC 6749 §4.1.3 and §6, OpenID Connect Core §3.1.3): the client
//! proves itself, then a code is exchanged once for tokens (a replayed code revokes what it
//! issued), or a refresh token is spent for new ones (rotation: a spent token used again ends
//! its whole family, except within a short retry window for a confidential client whose answer
//! was lost).

use serde::Deserialize;
use usher_domain::account::AccountStatus;
use usher_domain::duration::Span;
use usher_domain::ids::GrantId;
use usher_domain::oidc::{OAuthError, OAuthErrorCode, Scopes, pkce};
use usher_domain::secret::Token;
use usher_domain::{Error, Timestamp};
use usher_store::Tx;
use usher_store::oidc::{CodeUse, Grant, OidcClient, RefreshUse};

use super::client_auth::ClientCredentials;
use super::tokens::{Issued, TokenSet};
use crate::{App, RequestContext, store_error};

/// How long after a confidential client's refresh token was spent it may present it again (its
/// answer was lost) without ending the family.
pub const REFRESH_RETRY_WINDOW: Span = Span::seconds_(30);

/// A token request's form fields.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TokenParams {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
    pub client_assertion_type: Option<String>,
}

fn server(e: Error) -> OAuthError {
    if e.is_server_side() {
        tracing::error!(error = %e, "token endpoint failed");
    }
    OAuthError::server_error()
}

fn db(e: usher_store::StoreError) -> OAuthError {
    server(store_error(e))
}

impl App {
    /// Answers a token request.
    pub async fn token(
        &self,
        params: &TokenParams,
        basic: Option<(String, String)>,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<TokenSet, OAuthError> {
        let credentials = ClientCredentials::from_request(params, basic);
        let client = self.authenticate_client(&credentials, ctx, now).await?;
        match params.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&client, params, ctx, now).await,
            Some("refresh_token") => self.refresh(&client, params, ctx, now).await,
            Some(_) => Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                "Only authorization_code and refresh_token grants are offered.",
            )),
            None => Err(OAuthError::invalid_request("grant_type is missing.")),
        }
    }

    async fn exchange_code(
        &self,
        client: &OidcClient,
        params: &TokenParams,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<TokenSet, OAuthError> {
        let (Some(code), Some(redirect_uri)) = (params.code.as_deref(), params.redirect_uri.as_deref()) else {
            return Err(OAuthError::invalid_request("code and redirect_uri are required."));
        };
        let Some(verifier) = params.code_verifier.as_deref() else {
            return Err(OAuthError::invalid_grant("code_verifier is required (PKCE)."));
        };
        let Some(code) = Token::parse(code) else { return Err(OAuthError::invalid_grant("The code is not valid.")) };
        let mut tx = self.store.begin().await.map_err(db)?;
        let stored = match tx.take_auth_code(&code.hash(), now).await.map_err(db)? {
            CodeUse::Unknown => return Err(OAuthError::invalid_grant("The code is not valid.")),
            CodeUse::Replayed(stored) => {
                let revoked = tx.revoke_grants_of_code(&stored.code_hash, now).await.map_err(db)?;
                let mut event = ctx.event("oidc.code_replayed", "refused");
                event.subject_id = Some(stored.user_id.to_string());
                event.organisation_id = organisation_of(&mut tx, &stored.user_id).await.map_err(server)?;
                event.detail = Some(format!("client {}; {} grants revoked", stored.client_id, revoked.len()));
                tx.append_audit(&event, now).await.map_err(db)?;
                tx.commit().await.map_err(db)?;
                return Err(OAuthError::invalid_grant("The code was used already; what it issued is revoked."));
            }
            CodeUse::Taken(stored) => stored,
        };
        // The code is spent whatever follows: a failed exchange is not retried with it.
        let refused = if stored.client_id != client.id {
            Some("The code was issued to another client.")
        } else if now >= stored.expires_at {
            Some("The code has expired.")
        } else if stored.redirect_uri != redirect_uri {
            Some("redirect_uri differs from the one the code was issued for.")
        } else if !pkce::verifies(verifier, &stored.code_challenge) {
            Some("The code_verifier does not match the code_challenge.")
        } else {
            None
        };
        if let Some(why) = refused {
            tx.commit().await.map_err(db)?;
            return Err(OAuthError::invalid_grant(why));
        }
        let user = tx.user(&stored.user_id).await.map_err(db)?;
        let Some(user) = user.filter(|u| u.status == AccountStatus::Active) else {
            tx.commit().await.map_err(db)?;
            return Err(OAuthError::invalid_grant("This account cannot be used now."));
        };
        let grant = Grant {
            id: GrantId::generate(),
            client_id: client.id.clone(),
            user_id: user.id.clone(),
            session_id: stored.session_id.clone(),
            sid: stored.sid.clone(),
            code_hash: stored.code_hash.clone(),
            scope: stored.scope.clone(),
            auth_time: stored.auth_time,
            evidence: stored.evidence.clone(),
            acr: stored.acr.clone(),
            created_at: now,
            expires_at: now.plus(Span::seconds_(client.refresh_token_seconds)),
            revoked_at: None,
            revoked_because: None,
        };
        tx.insert_grant(&grant).await.map_err(db)?;
        let issued = Issued { client, grant: &grant, user: &user, nonce: stored.nonce.as_deref() };
        let set = self.issue_tokens(&mut tx, &issued, now).await.map_err(server)?;
        let mut event = ctx.event("oidc.tokens_issued", "success");
        event.actor_id = Some(user.id.to_string());
        event.subject_id = Some(user.id.to_string());
        event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
        event.detail = Some(format!("client {}; grant {}; {}", client.id, grant.id, grant.scope));
        tx.append_audit(&event, now).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(set)
    }

    async fn refresh(
        &self,
        client: &OidcClient,
        params: &TokenParams,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<TokenSet, OAuthError> {
        let Some(token) = params.refresh_token.as_deref() else {
            return Err(OAuthError::invalid_request("refresh_token is required."));
        };
        let Some(token) = Token::parse(token) else {
            return Err(OAuthError::invalid_grant("The refresh token is not valid."));
        };
        let mut tx = self.store.begin().await.map_err(db)?;
        let grant = match tx.spend_refresh_token(&token.hash(), &client.id, now).await.map_err(db)? {
            RefreshUse::Unknown => return Err(OAuthError::invalid_grant("The refresh token is not valid.")),
            RefreshUse::Spent(grant) if grant.client_id == client.id => grant,
            RefreshUse::SpentBefore(grant, at) if grant.client_id == client.id => {
                let retry =
                    client.auth_method.is_confidential() && now.seconds_since(at) <= REFRESH_RETRY_WINDOW.seconds();
                if !retry || !grant.is_live(now) {
                    if tx.revoke_grant(&grant.id, "refresh token reused", now).await.map_err(db)? {
                        let mut event = ctx.event("oidc.refresh_reused", "refused");
                        event.subject_id = Some(grant.user_id.to_string());
                        event.organisation_id = organisation_of(&mut tx, &grant.user_id).await.map_err(server)?;
                        event.detail = Some(format!("client {}; grant {} revoked", client.id, grant.id));
                        tx.append_audit(&event, now).await.map_err(db)?;
                    }
                    tx.commit().await.map_err(db)?;
                    return Err(OAuthError::invalid_grant(
                        "The refresh token was used already; every token of this sign-in is revoked.",
                    ));
                }
                // A retry: the token issued in the lost answer is replaced by the one issued now.
                tx.spend_refresh_tokens_of(&grant.id, now).await.map_err(db)?;
                grant
            }
            RefreshUse::Spent(_) | RefreshUse::SpentBefore(..) => {
                tx.commit().await.map_err(db)?;
                return Err(OAuthError::invalid_grant("The refresh token was issued to another client."));
            }
        };
        if !grant.is_live(now) {
            tx.commit().await.map_err(db)?;
            return Err(OAuthError::invalid_grant("This sign-in has ended: sign the person in again."));
        }
        if let Some(scope) = params.scope.as_deref().filter(|s| !s.is_empty()) {
            let asked = Scopes::parse(scope).map_err(|m| OAuthError::new(OAuthErrorCode::InvalidScope, m))?;
            let granted = Scopes::parse(&grant.scope).unwrap_or_default();
            if !asked.within(&granted) {
                return Err(OAuthError::new(OAuthErrorCode::InvalidScope, "A refresh cannot widen the scope."));
            }
        }
        let user = tx.user(&grant.user_id).await.map_err(db)?;
        let Some(user) = user.filter(|u| u.status == AccountStatus::Active) else {
            tx.revoke_grant(&grant.id, "account not active", now).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Err(OAuthError::invalid_grant("This account cannot be used now."));
        };
        // The client's rules as they are now: the person's organisation may have been moved
        // out of its reach, or the client may have come to need a second factor.
        let admitted = client.admission.is_open() || {
            let organisation = match &user.organisation_id {
                Some(id) => tx.organisation(id).await.map_err(db)?,
                None => None,
            };
            client.admission.admits(organisation.as_ref().map(|o| (o.id.as_str(), o.kind)))
        };
        let strong_enough = !client.second_factor_required
            || usher_domain::oidc::Acr::parse(&grant.acr)
                .is_some_and(|a| a.meets(usher_domain::oidc::Acr::MultiFactor));
        if !admitted || !strong_enough {
            tx.revoke_grant(&grant.id, "the client's rules no longer admit this sign-in", now).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Err(OAuthError::invalid_grant("This sign-in no longer meets the service's rules: sign in again."));
        }
        let issued = Issued { client, grant: &grant, user: &user, nonce: None };
        let set = self.issue_tokens(&mut tx, &issued, now).await.map_err(server)?;
        let mut event = ctx.event("oidc.tokens_refreshed", "success");
        event.subject_id = Some(user.id.to_string());
        event.organisation_id = user.organisation_id.as_ref().map(ToString::to_string);
        event.detail = Some(format!("client {}; grant {}", client.id, grant.id));
        tx.append_audit(&event, now).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(set)
    }
}

/// Revoking, for RFC 7009: ends the grant behind a refresh or access token of this client.
impl App {
    pub(crate) async fn revoke_grant_in(
        &self,
        tx: &mut Tx,
        grant: &Grant,
        client: &OidcClient,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), Error> {
        if tx.revoke_grant(&grant.id, "revoked by the client", now).await.map_err(store_error)? {
            let mut event = ctx.event("oidc.revoked", "success");
            event.subject_id = Some(grant.user_id.to_string());
            event.organisation_id = organisation_of(tx, &grant.user_id).await?;
            event.detail = Some(format!("client {}; grant {}", client.id, grant.id));
            tx.append_audit(&event, now).await.map_err(store_error)?;
        }
        Ok(())
    }
}

/// The organisation of a person, for an audit event their administrator should see.
async fn organisation_of(tx: &mut Tx, user: &usher_domain::ids::UserId) -> Result<Option<String>, Error> {
    let user = tx.user(user).await.map_err(store_error)?;
    Ok(user.and_then(|u| u.organisation_id).map(|o| o.to_string()))
}
