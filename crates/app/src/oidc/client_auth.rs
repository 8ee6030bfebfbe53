//! How a client proves itself at the token, revocation and introspection endpoints: its secret
//! (HTTP Basic or the form body, compared by hash in constant time), a JWT signed with one of
//! its registered keys (`private_key_jwt`, RFC 7523: `alg=none` and HMAC refused, each `jti`
//! once), or nothing for a public client, which must then prove PKCE instead. A disabled
//! client is refused everywhere.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use usher_domain::Timestamp;
use usher_domain::ids::ClientId;
use usher_domain::oidc::{AuthMethod, OAuthError};
use usher_domain::secret::{Token, constant_time_eq};
use usher_store::oidc::OidcClient;

use super::endpoints;
use super::token::TokenParams;
use crate::{App, RequestContext, store_error};

/// The only assertion type (RFC 7523 §2.2).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Algorithms a client may sign its assertions with.
const ASSERTION_ALGS: [Algorithm; 3] = [Algorithm::ES256, Algorithm::RS256, Algorithm::PS256];
/// The longest an assertion may live (its `exp` after now): an hour, what client libraries such
/// as authlib give by default. Its `jti` is kept until then.
const ASSERTION_MAX_SECONDS: i64 = 3600;

/// What a request offered as proof of the client.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub basic: Option<(String, String)>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion: Option<String>,
    pub assertion_type: Option<String>,
}

impl ClientCredentials {
    pub fn from_request(params: &TokenParams, basic: Option<(String, String)>) -> Self {
        Self {
            basic,
            client_id: params.client_id.clone(),
            client_secret: params.client_secret.clone(),
            assertion: params.client_assertion.clone(),
            assertion_type: params.client_assertion_type.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
}

/// Checks a client's JWK Set at registration: JSON, at least one signing key of a usable kind,
/// and no private parts.
pub fn check_jwks(text: &str) -> Result<(), String> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|_| "The public keys must be a JWK Set (JSON with \"keys\").".to_owned())?;
    let raw: serde_json::Value = serde_json::from_str(text).map_err(|_| "The public keys are not JSON.".to_owned())?;
    let private = raw["keys"].as_array().is_some_and(|keys| keys.iter().any(|k| k.get("d").is_some()));
    if private {
        return Err("The key set holds a private key: give only the public keys.".into());
    }
    // Only what an assertion may be signed with (ES256, RS256, PS256): no shared-secret key
    // (its secret would be stored in clear), no other curve, no key marked for encryption.
    let fit = |k: &serde_json::Value| {
        let sig = k.get("use").is_none_or(|u| u == "sig");
        let rsa = k["kty"] == "RSA" && k["n"].as_str().is_some_and(|n| n.len() >= 342); // 2048 bits, base64url
        let p256 = k["kty"] == "EC" && k["crv"] == "P-256";
        sig && (rsa || p256)
    };
    let keys = raw["keys"].as_array().map(Vec::as_slice).unwrap_or_default();
    if set.keys.is_empty() || !keys.iter().all(fit) || set.keys.iter().any(|k| DecodingKey::from_jwk(k).is_err()) {
        return Err(
            "Every key must be an RSA public key of at least 2048 bits or a P-256 public key, for signing.".into()
        );
    }
    Ok(())
}

fn invalid() -> OAuthError {
    OAuthError::invalid_client("The client could not be authenticated.")
}

