//! court-service: a small example of a justice service that signs people in with their Usher
//! account, as a court platform signs defence users in. It is an OpenID Connect relying party
//! with the authorization code flow, PKCE, state and nonce; it checks the ID token's signature
//! against Usher's published keys, its issuer, audience, expiry and nonce, and shows what the
//! token says: the person's name, organisation, kind of organisation and how they signed in.
//! Signing out goes both ways: "Sign out" here sends the browser to Usher's end-session endpoint
//! (RP-Initiated Logout, with the ID token as hint, and back here with `state`), and a session
//! ended at Usher ends here too, by the logout token Usher posts to `/backchannel-logout`
//! (Back-Channel Logout: signature, issuer, audience, `typ`, event, no nonce, and a `jti` seen
//! once).
//!
//! Beside `cargo run -- serve`:
//!
//! ```sh
//! cargo run -- clients add --name "Court platform" --redirect-uri http://localhost:4000/callback \
//!   --post-logout-redirect-uri http://localhost:4000/signed-out \
//!   --backchannel-logout-uri http://localhost:4000/backchannel-logout --json > court-service.json
//! cargo run -p court-service
//! ```
//!
//! then open <http://localhost:4000>. Settings (environment): `COURT_CLIENT` (the JSON that
//! `usher clients add --json` printed; default `court-service.json`), `COURT_LISTEN` (default
//! `127.0.0.1:4000`), `COURT_BASE_URL` (default `http://localhost:4000`).
//!
//! An example, not a library: it keeps sign-ins in memory and is meant for one machine.

// This program's console output is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

/// What `usher clients add --json` prints.
#[derive(Debug, Deserialize)]
struct Registration {
    client_id: String,
    client_secret: Option<String>,
    issuer: String,
}

/// The parts of Usher's discovery document this service uses.
#[derive(Debug, Clone, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    end_session_endpoint: Option<String>,
}

/// A sign-in under way: what the answer must match.
#[derive(Debug)]
struct Pending {
    verifier: String,
    nonce: String,
}

#[derive(Debug)]
struct Rp {
    client: Registration,
    base_url: String,
    http: reqwest::Client,
    /// By `state`.
    pending: Mutex<HashMap<String, Pending>>,
    /// By this service's own session cookie.
    sessions: Mutex<HashMap<String, Session>>,
    /// The `jti` of each logout token taken (a replay is refused), and the `state` of each
    /// sign-out sent to Usher.
    seen_jti: Mutex<HashSet<String>>,
    signing_out: Mutex<HashSet<String>>,
}

/// A person signed in here: the ID token and its claims (its `sid` names the Usher session).
#[derive(Debug, Clone)]
struct Session {
    id_token: String,
    claims: Value,
}

