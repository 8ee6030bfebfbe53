//! Usher as an OpenID Connect provider under load: whole code flows by people already signed in
//! (authorize, the "Continue to ..." page and its answer, the token endpoint, userinfo), and
//! token refreshes, each rotating its refresh token.

use std::path::Path;
use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, LOCATION};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::load::{Job, Step};
use crate::seed;
use crate::usher::{CSRF, CSRF_COOKIE, SESSION_COOKIE, forwarded_for, run_cli};

/// Where the benchmark's relying party says it lives; Usher never calls it.
const REDIRECT: &str = "https://rp.bench.test/callback";
/// RFC 7636 Appendix B: a verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The relying party registered for the run.
#[derive(Debug, Clone, Deserialize)]
pub struct Rp {
    pub client_id: String,
    pub client_secret: String,
}

/// Registers the relying party with `usher clients add`, as an operator would.
pub fn register(usher: &Path, config: &Path) -> anyhow::Result<Rp> {
    let out =
        run_cli(usher, config, &["clients", "add", "--name", "Bench RP", "--redirect-uri", REDIRECT, "--json"], false)?;
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| anyhow::anyhow!("no JSON from clients add: {out}"))?;
    Ok(serde_json::from_str(line)?)
}

/// The seeded full sessions as a sign-in with a password and an app code at `now` leaves them.
pub async fn prove_sessions(pool: &sqlx::AnyPool, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE sessions SET evidence = $1, authenticated_at = $2 WHERE stage = 'full'")
        .bind(format!("password:{now} totp:{now}"))
        .bind(now)
        .execute(pool)
        .await?;
    Ok(())
}

/// A client that stops at redirects: each step of the flow is a request of its own.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).pool_max_idle_per_host(1024).build()?)
}

fn failed(what: &str, status: StatusCode, body: &str) -> Step {
    Step::Failed(format!("{what}: {status} {}", body.chars().take(300).collect::<String>()))
}

async fn redirect_of(answer: reqwest::Result<reqwest::Response>, what: &str) -> Result<String, Step> {
    let r = answer.map_err(|e| Step::Failed(format!("{what}: {e}")))?;
    let status = r.status();
    match r.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
        Some(l) if status.is_redirection() => Ok(l.to_owned()),
        _ => Err(failed(what, status, &r.text().await.unwrap_or_default())),
    }
}

async fn json_of(answer: reqwest::Result<reqwest::Response>, what: &str) -> Result<serde_json::Value, Step> {
    let r = answer.map_err(|e| Step::Failed(format!("{what}: {e}")))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(failed(what, status, &text));
    }
    serde_json::from_str(&text).map_err(|e| Step::Failed(format!("{what}: {e}")))
}