impl App {
    /// The client a request comes from, once it has proven itself.
    pub(crate) async fn authenticate_client(
        &self,
        c: &ClientCredentials,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<OidcClient, OAuthError> {
        let asserted = c.assertion.as_deref().map(jsonwebtoken::dangerous::insecure_decode_claims::<AssertionClaims>);
        let claimed_id = match (&c.basic, &c.client_id, &asserted) {
            (Some((id, _)), _, _) => id.clone(),
            (None, Some(id), _) => id.clone(),
            (None, None, Some(Ok(claims))) => claims.sub.clone(),
            _ => return Err(OAuthError::invalid_client("Say which client you are (client_id).")),
        };
        let id = ClientId::parse(&claimed_id).ok_or_else(invalid)?;
        // Only an assertion writes (its jti); a secret is checked in a read, so token requests
        // do not queue for SQLite's one writer.
        let began = if c.assertion.is_some() { self.store.begin().await } else { self.store.begin_read().await };
        let mut tx = began.map_err(|e| {
            tracing::error!(error = %e, "client authentication failed");
            OAuthError::server_error()
        })?;
        let client = tx.client(&id).await.map_err(|e| token_db(store_error(e)))?;
        let Some(client) = client.filter(|cl| cl.disabled_at.is_none()) else { return Err(invalid()) };
        let secret = match (&c.basic, &c.client_secret) {
            (Some((_, s)), None) => Some((s.as_str(), AuthMethod::SecretBasic)),
            (None, Some(s)) => Some((s.as_str(), AuthMethod::SecretPost)),
            (Some(_), Some(_)) => return Err(OAuthError::invalid_request("Use one way of authenticating the client.")),
            (None, None) => None,
        };
        match (client.auth_method, secret, c.assertion.as_deref()) {
            (method, Some((given, used)), None) if method == used => {
                let live = tx.live_client_secrets(&client.id, now).await.map_err(|e| token_db(store_error(e)))?;
                let offered = Token::parse(given).map(|t| t.hash());
                let ok = offered.is_some_and(|h| {
                    live.iter()
                        .fold(false, |acc, l| acc | constant_time_eq(l.as_str().as_bytes(), h.as_str().as_bytes()))
                });
                if !ok {
                    return Err(invalid());
                }
            }
            (AuthMethod::PrivateKeyJwt, None, Some(assertion)) => {
                if c.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
                    return Err(OAuthError::invalid_client("client_assertion_type must be jwt-bearer."));
                }
                let (exp, jti) = self.check_assertion(&client, assertion, now)?;
                if !tx.use_assertion_id(&client.id, &jti, exp).await.map_err(|e| token_db(store_error(e)))? {
                    let mut event = ctx.event("oidc.assertion_replayed", "refused");
                    event.detail = Some(format!("client {}", client.id));
                    tx.append_audit(&event, now).await.map_err(|e| token_db(store_error(e)))?;
                    tx.commit().await.map_err(|e| token_db(store_error(e)))?;
                    return Err(OAuthError::invalid_client("This client assertion was used already."));
                }
            }
            (AuthMethod::None, None, None) => {}
            _ => return Err(invalid()),
        }
        tx.commit().await.map_err(|e| token_db(store_error(e)))?;
        Ok(client)
    }

    /// Verifies a client assertion's signature and claims; returns its expiry and ID.
    fn check_assertion(
        &self,
        client: &OidcClient,
        assertion: &str,
        now: Timestamp,
    ) -> Result<(Timestamp, String), OAuthError> {
        let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid())?;
        if !ASSERTION_ALGS.contains(&header.alg) {
            return Err(invalid());
        }
        let set: JwkSet = client.jwks.as_deref().and_then(|j| serde_json::from_str(j).ok()).ok_or_else(invalid)?;
        let mut validation = Validation::new(header.alg);
        validation.validate_exp = false;
        validation.set_audience(&[self.issuer(), format!("{}{}", self.issuer(), endpoints::TOKEN)]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let candidates = set.keys.iter().filter(|k| header.kid.is_none() || k.common.key_id == header.kid);
        let claims = candidates
            .filter_map(|k| DecodingKey::from_jwk(k).ok())
            .find_map(|key| jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation).ok())
            .ok_or_else(invalid)?
            .claims;
        let id = client.id.to_string();
        if claims.iss != id || claims.sub != id || claims.jti.is_empty() || claims.jti.len() > 200 {
            return Err(invalid());
        }
        if claims.exp <= now.unix() || claims.exp > now.unix() + ASSERTION_MAX_SECONDS {
            return Err(OAuthError::invalid_client("The client assertion has expired or lives too long."));
        }
        Ok((Timestamp::from_unix(claims.exp), claims.jti))
    }
}

fn token_db(e: usher_domain::Error) -> OAuthError {
    tracing::error!(error = %e, "client authentication failed");
    OAuthError::server_error()
}

#[cfg(test)]
mod tests {
    use super::check_jwks;

    #[test]
    fn only_signing_keys_an_assertion_may_use_are_registered() {
        let p256 = r#"{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        assert!(check_jwks(&format!(r#"{{"keys":[{p256}]}}"#)).is_ok());
        let enc = p256.replace(r#""kty""#, r#""use":"enc","kty""#);
        for bad in [
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#.to_owned(),
            format!(r#"{{"keys":[{enc}]}}"#),
            r#"{"keys":[{"kty":"RSA","n":"sXch","e":"AQAB"}]}"#.to_owned(),
            r#"{"keys":[]}"#.to_owned(),
            "not json".to_owned(),
        ] {
            assert!(check_jwks(&bad).is_err(), "{bad}");
        }
    }
}
