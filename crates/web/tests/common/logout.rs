//! A service's side of back-channel logout for tests: an address that receives logout tokens
//! (and can be down), a service signed in to through the code flow, and a check of each token
//! against the published key set and the claims OpenID Connect Back-Channel Logout 1.0 §2.4 asks.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::oidc::*;
use super::{Client, TestApp};

/// A service's logout address: answers 200 while up (503 while down) and keeps each token.
#[derive(Clone, Default)]
pub struct Receiver {
    tokens: Arc<Mutex<Vec<String>>>,
    down: Arc<Mutex<bool>>,
}

impl Receiver {
    pub async fn start() -> (Self, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/logout",
            axum::routing::post(|axum::extract::State(s): axum::extract::State<Receiver>, body: String| async move {
                if *s.down.lock().unwrap() {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let token = form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                s.tokens.lock().unwrap().push(token);
                axum::http::StatusCode::OK
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app.with_state(state)).await });
        (r, format!("http://127.0.0.1:{port}/logout"))
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.tokens.lock().unwrap())
    }

    pub fn set_down(&self, down: bool) {
        *self.down.lock().unwrap() = down;
    }
}

/// Checks a logout token's signature against the published keys and its claims (§2.4), and
/// returns the claims.
pub async fn verified(t: &TestApp, token: &str, client_id: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&t.client().get("/oidc/jwks").await.body).unwrap();
    let jwk = jwks.find(header.kid.as_deref().unwrap()).expect("a published key");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[client_id]);
    v.set_issuer(&[t.app.issuer()]);
    // The test clock stands far from the real one: times are checked against it below.
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token, &key, &v).expect("a valid signature").claims;
    let now = t.now().await.unix();
    assert_eq!(claims["iat"].as_i64(), Some(now), "{claims}");
    assert!(claims["exp"].as_i64().unwrap() > now, "{claims}");
    assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(), "{claims}");
    assert!(claims.get("nonce").is_none(), "a logout token has no nonce: {claims}");
    assert!(claims["sid"].as_str().is_some_and(|s| !s.is_empty()), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|s| s.len() >= 32), "{claims}");
    claims
}

pub struct Signed {
    pub rp: Rp,
    pub id_claims: Value,
    pub refresh: String,
}

/// Registers a service told at `logout`, and signs `c` in to it.
pub async fn signed_in_to(t: &TestApp, c: &Client, name: &str, logout: &str) -> Signed {
    let rp = register(t, name, |f| {
        f.backchannel_logout_uri = Some(logout.to_owned());
        f.post_logout_redirect_uris = vec!["https://court.example/signed-out".into()];
    })
    .await;
    let set = exchange(t, &rp, &code_for(c, &rp, &[]).await).await.json();
    Signed {
        id_claims: claims(set["id_token"].as_str().unwrap()),
        refresh: set["refresh_token"].as_str().unwrap().to_owned(),
        rp,
    }
}

pub async fn refresh_works(t: &TestApp, s: &Signed) -> bool {
    token(t, &s.rp, &[("grant_type", "refresh_token"), ("refresh_token", &s.refresh)]).await.status == 200
}

/// Delivers what is due and returns the tokens each service got, checked.
pub async fn delivered(t: &TestApp, r: &Receiver, services: &[&Signed]) -> Vec<Value> {
    t.deliver().await;
    let mut out = Vec::new();
    for token in r.take() {
        let aud = claims(&token)["aud"].as_str().unwrap().to_owned();
        let s = services.iter().find(|s| s.rp.id == aud).expect("a token for a known service");
        let c = verified(t, &token, &s.rp.id).await;
        assert_eq!(c["sub"], s.id_claims["sub"], "the sub of the service's ID token");
        assert_eq!(c["sid"], s.id_claims["sid"], "the sid of the service's ID token");
        out.push(c);
    }
    out
}