/// One whole code flow for the person of full session `i`; returns the refresh token.
async fn code_flow(http: &reqwest::Client, base: &str, rp: &Rp, i: u64, n: u64) -> Result<String, Step> {
    let cookies = format!("{SESSION_COOKIE}={}; {CSRF_COOKIE}={CSRF}", seed::session_token("full", i));
    let mut url = reqwest::Url::parse(&format!("{base}/oidc/authorize")).map_err(|e| Step::Failed(e.to_string()))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &rp.client_id)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile email organisation")
        .append_pair("state", &format!("s{n}"))
        .append_pair("nonce", &format!("n{n}"))
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let ip = forwarded_for(n);
    let page =
        redirect_of(http.get(url).header(COOKIE, &cookies).header("x-forwarded-for", &ip).send().await, "authorize")
            .await?;
    let shown = http.get(format!("{base}{page}")).header(COOKIE, &cookies).header("x-forwarded-for", &ip).send().await;
    match shown {
        Ok(r) if r.status() == StatusCode::OK => {}
        Ok(r) => return Err(failed("continue page", r.status(), &r.text().await.unwrap_or_default())),
        Err(e) => return Err(Step::Failed(format!("continue page: {e}"))),
    }
    let back = redirect_of(
        http.post(format!("{base}{page}"))
            .header(COOKIE, &cookies)
            .header("x-forwarded-for", &ip)
            .header("sec-fetch-site", "same-origin")
            .form(&[("csrf_token", CSRF), ("action", "continue")])
            .send()
            .await,
        "continue",
    )
    .await?;
    let back = reqwest::Url::parse(&back).map_err(|e| Step::Failed(format!("the way back: {e}")))?;
    let code = back.query_pairs().find(|(k, _)| k == "code").map(|(_, v)| v.into_owned());
    let code = code.ok_or_else(|| Step::Failed(format!("no code in {back}")))?;
    let tokens = json_of(
        http.post(format!("{base}/oidc/token"))
            .basic_auth(&rp.client_id, Some(&rp.client_secret))
            .header("x-forwarded-for", &ip)
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ])
            .send()
            .await,
        "token",
    )
    .await?;
    let access = tokens["access_token"].as_str().ok_or_else(|| Step::Failed(format!("no access token: {tokens}")))?;
    json_of(
        http.get(format!("{base}/oidc/userinfo"))
            .header(AUTHORIZATION, format!("Bearer {access}"))
            .header("x-forwarded-for", &ip)
            .send()
            .await,
        "userinfo",
    )
    .await?;
    tokens["refresh_token"].as_str().map(str::to_owned).ok_or_else(|| Step::Failed("no refresh token".into()))
}

/// Whole code flows, the people of full sessions `0..pool` in turn.
pub fn code_flows(http: reqwest::Client, base: String, rp: Rp, pool: u64) -> Job {
    let rp = Arc::new(rp);
    Arc::new(move |n| {
        let (http, base, rp) = (http.clone(), base.clone(), Arc::clone(&rp));
        Box::pin(async move {
            match code_flow(&http, &base, &rp, n % pool.max(1), n).await {
                Ok(_) => Step::Done,
                Err(step) => step,
            }
        })
    })
}

/// Refresh tokens for `slots` people, got by code flows, each then rotated by the refresh job.
pub async fn refresh_tokens(http: &reqwest::Client, base: &str, rp: &Rp, slots: u64) -> anyhow::Result<Vec<String>> {
    let mut tokens = Vec::new();
    for i in 0..slots {
        match code_flow(http, base, rp, i, i).await {
            Ok(t) => tokens.push(t),
            Err(Step::Failed(why)) => anyhow::bail!("a code flow for the refresh tokens failed: {why}"),
            Err(_) => anyhow::bail!("a code flow for the refresh tokens failed"),
        }
    }
    Ok(tokens)
}

/// Token refreshes: request `n` renews slot `n % slots`, whose token the answer replaces (each
/// slot is one relying party's session, refreshed by one request at a time).
pub fn refreshes(http: reqwest::Client, base: String, rp: Rp, tokens: Vec<String>) -> Job {
    let slots: Arc<Vec<Mutex<String>>> = Arc::new(tokens.into_iter().map(Mutex::new).collect());
    let rp = Arc::new(rp);
    Arc::new(move |n| {
        let (http, base, rp, slots) = (http.clone(), base.clone(), Arc::clone(&rp), Arc::clone(&slots));
        Box::pin(async move {
            let Some(slot) = slots.get((n % slots.len().max(1) as u64) as usize) else {
                return Step::Exhausted;
            };
            let mut token = slot.lock().await;
            let answer = http
                .post(format!("{base}/oidc/token"))
                .basic_auth(&rp.client_id, Some(&rp.client_secret))
                .header("x-forwarded-for", forwarded_for(n))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", token.as_str())])
                .send()
                .await;
            match json_of(answer, "refresh").await {
                Ok(set) => match set["refresh_token"].as_str() {
                    Some(next) => {
                        *token = next.to_owned();
                        Step::Done
                    }
                    None => Step::Failed(format!("no new refresh token: {set}")),
                },
                Err(step) => step,
            }
        })
    })
}
