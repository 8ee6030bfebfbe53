//! The peer: a Django project with django-allauth's headless API and TOTP MFA (bench/peer),
//! installed from PyPI into a virtual environment at run time, served by gunicorn, and driven
//! through the same sign-in + TOTP flow as Usher by the same load generator.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde_json::json;

use crate::load::{self, Job, Step};
use crate::procs::{Memory, Server};
use crate::seed::{self, Engine};
use crate::{Measured, Settings, measure, procs, usher};

/// The peer's project, relative to the repository root (where the suite runs).
const PROJECT: &str = "bench/peer";

#[derive(Debug)]
pub struct PeerEnv {
    project: PathBuf,
    python: PathBuf,
    gunicorn: PathBuf,
    /// The installed versions of what matters, for the report.
    pub versions: String,
}

impl PeerEnv {
    /// Makes (or reuses) the virtual environment under `work` with the pinned requirements.
    pub async fn prepare(work: &Path) -> anyhow::Result<Self> {
        let project =
            std::fs::canonicalize(PROJECT).with_context(|| format!("no {PROJECT}: run from the repository root"))?;
        let venv = work.join("peer-venv");
        let status = Command::new("bash").arg(project.join("setup.sh")).arg(&venv).status()?;
        anyhow::ensure!(status.success(), "bench/peer/setup.sh failed");
        let python = venv.join("bin/python");
        let freeze = Command::new(&python).args(["-m", "pip", "freeze"]).output()?;
        let wanted = ["django=", "django-allauth", "argon2-cffi=", "gunicorn", "psycopg="];
        let versions = String::from_utf8_lossy(&freeze.stdout)
            .lines()
            .filter(|l| wanted.iter().any(|w| l.to_lowercase().starts_with(w)))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Self { project, gunicorn: venv.join("bin/gunicorn"), python, versions })
    }

    fn manage(&self, database: &str, args: &[&str]) -> anyhow::Result<()> {
        let out = Command::new(&self.python)
            .arg("manage.py")
            .args(args)
            .current_dir(&self.project)
            .env("PEER_DATABASE", database)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "manage.py {} failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    }

    /// Seeds as many accounts as Usher's whole-sign-in phase had, serves them with gunicorn,
    /// and measures the same flow; also the peer's resident memory (all workers) afterwards.
    pub async fn measure(
        &self,
        settings: &Settings,
        engine: Engine,
        dir: &Path,
        postgres: &str,
    ) -> anyhow::Result<(Measured, Memory)> {
        let database = match engine {
            Engine::Sqlite => {
                let url = seed::fresh_database(engine, dir, postgres, "peer").await?;
                // Django's form for an absolute path: four slashes.
                let path = url.trim_start_matches("sqlite://").trim_end_matches("?mode=rwc").to_owned();
                format!("sqlite:///{path}")
            }
            Engine::Postgres => seed::fresh_database(engine, dir, postgres, "usher_bench_peer").await?,
        };
        let accounts = settings.accounts / 10;
        self.manage(&database, &["migrate", "--verbosity", "0"])?;
        self.manage(&database, &["createcachetable"])?;
        self.manage(&database, &["bench_seed", "--users", &accounts.to_string(), "--password", seed::PASSWORD])?;

        let port = procs::free_port()?;
        let mut command = Command::new(&self.gunicorn);
        // gunicorn's own advice for the number of sync workers: 2 x cores + 1.
        let workers = 2 * std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) + 1;
        command
            .args([
                "peer.wsgi",
                "--workers",
                &workers.to_string(),
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--no-control-socket",
            ])
            .current_dir(&self.project)
            .env("PEER_DATABASE", &database);
        let base = format!("http://127.0.0.1:{port}");
        let server =
            Server::start("django-allauth", command, base.clone(), "/_allauth/app/v1/config", &dir.join("peer.log"))
                .await?;
        let job = full_sign_in(usher::client()?, base, (0, accounts));
        let measured = measure(settings, &server, job, settings.sign_in_workers).await?;
        let memory = server.memory();
        drop(server);
        seed::drop_database(engine, postgres, "usher_bench_peer").await?;
        Ok((measured, memory))
    }
}

/// allauth's headless "app" flow: the password (answered 401 with a session token and the
/// pending `mfa_authenticate` flow), then the app's code with that token.
fn full_sign_in(client: reqwest::Client, base: String, range: (u64, u64)) -> Job {
    load::each_account_once(range, move |i, n| {
        let (client, base) = (client.clone(), base.clone());
        Box::pin(async move {
            match flow(&client, &base, i, n).await {
                Ok(()) => Step::Done,
                Err(why) => Step::Failed(why),
            }
        })
    })
}

async fn flow(client: &reqwest::Client, base: &str, i: u64, n: u64) -> Result<(), String> {
    let answer = client
        .post(format!("{base}/_allauth/app/v1/auth/login"))
        .header("x-forwarded-for", usher::forwarded_for(n))
        .json(&json!({ "email": format!("peer{i}@bench.test"), "password": seed::PASSWORD }))
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.map_err(|e| format!("login: {status}: {e}"))?;
    let pending = body["data"]["flows"]
        .as_array()
        .is_some_and(|flows| flows.iter().any(|f| f["id"] == "mfa_authenticate" && f["is_pending"] == true));
    let token = body["meta"]["session_token"].as_str().filter(|_| status == 401 && pending);
    let token =
        token.ok_or_else(|| format!("login: {status} {}", body.to_string().chars().take(300).collect::<String>()))?;
    let answer = client
        .post(format!("{base}/_allauth/app/v1/auth/2fa/authenticate"))
        .header("x-forwarded-for", usher::forwarded_for(n))
        .header("x-session-token", token)
        .json(&json!({ "code": usher::totp_code(i, usher::now()) }))
        .send()
        .await
        .map_err(|e| format!("2fa: {e}"))?;
    if answer.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "2fa: {} {}",
            answer.status(),
            answer.text().await.unwrap_or_default().chars().take(300).collect::<String>()
        ))
    }
}
