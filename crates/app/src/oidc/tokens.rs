//! The tokens a grant issues: an ID token (OpenID Connect Core §2) and a JWT access token
//! (RFC 9068), both signed with the key that signs now, and an opaque refresh token of which
//! only the hash is kept. The claims about the person come from the scopes of the grant.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use usher_domain::duration::Span;
use usher_domain::evidence::Evidence;
use usher_domain::oidc::{Scope, Scopes, SubjectType, subject};
use usher_domain::secret::Token;
use usher_domain::{Error, Timestamp};
use usher_store::oidc::{Grant, OidcClient};
use usher_store::{Tx, User};

use crate::{App, store_error};

/// The JWT type of access tokens (RFC 9068 §2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// What a token response carries.
#[derive(Debug, Serialize)]
pub struct TokenSet {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub refresh_token: String,
    pub scope: String,
}

/// The ID token's claim with Usher's own names of the methods proven: `password`, `totp` (an
/// authenticator app), `email_code`, `sms`, `recovery_code`, `passkey`.
pub const METHODS_CLAIM: &str = "usher_methods";

/// An access token's claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub auth_time: i64,
    pub acr: String,
    pub amr: Vec<String>,
    /// The grant the token belongs to: revoking it ends the token at once for userinfo and
    /// introspection.
    pub gid: String,
}

/// What the tokens are issued for.
pub(crate) struct Issued<'a> {
    pub client: &'a OidcClient,
    pub grant: &'a Grant,
    pub user: &'a User,
    /// The authorization request's nonce (only in the first ID token, not on refresh).
    pub nonce: Option<&'a str>,
}

/// `at_hash`: the left half of the SHA-256 of the access token, base64url (ES256, RS256 and
/// PS256 all hash with SHA-256).
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

impl App {
    /// The `sub` a client sees for a person.
    pub(crate) async fn subject_for(&self, tx: &mut Tx, client: &OidcClient, user: &User) -> Result<String, Error> {
        Ok(match client.subject_type {
            SubjectType::Public => user.id.to_string(),
            SubjectType::Pairwise => subject::pairwise(&self.subject_secret(tx).await?, &client.sector, &user.id),
        })
    }

    /// The claims about a person that `scopes` release.
    pub(crate) async fn person_claims(
        &self,
        tx: &mut Tx,
        user: &User,
        scopes: &Scopes,
    ) -> Result<Map<String, Value>, Error> {
        let mut claims = Map::new();
        if scopes.contains(Scope::Profile) {
            claims.insert("name".into(), json!(user.full_name));
        }
        if scopes.contains(Scope::Email) {
            claims.insert("email".into(), json!(user.email.to_string()));
            // Activation proves the address: an account is active only once its link was used.
            claims.insert("email_verified".into(), json!(user.activated_at.is_some()));
        }
        if scopes.contains(Scope::Phone)
            && let Some(phone) = &user.phone
        {
            claims.insert("phone_number".into(), json!(phone));
            claims.insert("phone_number_verified".into(), json!(user.phone_verified_at.is_some()));
        }
        if scopes.contains(Scope::Organisation) {
            claims.insert("role".into(), json!(user.role.as_str()));
            if let Some(id) = &user.organisation_id
                && let Some(o) = tx.organisation(id).await.map_err(store_error)?
            {
                claims.insert(
                    "organisation".into(),
                    json!({ "id": o.id.to_string(), "name": o.name, "kind": o.kind.as_str() }),
                );
            }
        }
        Ok(claims)
    }

    /// Signs a new access token and ID token and stores a new refresh token for the grant.
    pub(crate) async fn issue_tokens(
        &self,
        tx: &mut Tx,
        issued: &Issued<'_>,
        now: Timestamp,
    ) -> Result<TokenSet, Error> {
        let Issued { client, grant, user, nonce } = *issued;
        let issuer = self.issuer();
        let sub = self.subject_for(tx, client, user).await?;
        let evidence = Evidence::from_stored(&grant.evidence, Some(grant.auth_time));
        let amr: Vec<String> = evidence.amr().into_iter().map(str::to_owned).collect();
        let methods: Vec<&str> = evidence.proofs().iter().map(|p| p.method.as_str()).collect();
        let access_life = Span::seconds_(client.access_token_seconds);
        let access = AccessClaims {
            iss: issuer.clone(),
            sub: sub.clone(),
            aud: client.id.to_string(),
            exp: now.plus(access_life).unix(),
            iat: now.unix(),
            jti: Token::generate().expose().to_owned(),
            client_id: client.id.to_string(),
            scope: grant.scope.clone(),
            auth_time: grant.auth_time.unix(),
            acr: grant.acr.clone(),
            amr: amr.clone(),
            gid: grant.id.to_string(),
        };
        let access_token = self.sign(tx, client.id_token_alg, ACCESS_TOKEN_TYPE, &access).await?;
        let scopes = Scopes::parse(&grant.scope).unwrap_or_default();
        let mut id = self.person_claims(tx, user, &scopes).await?;
        id.insert("iss".into(), json!(issuer));
        id.insert("sub".into(), json!(sub));
        id.insert("aud".into(), json!(client.id.to_string()));
        id.insert("exp".into(), json!(now.plus(Span::seconds_(client.id_token_seconds)).unix()));
        id.insert("iat".into(), json!(now.unix()));
        id.insert("auth_time".into(), json!(grant.auth_time.unix()));
        id.insert("amr".into(), json!(amr));
        // RFC 8176 says "otp" for an app code, an emailed code and a recovery code alike; this
        // names which, for a service that tells its people how they signed in.
        id.insert(METHODS_CLAIM.into(), json!(methods));
        id.insert("acr".into(), json!(grant.acr));
        id.insert("azp".into(), json!(client.id.to_string()));
        id.insert("sid".into(), json!(grant.sid));
        id.insert("at_hash".into(), json!(at_hash(&access_token)));
        if let Some(nonce) = nonce {
            id.insert("nonce".into(), json!(nonce));
        }
        let id_token = self.sign(tx, client.id_token_alg, "JWT", &Value::Object(id)).await?;
        let refresh = Token::generate();
        tx.insert_refresh_token(&refresh.hash(), &grant.id, now).await.map_err(store_error)?;
        Ok(TokenSet {
            access_token,
            token_type: "Bearer",
            expires_in: access_life.seconds(),
            id_token,
            refresh_token: refresh.expose().to_owned(),
            scope: grant.scope.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha_256() {
        // OpenID Connect Core §3.1.3.6: 128 bits, base64url, no padding.
        let h = at_hash("an access token");
        assert_eq!(h.len(), 22);
        assert_eq!(URL_SAFE_NO_PAD.decode(&h).map(|b| b.len()).ok(), Some(16));
    }
}
