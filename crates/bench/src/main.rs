//! `usher-bench`: Usher's benchmark suite. It starts release builds of Usher (and of a bare axum
//! handler, and of a django-allauth peer), loads them with its own load generator, and writes a
//! report of ratios measured side by side in one run: how close each path comes to its limit on
//! this machine. Benchmarks are not tests: nothing here asserts a time.
#![allow(clippy::print_stdout)] // A command-line report.
#![allow(clippy::disallowed_methods)] // A benchmark reads the real clock: it measures time.

mod delivery;
mod load;
mod oidc;
mod peer;
mod procs;
mod report;
mod seed;
mod usher;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;

use crate::load::Outcome;
use crate::procs::{Memory, Server};
use crate::seed::Engine;
use crate::usher::{HashParams, KEYCLOAK, OURS};

#[derive(Debug, Parser)]
#[command(name = "usher-bench", about = "Usher's benchmark suite: ratios measured side by side in one run")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the suite, or the named parts of it, and write the report.
    Run(RunArgs),
    /// Serve the bare axum handler the others are compared with.
    BareServer {
        #[arg(long)]
        listen: String,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Parts to run (all when none are named).
    #[arg(value_enum)]
    parts: Vec<Part>,
    /// Seconds, not minutes: a smoke run that only proves the suite works.
    #[arg(long)]
    quick: bool,
    /// The `usher` binary to measure.
    #[arg(long, default_value = "target/release/usher")]
    usher: PathBuf,
    /// Where the report (report.md, report.json) goes.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Where databases, logs and the peer's virtual environment go.
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// Engines to measure.
    #[arg(long, value_delimiter = ',', default_value = "sqlite,postgres")]
    engines: Vec<EngineArg>,
    /// The PostgreSQL server (without a database name).
    #[arg(long, env = "USHER_BENCH_POSTGRES", default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    /// Also write the summary table into this README, between its benchmark markers.
    #[arg(long)]
    readme: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// Raw Argon2id hash rate, password sign-in through the JSON API, at ours and Keycloak's parameters.
    SignIn,
    /// TOTP verification and the session-checked endpoint, against a bare axum handler.
    Requests,
    /// Resident memory idle and with many active sessions.
    Memory,
    /// The deregistration sweep against one SQL UPDATE.
    Sweep,
    /// The same sign-in + TOTP flow through Usher and through django-allauth.
    Peer,
    /// Emails a second from the outbox to a local SMTP sink, and one Message-ID across a retry.
    Delivery,
    /// OpenID Connect: whole code flows by people signed in already, and token refreshes.
    Oidc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EngineArg {
    Sqlite,
    Postgres,
}

/// How big and how long: the full run or the smoke run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub quick: bool,
    /// Length of each throughput phase.
    pub seconds: u64,
    /// Length of each latency phase.
    pub latency_seconds: u64,
    /// The latency phases' load, as a share of the throughput just measured on that path.
    pub latency_load: f64,
    /// Workers of the closed loop for the password step (it is bound by the hash, not by waiting).
    pub sign_in_workers: usize,
    /// Workers of the closed loop for the cheap requests.
    pub request_workers: usize,
    /// Accounts seeded for the request and sign-in parts (each with an authenticator app).
    pub accounts: u64,
    /// Sessions made active for the memory figure.
    pub memory_sessions: u64,
    /// Account counts of the deregistration sweep.
    pub sweep_sizes: Vec<u64>,
    /// Threads of the raw hash rate: one per core, as Usher's hashing pool has.
    pub hash_threads: usize,
    /// Emails queued for the delivery part.
    pub delivery_messages: u64,
}

impl Settings {
    fn new(quick: bool, cores: usize) -> Self {
        if quick {
            Self {
                quick,
                seconds: 1,
                latency_seconds: 1,
                latency_load: 0.5,
                sign_in_workers: 4,
                request_workers: 8,
                accounts: 3_000,
                memory_sessions: 1_000,
                sweep_sizes: vec![500],
                hash_threads: cores,
                delivery_messages: 500,
            }
        } else {
            Self {
                quick,
                seconds: 20,
                latency_seconds: 15,
                latency_load: 0.5,
                sign_in_workers: 8,
                request_workers: 32,
                accounts: 100_000,
                memory_sessions: 100_000,
                sweep_sizes: vec![100_000, 1_000_000],
                hash_threads: cores,
                delivery_messages: 20_000,
            }
        }
    }