const COOKIE: &str = "court-session";
/// Ties a sign-in under way to the browser that started it (no login CSRF).
const PENDING_COOKIE: &str = "court-pending";
/// At most this many sign-ins (or sign-outs, or logout token IDs) are remembered; past that,
/// the list starts again.
const PENDING_MAX: usize = 10_000;
/// The event a logout token carries (Back-Channel Logout 1.0 §2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn random() -> String {
    let mut bytes = [0u8; 32];
    // The system's random source failing is not something to carry on from.
    if SystemRandom::new().fill(&mut bytes).is_err() {
        std::process::abort();
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} – Court platform (example)</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.5;color:#0b0c0c}}\
         a.button{{display:inline-block;background:#00703c;color:#fff;padding:.5rem 1rem;text-decoration:none;font-weight:bold}}\
         a.button:focus{{outline:3px solid #fd0}}dt{{font-weight:bold}}dd{{margin:0 0 .75rem}}</style></head>\
         <body><header><p><strong>Court platform</strong> (an example service)</p></header><main><h1>{title}</h1>{body}</main></body></html>"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies.split(';').map(str::trim).find_map(|c| c.strip_prefix(&format!("{name}="))).map(str::to_owned)
}

fn session_of(headers: &HeaderMap) -> Option<String> {
    cookie(headers, COOKIE)
}

/// How the person signed in, in words, from the ID token's `usher_methods` (Usher's names of
/// the methods proven), falling back on RFC 8176 `amr`.
fn how_signed_in(claims: &Value) -> String {
    let named = |m: &str| match m {
        "password" => "a password",
        "totp" => "an authenticator app",
        "email_code" => "a code sent by email",
        "sms" => "a code sent by text message",
        "recovery_code" => "a recovery code",
        "passkey" => "a passkey",
        _ => "another method",
    };
    let list = |key: &str| -> Vec<String> {
        claims[key]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let methods = list("usher_methods");
    let words: Vec<&str> = if methods.is_empty() {
        list("amr")
            .iter()
            .filter(|v| *v != "mfa")
            .map(|v| if v == "pwd" { "a password" } else { "a one-time code" })
            .collect()
    } else {
        methods.iter().map(|m| named(m)).collect()
    };
    match words.as_slice() {
        [] => "Usher did not say".to_owned(),
        [one] => format!("With {one}"),
        [first @ .., last] => format!("With {} and {last}", first.join(", ")),
    }
}

async fn home(State(rp): State<Arc<Rp>>, headers: HeaderMap) -> Html<String> {
    let claims = session_of(&headers).and_then(|s| Some(rp.sessions.lock().ok()?.get(&s)?.claims.clone()));
    let Some(c) = claims else {
        return page(
            "Sign in to the court platform",
            "<p>Defence practitioners sign in with their Usher account.</p><p><a class=\"button\" href=\"/login\">Sign in with Usher</a></p>",
        );
    };
    let text = |v: &Value| escape(v.as_str().unwrap_or("(not given)"));
    let organisation = &c["organisation"];
    let body = format!(
        "<p>You are signed in. This is what Usher's ID token says about you.</p><dl>\
         <dt>Name</dt><dd>{}</dd><dt>Email address</dt><dd>{}</dd>\
         <dt>Organisation</dt><dd>{}</dd><dt>Kind of organisation</dt><dd>{}</dd><dt>Role</dt><dd>{}</dd>\
         <dt>How you signed in</dt><dd>{}</dd><dt>Assurance (acr)</dt><dd>{}</dd>\
         <dt>Your identifier at this service (sub)</dt><dd><code>{}</code></dd></dl>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form>",
        text(&c["name"]),
        text(&c["email"]),
        text(&organisation["name"]),
        text(&organisation["kind"]),
        text(&c["role"]),
        escape(&how_signed_in(&c)),
        text(&c["acr"]),
        text(&c["sub"]),
    );
    page("Welcome to the court platform", &body)
}

async fn discover(rp: &Rp) -> Result<Discovery, String> {
    let url = format!("{}/.well-known/openid-configuration", rp.client.issuer);
    let d: Discovery = rp
        .http
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("cannot reach Usher at {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if d.issuer != rp.client.issuer {
        return Err(format!("the discovery document names issuer {}, not {}", d.issuer, rp.client.issuer));
    }
    Ok(d)
}

fn trouble(status: StatusCode, what: &str) -> Response {
    (
        status,
        page("Sorry, signing in did not work", &format!("<p>{}</p><p><a href=\"/\">Try again</a></p>", escape(what))),
    )
        .into_response()
}

async fn login(State(rp): State<Arc<Rp>>) -> Response {
    let d = match discover(&rp).await {
        Ok(d) => d,
        Err(e) => return trouble(StatusCode::BAD_GATEWAY, &e),
    };
    let (state, nonce, verifier) = (random(), random(), random());
    let challenge = URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &rp.client.client_id)
        .append_pair("redirect_uri", &format!("{}/callback", rp.base_url))
        .append_pair("scope", "openid profile email organisation")
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    if let Ok(mut p) = rp.pending.lock() {
        if p.len() >= PENDING_MAX {
            p.clear();
        }
        p.insert(state.clone(), Pending { verifier, nonce });
    }
    let mut response = Redirect::to(&format!("{}?{query}", d.authorization_endpoint)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{PENDING_COOKIE}={state}; Path=/callback; HttpOnly; SameSite=Lax")) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    response
}

#[derive(Debug, Deserialize)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(State(rp): State<Arc<Rp>>, headers: HeaderMap, Query(answer): Query<Callback>) -> Response {
    if answer.state.is_none() || cookie(&headers, PENDING_COOKIE) != answer.state {
        return trouble(StatusCode::BAD_REQUEST, "This sign-in was not started in this browser. Start again here.");
    }
    match finish(&rp, answer).await {
        Ok(session) => {
            let id = random();
            if let Ok(mut s) = rp.sessions.lock() {
                s.insert(id.clone(), session);
            }
            let mut response = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax")) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            response
        }
        Err(e) => trouble(StatusCode::BAD_REQUEST, &e),
    }
}

/// The checks a relying party makes on the way back (OpenID Connect Core §3.1.3.7).
async fn finish(rp: &Rp, answer: Callback) -> Result<Session, String> {
    let pending = answer.state.as_deref().and_then(|s| rp.pending.lock().ok()?.remove(s));
    let Some(pending) = pending else { return Err("This sign-in was not started here, or was used already.".into()) };
    if let Some(error) = answer.error {
        return Err(format!("Usher answered {error}: {}", answer.error_description.unwrap_or_default()));
    }
    let d = discover(rp).await?;
    if answer.iss.as_deref() != Some(d.issuer.as_str()) {
        return Err("The answer does not come from the expected issuer (RFC 9207).".into());
    }
    let code = answer.code.ok_or("The answer has no code.")?;
    let redirect_uri = format!("{}/callback", rp.base_url);
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", pending.verifier.as_str()),
    ];
    let mut request = rp.http.post(&d.token_endpoint);
    match &rp.client.client_secret {
        Some(secret) => request = request.basic_auth(&rp.client.client_id, Some(secret)),
        None => form.push(("client_id", rp.client.client_id.as_str())),
    }
    let tokens: Value =
        request.form(&form).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    let id_token = tokens["id_token"].as_str().ok_or_else(|| format!("The token endpoint answered {tokens}"))?;
    let claims = verified(rp, &d, id_token, None).await?;
    if claims["nonce"].as_str() != Some(pending.nonce.as_str()) {
        return Err("The ID token is for another sign-in (its nonce differs).".into());
    }
    Ok(Session { id_token: id_token.to_owned(), claims })
}

/// A JWT from Usher checked against its published keys, issuer and this service as audience;
/// `typ`, when given, must be the header's.
async fn verified(rp: &Rp, d: &Discovery, token: &str, typ: Option<&str>) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    if typ.is_some_and(|t| header.typ.as_deref() != Some(t)) {
        return Err(format!("the token's typ is {:?}, not {typ:?}", header.typ));
    }
    let keys: JwkSet =
        rp.http.get(&d.jwks_uri).send().await.map_err(|e| e.to_string())?.json().await.map_err(|e| e.to_string())?;
    let jwk = header.kid.as_deref().and_then(|kid| keys.find(kid)).ok_or("The token's key is not published.")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[&d.issuer]);
    validation.set_audience(&[&rp.client.client_id]);
    Ok(jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?.claims)
}

