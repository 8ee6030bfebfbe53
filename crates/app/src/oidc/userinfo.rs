//! The userinfo endpoint (OpenID Connect Core §5.3), revocation (RFC 7009) and introspection
//! (RFC 7662). An access token is good while its signature, issuer and expiry are, and its
//! grant, client and account are still live: revoking a grant ends its access tokens here at
//! once, although a client that checks a token offline trusts it until it expires (minutes).

use serde_json::{Map, Value, json};
use usher_domain::account::AccountStatus;
use usher_domain::ids::{ClientId, GrantId};
use usher_domain::oidc::{OAuthError, OAuthErrorCode, Scopes};
use usher_domain::secret::Token;
use usher_domain::{Error, Timestamp};
use usher_store::oidc::{Grant, OidcClient};
use usher_store::{Tx, User};

use super::client_auth::ClientCredentials;
use super::tokens::{ACCESS_TOKEN_TYPE, AccessClaims};
use crate::{App, RequestContext, store_error};

fn invalid_token() -> OAuthError {
    OAuthError::new(OAuthErrorCode::InvalidToken, "The access token is not valid, or has expired or been revoked.")
}

fn server(e: Error) -> OAuthError {
    tracing::error!(error = %e, "a token endpoint failed");
    OAuthError::server_error()
}

/// A live access token with what stands behind it.
struct Live {
    claims: AccessClaims,
    grant: Grant,
    client: OidcClient,
    user: User,
}

impl App {
    async fn live_access_token(&self, tx: &mut Tx, token: &str, now: Timestamp) -> Result<Option<Live>, Error> {
        let Some(claims) = self.verify_own::<AccessClaims>(tx, token, ACCESS_TOKEN_TYPE, now).await? else {
            return Ok(None);
        };
        if claims.exp <= now.unix() {
            return Ok(None);
        }
        let (Some(gid), Some(cid)) = (GrantId::parse(&claims.gid), ClientId::parse(&claims.client_id)) else {
            return Ok(None);
        };
        let Some(grant) = tx.grant(&gid).await.map_err(store_error)?.filter(|g| g.revoked_at.is_none()) else {
            return Ok(None);
        };
        let Some(client) = tx.client(&cid).await.map_err(store_error)?.filter(|c| c.disabled_at.is_none()) else {
            return Ok(None);
        };
        let Some(user) =
            tx.user(&grant.user_id).await.map_err(store_error)?.filter(|u| u.status == AccountStatus::Active)
        else {
            return Ok(None);
        };
        if grant.client_id != client.id {
            return Ok(None);
        }
        Ok(Some(Live { claims, grant, client, user }))
    }

    /// The claims about the person an access token stands for.
    pub async fn userinfo(&self, token: &str, now: Timestamp) -> Result<Map<String, Value>, OAuthError> {
        let mut tx = self.store.begin_read().await.map_err(|e| server(store_error(e)))?;
        let live = self.live_access_token(&mut tx, token, now).await.map_err(server)?.ok_or_else(invalid_token)?;
        let scopes = Scopes::parse(&live.grant.scope).unwrap_or_default();
        let mut claims = self.person_claims(&mut tx, &live.user, &scopes).await.map_err(server)?;
        claims.insert("sub".into(), json!(live.claims.sub));
        Ok(claims)
    }

    /// RFC 7009: the client ends one of its refresh or access tokens (and the grant behind it).
    /// An unknown token or another client's is answered the same, as success.
    pub async fn revoke_token(
        &self,
        credentials: &ClientCredentials,
        token: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(), OAuthError> {
        let client = self.authenticate_client(credentials, ctx, now).await?;
        if !client.auth_method.is_confidential() {
            return Err(OAuthError::new(OAuthErrorCode::UnauthorizedClient, "Revocation is for confidential clients."));
        }
        let mut tx = self.store.begin().await.map_err(|e| server(store_error(e)))?;
        let grant = if let Some(refresh) = Token::parse(token) {
            // Looking a refresh token up must not spend it: read its grant without the update.
            tx.refresh_token_grant(&refresh.hash()).await.map_err(|e| server(store_error(e)))?
        } else {
            self.live_access_token(&mut tx, token, now).await.map_err(server)?.map(|l| l.grant)
        };
        if let Some(grant) = grant.filter(|g| g.client_id == client.id) {
            self.revoke_grant_in(&mut tx, &grant, &client, ctx, now).await.map_err(server)?;
        }
        tx.commit().await.map_err(|e| server(store_error(e)))?;
        Ok(())
    }

    /// RFC 7662: whether a token of this client is live, and what it says.
    pub async fn introspect(
        &self,
        credentials: &ClientCredentials,
        token: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Value, OAuthError> {
        let client = self.authenticate_client(credentials, ctx, now).await?;
        if !client.auth_method.is_confidential() {
            return Err(OAuthError::new(
                OAuthErrorCode::UnauthorizedClient,
                "Introspection is for confidential clients.",
            ));
        }
        let mut tx = self.store.begin_read().await.map_err(|e| server(store_error(e)))?;
        if let Some(live) = self.live_access_token(&mut tx, token, now).await.map_err(server)? {
            if live.client.id != client.id {
                return Ok(json!({ "active": false }));
            }
            let c = live.claims;
            return Ok(json!({
                "active": true, "token_type": "Bearer", "scope": c.scope, "client_id": c.client_id, "sub": c.sub,
                "aud": c.aud, "iss": c.iss, "exp": c.exp, "iat": c.iat, "jti": c.jti, "auth_time": c.auth_time,
                "acr": c.acr, "amr": c.amr,
            }));
        }
        if let Some(refresh) = Token::parse(token) {
            let grant = tx.refresh_token_grant(&refresh.hash()).await.map_err(|e| server(store_error(e)))?;
            let spent = tx.refresh_token_spent(&refresh.hash()).await.map_err(|e| server(store_error(e)))?;
            if let Some(g) = grant.filter(|g| g.client_id == client.id && g.is_live(now) && !spent) {
                let user = tx.user(&g.user_id).await.map_err(|e| server(store_error(e)))?;
                if let Some(user) = user.filter(|u| u.status == AccountStatus::Active) {
                    let sub = self.subject_for(&mut tx, &client, &user).await.map_err(server)?;
                    return Ok(json!({
                        "active": true, "token_type": "refresh_token", "scope": g.scope, "client_id": client.id.to_string(),
                        "sub": sub, "exp": g.expires_at.unix(), "iss": self.issuer(),
                    }));
                }
            }
        }
        Ok(json!({ "active": false }))
    }
}