    fn throughput(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }

    fn latency(&self) -> Duration {
        Duration::from_secs(self.latency_seconds)
    }
}

/// A path's throughput (closed loop) and its latency at a moderate load (open loop).
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    pub throughput: Outcome,
    pub latency: Outcome,
}

async fn measure(settings: &Settings, server: &Server, job: load::Job, workers: usize) -> anyhow::Result<Measured> {
    let throughput = load::closed(job.clone(), workers, settings.throughput(), &server.cpu()).await?;
    let rate = throughput.per_second * settings.latency_load;
    let latency = load::open(job, rate, settings.latency(), &server.cpu()).await?;
    Ok(Measured { throughput, latency })
}

#[derive(Debug, Clone, Serialize)]
pub struct HashRate {
    pub params: HashParams,
    pub threads: usize,
    pub hashes: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub per_core: f64,
}

/// Raw Argon2id: `threads` threads hashing as fast as they can, the same crate Usher uses.
fn hash_rate(params: HashParams, threads: usize, duration: Duration) -> anyhow::Result<HashRate> {
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(params.memory_kib, params.iterations, 1, Some(32)).map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let start = Instant::now();
    let deadline = start + duration;
    let counts = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let argon = argon.clone();
                scope.spawn(move || {
                    let mut memory = vec![argon2::Block::default(); argon.params().block_count()];
                    let mut out = [0u8; 32];
                    let mut done = 0u64;
                    while Instant::now() < deadline {
                        let salt = [t as u8; 16];
                        if argon
                            .hash_password_into_with_memory(seed::PASSWORD.as_bytes(), &salt, &mut out, &mut memory)
                            .is_ok()
                        {
                            done += 1;
                        }
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum::<u64>()
    });
    let seconds = start.elapsed().as_secs_f64();
    let per_second = counts as f64 / seconds;
    Ok(HashRate { params, threads, hashes: counts, seconds, per_second, per_core: per_second / threads.max(1) as f64 })
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineReport {
    pub bare: Option<Measured>,
    pub session_check: Option<Measured>,
    pub second_factor: Option<Measured>,
    pub sign_in: Option<Measured>,
    pub sign_in_keycloak: Option<Measured>,
    pub full_sign_in: Option<Measured>,
    pub peer_full_sign_in: Option<Measured>,
    pub peer_memory: Option<Memory>,
    pub usher_memory_after_flow: Option<Memory>,
    pub memory_after_sign_in: Option<Memory>,
    pub memory_idle: Option<Memory>,
    pub memory_with_sessions: Option<Memory>,
    pub sweeps: Vec<Sweep>,
    pub delivery: Option<delivery::DeliveryRun>,
    /// Authorize, the continue page and its answer, the token endpoint and userinfo.
    pub oidc_code_flow: Option<Measured>,
    /// The token endpoint's refresh grant, rotating the refresh token.
    pub oidc_refresh: Option<Measured>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Sweep {
    pub accounts: u64,
    pub deregistered: u64,
    pub sweep_seconds: f64,
    pub update_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub date: String,
    pub machine: procs::Machine,
    pub settings: Settings,
    pub parts: Vec<Part>,
    pub hash_ours: Option<HashRate>,
    pub hash_keycloak: Option<HashRate>,
    pub engines: Vec<(Engine, EngineReport)>,
    pub peer_versions: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::BareServer { listen } => bare_server(&listen).await,
        Cmd::Run(args) => run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("usher-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The baseline: an axum handler that answers the session check's shape with nothing behind it.
async fn bare_server(listen: &str) -> anyhow::Result<()> {
    use axum::routing::get;
    async fn session() -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({
            "user_id": "00000000000000000000000000000001",
            "full_name": "Bench Person",
            "email": "bench1@bench.test",
            "role": "user",
            "signed_in_at": "2026-12-01T00:00:00Z",
        }))
    }
    let app = axum::Router::new().route("/api/v1/session", get(session)).route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn progress(what: &str) {
    eprintln!("[usher-bench] {what}");
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let machine = procs::machine();
    let settings = Settings::new(args.quick, machine.cores);
    let parts = if args.parts.is_empty() {
        vec![Part::SignIn, Part::Requests, Part::Memory, Part::Sweep, Part::Peer, Part::Delivery, Part::Oidc]
    } else {
        args.parts.clone()
    };
    let usher_bin =
        std::fs::canonicalize(&args.usher).with_context(|| format!("no usher binary at {}", args.usher.display()))?;
    std::fs::create_dir_all(&args.work)?;
    let work = std::fs::canonicalize(&args.work)?;
    let me = std::env::current_exe()?;
    let mut report = Report {
        date: usher::now().rfc3339(),
        machine,
        settings: settings.clone(),
        parts: parts.clone(),
        hash_ours: None,
        hash_keycloak: None,
        engines: Vec::new(),
        peer_versions: None,
    };

    if parts.contains(&Part::SignIn) {
        progress("raw Argon2id hash rate");
        report.hash_ours = Some(hash_rate(OURS, settings.hash_threads, settings.throughput())?);
        report.hash_keycloak = Some(hash_rate(KEYCLOAK, settings.hash_threads, settings.throughput())?);
    }
    let peer_env = if parts.contains(&Part::Peer) {
        progress("setting up the django-allauth peer");
        let env = peer::PeerEnv::prepare(&work).await?;
        report.peer_versions = Some(env.versions.clone());
        Some(env)
    } else {
        None
    };

    for engine in &args.engines {
        let engine = match engine {
            EngineArg::Sqlite => Engine::Sqlite,
            EngineArg::Postgres => Engine::Postgres,
        };
        let dir = work.join(engine.as_str());
        std::fs::create_dir_all(&dir)?;
        let mut out = EngineReport::default();
        if parts.iter().any(|p| matches!(p, Part::SignIn | Part::Requests | Part::Memory | Part::Peer | Part::Oidc)) {
            usher_paths(&settings, &parts, engine, &usher_bin, &me, &dir, &args.postgres, &mut out).await?;
        }
        if let Some(env) = &peer_env {
            progress(&format!("{}: the django-allauth peer", engine.label()));
            let (measured, memory) = env.measure(&settings, engine, &dir, &args.postgres).await?;
            out.peer_full_sign_in = Some(measured);
            out.peer_memory = Some(memory);
        }
        if parts.contains(&Part::Sweep) {
            for &accounts in &settings.sweep_sizes {
                progress(&format!("{}: deregistration sweep over {accounts} accounts", engine.label()));
                out.sweeps.push(sweep(engine, &usher_bin, &dir, &args.postgres, accounts).await?);
            }
        }
        if parts.contains(&Part::Delivery) {
            out.delivery = Some(delivery::measure(&settings, engine, &usher_bin, &dir, &args.postgres).await?);
        }
        report.engines.push((engine, out));
    }

    std::fs::create_dir_all(&args.out)?;
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(args.out.join("report.json"), json + "\n")?;
    let markdown = report::markdown(&report);
    std::fs::write(args.out.join("report.md"), &markdown)?;
    if let Some(readme) = &args.readme {
        report::update_readme(readme, &report)?;
    }
    println!("{markdown}");
    Ok(())
}

/// Everything measured on a running Usher over one engine.
#[allow(clippy::too_many_arguments)]
async fn usher_paths(
    settings: &Settings,
    parts: &[Part],
    engine: Engine,
    usher_bin: &Path,
    me: &Path,
    dir: &Path,
    postgres: &str,
    out: &mut EngineReport,
) -> anyhow::Result<()> {
    progress(&format!("{}: seeding {} accounts", engine.label(), settings.accounts));
    let url = seed::fresh_database(engine, dir, postgres, "usher_bench").await?;
    let port = procs::free_port()?;
    let config = usher::write_config(dir, port, &url, OURS)?;
    usher::run_cli(usher_bin, &config, &["migrate"], false)?;
    let pool = seed::connect(&url).await?;
    let now = usher::now().unix();
    let ours_hash = OURS.cost().hash(seed::PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
    let key = usher_app::keys::SecretKey::load(&usher_app::Config {
        secret_key: Some(usher_domain::secret::SecretString::new(usher::SECRET_KEY)),
        ..usher_app::Config::default()
    })?;
    let n = settings.accounts;
    seed::organisation(&pool, now).await?;
    seed::accounts(&pool, engine, (0, n), &ours_hash, now, now).await?;
    seed::authenticator_apps(&pool, &key, (0, n), now).await?;
    // Each account's code is used once: 60% of them for second-factor checks, 10% for whole
    // sign-ins, the rest for password steps (which may come round again).
    let (second_factor_range, flow_range, sign_in_range) = ((0, n * 6 / 10), (n * 6 / 10, n * 7 / 10), (n * 7 / 10, n));
    seed::sessions(&pool, "second_factor", second_factor_range, now).await?;
    seed::sessions(&pool, "full", (0, settings.memory_sessions.max(1_000).min(n)), now).await?;
    let rp = if parts.contains(&Part::Oidc) {
        oidc::prove_sessions(&pool, now).await?;
        Some(oidc::register(usher_bin, &config)?)
    } else {
        None
    };
    analyze(engine, &pool).await?;

    let client = usher::client()?;
    let server = usher::start(usher_bin, dir, port, &config, false).await?;
    let base = server.base.clone();
    if parts.contains(&Part::Memory) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        out.memory_idle = Some(server.memory());
        progress(&format!("{}: {} sessions active", engine.label(), settings.memory_sessions));
        let job = usher::session_check(client.clone(), base.clone(), settings.memory_sessions, true);
        let pass = load::closed(job, settings.request_workers, Duration::from_secs(3600), &server.cpu()).await?;
        anyhow::ensure!(pass.failed == 0, "session checks failed: {:?}", pass.first_failure);
        out.memory_with_sessions = Some(server.memory());
    }
    if parts.contains(&Part::Requests) {
        out.bare = Some(measure_bare(settings, engine, me, dir, &client).await?);
        progress(&format!("{}: session-checked endpoint", engine.label()));
        let job = usher::session_check(client.clone(), base.clone(), 1_000.min(settings.memory_sessions), false);
        out.session_check = Some(measure(settings, &server, job, settings.request_workers).await?);
        progress(&format!("{}: TOTP second factor", engine.label()));
        let job = usher::second_factor(client.clone(), base.clone(), second_factor_range);
        out.second_factor = Some(measure(settings, &server, job, settings.request_workers).await?);
    }
    if parts.contains(&Part::SignIn) {
        progress(&format!("{}: password sign-in ({})", engine.label(), OURS.label()));
        let job = usher::sign_in(client.clone(), base.clone(), sign_in_range);
        out.sign_in = Some(measure(settings, &server, job, settings.sign_in_workers).await?);
        out.memory_after_sign_in = Some(server.memory());
    }
    if parts.contains(&Part::Peer) {
        progress(&format!("{}: whole sign-in (password + TOTP)", engine.label()));
        let job = usher::full_sign_in(client.clone(), base.clone(), flow_range);
        out.full_sign_in = Some(measure(settings, &server, job, settings.sign_in_workers).await?);
        out.usher_memory_after_flow = Some(server.memory());
    }
    if let Some(rp) = rp {
        if out.bare.is_none() {
            out.bare = Some(measure_bare(settings, engine, me, dir, &client).await?);
        }
        let http = oidc::client()?;
        progress(&format!("{}: OpenID Connect code flows (authorize, continue, token, userinfo)", engine.label()));
        let people = 1_000.min(settings.memory_sessions).min(n);
        let job = oidc::code_flows(http.clone(), base.clone(), rp.clone(), people);
        out.oidc_code_flow = Some(measure(settings, &server, job, settings.request_workers).await?);
        progress(&format!("{}: OpenID Connect token refreshes", engine.label()));
        let slots = (settings.request_workers as u64) * 2;
        let tokens = oidc::refresh_tokens(&http, &base, &rp, slots).await?;
        let job = oidc::refreshes(http, base.clone(), rp, tokens);
        out.oidc_refresh = Some(measure(settings, &server, job, settings.request_workers).await?);
    }
    drop(server);

    if parts.contains(&Part::SignIn) {
        progress(&format!("{}: password sign-in ({})", engine.label(), KEYCLOAK.label()));
        let keycloak_hash = KEYCLOAK.cost().hash(seed::PASSWORD).map_err(|e| anyhow::anyhow!("{e}"))?;
        sqlx::query("UPDATE users SET password_hash = $1").bind(keycloak_hash).execute(&pool).await?;
        let config = usher::write_config(dir, port, &url, KEYCLOAK)?;
        match usher::start(usher_bin, dir, port, &config, true).await {
            Ok(server) => {
                let job = usher::sign_in(client.clone(), server.base.clone(), sign_in_range);
                out.sign_in_keycloak = Some(measure(settings, &server, job, settings.sign_in_workers).await?);
            }
            // An Usher from before USHER_ALLOW_BENCHMARK_HASHING refuses that cost: say so, go on.
            Err(e) => progress(&format!("skipped: Usher would not start at Keycloak's cost: {e:#}")),
        }
    }
    pool.close().await;
    seed::drop_database(engine, postgres, "usher_bench").await?;
    Ok(())
}

/// The bare axum handler, started for the measurement and stopped after it.
async fn measure_bare(
    settings: &Settings,
    engine: Engine,
    me: &Path,
    dir: &Path,
    client: &reqwest::Client,
) -> anyhow::Result<Measured> {
    progress(&format!("{}: bare axum handler", engine.label()));
    let bare_port = procs::free_port()?;
    let mut command = std::process::Command::new(me);
    command.args(["bare-server", "--listen", &format!("127.0.0.1:{bare_port}")]);
    let bare =
        Server::start("bare axum", command, format!("http://127.0.0.1:{bare_port}"), "/healthz", &dir.join("bare.log"))
            .await?;
    measure(settings, &bare, usher::bare(client.clone(), bare.base.clone()), settings.request_workers).await
}

/// Gives PostgreSQL's planner the statistics autovacuum would soon gather. Not on SQLite: Usher
/// never runs ANALYZE there, and with its statistics (STAT4) SQLite prepares a statement again
/// at every new bound value, which made each session check spend a third of its time parsing SQL.
async fn analyze(engine: Engine, pool: &sqlx::AnyPool) -> anyhow::Result<()> {
    if engine == Engine::Postgres {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    Ok(())
}

/// Deregisters `accounts` accounts unused for 91 days with `usher lifecycle run`, and times the
/// single UPDATE that would mark the same rows (in a transaction rolled back, on the same data).
async fn sweep(engine: Engine, usher_bin: &Path, dir: &Path, postgres: &str, accounts: u64) -> anyhow::Result<Sweep> {
    let url = seed::fresh_database(engine, dir, postgres, "usher_bench_sweep").await?;
    let config = usher::write_config(dir, procs::free_port()?, &url, OURS)?;
    usher::run_cli(usher_bin, &config, &["migrate"], false)?;
    let pool = seed::connect(&url).await?;
    let now = usher::now().unix();
    let unused_since = now - 91 * 86_400;
    seed::organisation(&pool, now).await?;
    seed::accounts(&pool, engine, (0, accounts), "not-a-hash", unused_since, unused_since).await?;
    analyze(engine, &pool).await?;

    let cutoff = now - 90 * 86_400;
    let mut tx = pool.begin().await?;
    let started = Instant::now();
    let marked = sqlx::query(
        "UPDATE users SET status = 'deregistered', deregistered_at = $1, updated_at = $2 \
         WHERE status IN ('active', 'locked') AND role <> 'operator' AND active_since IS NOT NULL AND active_since <= $3",
    )
    .bind(now)
    .bind(now)
    .bind(cutoff)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let update_seconds = started.elapsed().as_secs_f64();
    tx.rollback().await?;
    anyhow::ensure!(marked == accounts, "the UPDATE marked {marked} of {accounts} accounts");
    if engine == Engine::Postgres {
        // The rolled-back versions would otherwise slow the sweep that follows.
        sqlx::query("VACUUM ANALYZE users").execute(&pool).await?;
    }

    let started = Instant::now();
    let said = usher::run_cli(usher_bin, &config, &["lifecycle", "run"], false)?;
    let sweep_seconds = started.elapsed().as_secs_f64();
    let deregistered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE status = 'deregistered'").fetch_one(&pool).await?;
    anyhow::ensure!(
        u64::try_from(deregistered)? == accounts,
        "the sweep deregistered {deregistered} of {accounts} accounts: {said}"
    );
    pool.close().await;
    seed::drop_database(engine, postgres, "usher_bench_sweep").await?;
    Ok(Sweep { accounts, deregistered: u64::try_from(deregistered)?, sweep_seconds, update_seconds })
}
