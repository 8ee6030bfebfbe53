//! Helpers for tests of the OpenID Connect provider: a registered client, the code flow as a
//! signed-in person, and the token endpoint.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use usher_app::oidc::clients::{ClientForm, Registrar};

use super::{Client, Page, TestApp};

/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
pub const REDIRECT: &str = "https://court.example/callback";

pub struct Rp {
    pub id: String,
    pub secret: Option<String>,
}

pub async fn register(t: &TestApp, name: &str, adjust: impl FnOnce(&mut ClientForm)) -> Rp {
    let mut form = ClientForm { name: name.into(), redirect_uris: vec![REDIRECT.into()], ..ClientForm::default() };
    adjust(&mut form);
    let now = t.now().await;
    let r = t.app.register_client(Registrar::Console, &form, &TestApp::system(), now).await.expect("registered");
    Rp { id: r.client.id.to_string(), secret: r.secret.map(|s| s.expose().to_owned()) }
}

pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

pub fn authorize_path(rp: &Rp, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", rp.id.as_str()),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email organisation"),
        ("state", "state-1"),
        ("nonce", "nonce-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        pairs.retain(|(name, _)| name != k);
        if !v.is_empty() {
            pairs.push((k, v));
        }
    }
    format!("/oidc/authorize?{}", query(&pairs))
}

/// The parameters on an address at the client.
pub fn params_of(location: &str) -> Vec<(String, String)> {
    let q = location.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

pub fn param(location: &str, name: &str) -> Option<String> {
    params_of(location).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// Authorizes as the signed-in `c` and continues on the page; returns the code.
pub async fn code_for(c: &Client, rp: &Rp, extra: &[(&str, &str)]) -> String {
    let start = c.get(&authorize_path(rp, extra)).await;
    assert_eq!(start.status, 303, "{}", start.body);
    let page_path = start.location().unwrap();
    assert!(page_path.starts_with("/oidc/authorize/"), "{page_path}");
    let page = c.get(&page_path).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = c.post_form(&page_path, &[("action", "continue")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let back = done.location().unwrap();
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(param(&back, "state").as_deref(), Some("state-1"));
    param(&back, "code").expect("a code")
}

pub async fn token(t: &TestApp, rp: &Rp, fields: &[(&str, &str)]) -> Page {
    let c = t.client();
    let basic = rp.secret.as_ref().map(|s| format!("Basic {}", STANDARD.encode(format!("{}:{s}", rp.id))));
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    if rp.secret.is_none() {
        all.push(("client_id", rp.id.as_str()));
    }
    let headers: Vec<(&str, &str)> = basic.as_deref().map(|b| vec![("authorization", b)]).unwrap_or_default();
    c.post_raw("/oidc/token", &all, &headers).await
}

pub async fn exchange(t: &TestApp, rp: &Rp, code: &str) -> Page {
    token(
        t,
        rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