/// Remembers `item` in `set`; false if it was there already.
fn first_time(set: &Mutex<HashSet<String>>, item: &str) -> bool {
    let Ok(mut set) = set.lock() else { return false };
    if set.len() >= PENDING_MAX {
        set.clear();
    }
    set.insert(item.to_owned())
}

fn cleared_session(mut response: Response) -> Response {
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_static("court-session=; Path=/; Max-Age=0"));
    response
}

/// "Sign out": ends the session here, then asks Usher to end its own (RP-Initiated Logout).
async fn logout(State(rp): State<Arc<Rp>>, headers: HeaderMap) -> Response {
    let session = session_of(&headers).and_then(|id| rp.sessions.lock().ok()?.remove(&id));
    let end = match (session, discover(&rp).await) {
        (Some(s), Ok(Discovery { end_session_endpoint: Some(end), .. })) => Some((s, end)),
        _ => None,
    };
    let Some((session, end)) = end else { return cleared_session(Redirect::to("/signed-out").into_response()) };
    let state = random();
    first_time(&rp.signing_out, &state);
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &session.id_token)
        .append_pair("post_logout_redirect_uri", &format!("{}/signed-out", rp.base_url))
        .append_pair("state", &state)
        .finish();
    cleared_session(Redirect::to(&format!("{end}?{query}")).into_response())
}

