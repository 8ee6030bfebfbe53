//! Usher under load: its configuration for a run, and the requests each measured path makes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};
use serde_json::json;
use usher_domain::Timestamp;
use usher_domain::totp::{DIGITS, TotpSecret, step_at};

use crate::load::{self, Job, Step};
use crate::procs::Server;
use crate::seed;

pub const SESSION_COOKIE: &str = "__Host-usher-session";
pub const CSRF_COOKIE: &str = "__Host-usher-csrf";
/// Any well-formed token serves as the anti-forgery token: Usher compares header and cookie.
pub const CSRF: &str = "YmVuY2gtY3NyZi10b2tlbi0wMDAwMDAwMDAwMDAwMDA";

/// The 32-byte key every benchmark server seals secrets with (base64).
pub const SECRET_KEY: &str = "dXNoZXItYmVuY2gtc2VjcmV0LWtleS0zMi1ieXRlcyE=";

/// Argon2id parameters: (memory in KiB, iterations).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
}

/// Usher's own (OWASP's minimum, S1).
pub const OURS: HashParams = HashParams { memory_kib: 19 * 1024, iterations: 2 };
/// Keycloak's default, from its sizing guide.
pub const KEYCLOAK: HashParams = HashParams { memory_kib: 7 * 1024, iterations: 5 };

impl HashParams {
    pub fn label(self) -> String {
        format!("Argon2id m={} MiB t={} p=1", self.memory_kib / 1024, self.iterations)
    }

    pub fn cost(self) -> usher_domain::password::HashCost {
        usher_domain::password::HashCost { memory_kib: self.memory_kib, iterations: self.iterations, parallelism: 1 }
    }
}

/// Writes a configuration file for a server on `port` over `database_url`.
pub fn write_config(dir: &Path, port: u16, database_url: &str, hash: HashParams) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("usher-{port}.toml"));
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         management_listen = \"127.0.0.1:0\"\n\
         public_base_url = \"http://127.0.0.1:{port}\"\n\
         data_dir = \"{dir}\"\n\
         database_url = \"{database_url}\"\n\
         secret_key = \"{SECRET_KEY}\"\n\
         # The load generator stands in for a reverse proxy in front of many clients.\n\
         trusted_proxies = [\"127.0.0.1\"]\n\
         [log]\nlevel = \"warn\"\n\
         [password_hashing]\nmemory_kib = {}\niterations = {}\nparallelism = 1\n",
        hash.memory_kib,
        hash.iterations,
        dir = dir.display(),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

/// Runs `usher --config CONFIG ARGS…` to the end; its standard output, or an error with its output.
pub fn run_cli(usher: &Path, config: &Path, args: &[&str], weak_hash: bool) -> anyhow::Result<String> {
    let env: &[(&str, &str)] = if weak_hash { &[("USHER_ALLOW_BENCHMARK_HASHING", "1")] } else { &[] };
    run_cli_env(usher, config, args, env)
}

/// [`run_cli`] with these environment variables set.
pub fn run_cli_env(usher: &Path, config: &Path, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<String> {
    let mut command = Command::new(usher);
    command.arg("--config").arg(config).args(args).envs(env.iter().copied());
    let out = command.output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        anyhow::bail!("usher {} failed: {}{}", args.join(" "), stdout, String::from_utf8_lossy(&out.stderr));
    }
    Ok(stdout)
}

pub async fn start(usher: &Path, dir: &Path, port: u16, config: &Path, weak_hash: bool) -> anyhow::Result<Server> {
    let mut command = Command::new(usher);
    command.arg("--config").arg(config).arg("serve");
    if weak_hash {
        command.env("USHER_ALLOW_BENCHMARK_HASHING", "1");
    }
    let log = dir.join(format!("usher-{port}.log"));
    Server::start("usher", command, format!("http://127.0.0.1:{port}"), "/healthz", &log).await
}

/// A client that keeps its connections, as a load balancer would.
pub fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().pool_max_idle_per_host(1024).build()?)
}

/// A distinct client address for request `n`, so per-IP limits see many clients.
pub fn forwarded_for(n: u64) -> String {
    format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255)
}

/// The code account `i`'s app shows now.
pub fn totp_code(i: u64, now: Timestamp) -> String {
    TotpSecret::from_bytes(seed::totp_secret(i)).code_for_step(step_at(now), DIGITS)
}

pub fn now() -> Timestamp {
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Timestamp::from_unix(i64::try_from(unix).unwrap_or(0))
}

async fn expect(answer: reqwest::Result<reqwest::Response>, what: &str) -> Result<reqwest::Response, Step> {
    match answer {
        Ok(r) if r.status().is_success() => Ok(r),
        Ok(r) => {
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            Err(Step::Failed(format!("{what}: {status} {}", body.chars().take(300).collect::<String>())))
        }
        Err(e) => Err(Step::Failed(format!("{what}: {e}"))),
    }
}

fn finish(result: Result<(), Step>) -> Step {
    result.err().unwrap_or(Step::Done)
}

/// GET /api/v1/session with the full sessions `0..pool`: each once when `once`, else round and round.
pub fn session_check(client: reqwest::Client, base: String, pool: u64, once: bool) -> Job {
    let range = (0, if once { pool } else { u64::MAX });
    load::each_account_once(range, move |n, _| {
        let (client, base) = (client.clone(), base.clone());
        Box::pin(async move {
            let token = seed::session_token("full", n % pool.max(1));
            let answer = client
                .get(format!("{base}/api/v1/session"))
                .header(COOKIE, format!("{SESSION_COOKIE}={token}"))
                .send()
                .await;
            finish(expect(answer, "session").await.map(drop))
        })
    })
}

/// The bare handler's twin of the session check: the same GET, no session.
pub fn bare(client: reqwest::Client, base: String) -> Job {
    Arc::new(move |_| {
        let (client, base) = (client.clone(), base.clone());
        Box::pin(async move {
            finish(expect(client.get(format!("{base}/api/v1/session")).send().await, "bare").await.map(drop))
        })
    })
}

/// The second step of sign-in for accounts `from..to`, each once, with its app's current code,
/// from a session that has passed the password step.
pub fn second_factor(client: reqwest::Client, base: String, range: (u64, u64)) -> Job {
    load::each_account_once(range, move |i, _| {
        let (client, base) = (client.clone(), base.clone());
        Box::pin(async move {
            let token = seed::session_token("second_factor", i);
            finish(send_code(&client, &base, &token, CSRF, i).await)
        })
    })
}

async fn send_code(client: &reqwest::Client, base: &str, session: &str, csrf: &str, i: u64) -> Result<(), Step> {
    let answer = client
        .post(format!("{base}/api/v1/sign-in/second-factor"))
        .header(COOKIE, format!("{SESSION_COOKIE}={session}; {CSRF_COOKIE}={csrf}"))
        .header("x-csrf-token", csrf)
        .json(&json!({ "method": "app", "code": totp_code(i, now()) }))
        .send()
        .await;
    expect(answer, "second factor").await.map(drop)
}

async fn password_step(client: &reqwest::Client, base: &str, i: u64, n: u64) -> Result<reqwest::Response, Step> {
    let answer = client
        .post(format!("{base}/api/v1/sign-in"))
        .header("x-forwarded-for", forwarded_for(n))
        .json(&json!({ "email": seed::email(i), "password": seed::PASSWORD }))
        .send()
        .await;
    expect(answer, "sign-in").await
}

/// The password step for accounts `from..to` in turn (round and round).
pub fn sign_in(client: reqwest::Client, base: String, (from, to): (u64, u64)) -> Job {
    Arc::new(move |n| {
        let (client, base) = (client.clone(), base.clone());
        Box::pin(async move {
            let i = from + n % (to - from).max(1);
            finish(password_step(&client, &base, i, n).await.map(drop))
        })
    })
}

/// The whole sign-in: password, then the app's code, for accounts `from..to`, each once.
pub fn full_sign_in(client: reqwest::Client, base: String, range: (u64, u64)) -> Job {
    load::each_account_once(range, move |i, n| {
        let (client, base) = (client.clone(), base.clone());
        Box::pin(async move {
            let flow = async {
                let answer = password_step(&client, &base, i, n).await?;
                let cookies = answer.headers().clone();
                let session = cookie(&cookies, SESSION_COOKIE).ok_or(Step::Failed("no session cookie".into()))?;
                let csrf = cookie(&cookies, CSRF_COOKIE).ok_or(Step::Failed("no csrf cookie".into()))?;
                send_code(&client, &base, &session, &csrf, i).await
            };
            finish(flow.await)
        })
    })
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, _) = v.split_once(';').unwrap_or((v, ""));
        let (k, value) = pair.split_once('=')?;
        (k.trim() == name).then(|| value.trim().to_owned())
    })
}