#[derive(Debug, Deserialize)]
struct SignedOut {
    state: Option<String>,
}

async fn signed_out(State(rp): State<Arc<Rp>>, Query(q): Query<SignedOut>) -> Html<String> {
    let from_usher = q.state.is_some_and(|s| rp.signing_out.lock().is_ok_and(|mut set| set.remove(&s)));
    let usher = if from_usher {
        "<p>You have signed out of Usher too, and of the other services you signed in to with it.</p>"
    } else {
        "<p>You may still be signed in to Usher in this browser: on a shared computer, sign out there too.</p>"
    };
    page("You have signed out of the court platform", &format!("{usher}<p><a href=\"/\">Sign in again</a></p>"))
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    logout_token: Option<String>,
}

/// A session ended at Usher: the logout token names it by `sid` (Back-Channel Logout 1.0 §2.6).
async fn backchannel_logout(State(rp): State<Arc<Rp>>, axum::Form(form): axum::Form<LogoutForm>) -> Response {
    let refuse = |why: &str| {
        let body = serde_json::json!({ "error": "invalid_request", "error_description": why });
        (StatusCode::BAD_REQUEST, [(header::CACHE_CONTROL, "no-store")], axum::Json(body)).into_response()
    };
    let Some(token) = form.logout_token else { return refuse("no logout_token") };
    let d = match discover(&rp).await {
        Ok(d) => d,
        Err(e) => return (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
    };
    let claims = match verified(&rp, &d, &token, Some("logout+jwt")).await {
        Ok(c) => c,
        Err(e) => return refuse(&e),
    };
    if !claims["events"][LOGOUT_EVENT].is_object() || claims.get("nonce").is_some() {
        return refuse("not a logout token");
    }
    let (Some(jti), Some(sid)) = (claims["jti"].as_str(), claims["sid"].as_str()) else {
        return refuse("a logout token needs a jti and a sid here");
    };
    if !first_time(&rp.seen_jti, jti) {
        return refuse("this logout token was used already");
    }
    if let Ok(mut sessions) = rp.sessions.lock() {
        sessions.retain(|_, s| s.claims["sid"].as_str() != Some(sid));
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]).into_response()
}

#[tokio::main]
async fn main() {
    let path = std::env::var("COURT_CLIENT").unwrap_or_else(|_| "court-service.json".into());
    let client: Registration = match std::fs::read_to_string(&path).map_err(|e| e.to_string()).and_then(|text| {
        let line = text.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default().to_owned();
        serde_json::from_str(&line).map_err(|e| e.to_string())
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "court-service: cannot read the client registration from {path} ({e}).\n\
                 Register it first, beside `cargo run -- serve`:\n  \
                 cargo run -- clients add --name \"Court platform\" --redirect-uri http://localhost:4000/callback \\\n    \
                   --post-logout-redirect-uri http://localhost:4000/signed-out \\\n    \
                   --backchannel-logout-uri http://localhost:4000/backchannel-logout --json > court-service.json"
            );
            std::process::exit(2);
        }
    };
    let listen = std::env::var("COURT_LISTEN").unwrap_or_else(|_| "127.0.0.1:4000".into());
    let base_url = std::env::var("COURT_BASE_URL").unwrap_or_else(|_| "http://localhost:4000".into());
    let rp = Arc::new(Rp {
        client,
        base_url: base_url.trim_end_matches('/').to_owned(),
        http: reqwest::Client::new(),
        pending: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        seen_jti: Mutex::new(HashSet::new()),
        signing_out: Mutex::new(HashSet::new()),
    });
    let app = Router::new()
        .route("/", get(home))
        .route("/login", get(login))
        .route("/callback", get(callback))
        .route("/logout", post(logout))
        .route("/signed-out", get(signed_out))
        .route("/backchannel-logout", post(backchannel_logout))
        .with_state(Arc::clone(&rp));
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("court-service: cannot listen on {listen}: {e}");
            std::process::exit(1);
        }
    };
    println!("The court platform (example) is running: open {} (signing in with {})", rp.base_url, rp.client.issuer);
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("court-service: {e}");
    }
}
