//! The command line. Each subcommand loads the layered configuration and does one job; any
//! failure comes back as one line naming what to change.

// This module is the program's voice on the console: printing is its job.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use usher_app::audit::ChainReport;
use usher_app::clock::system_now;
use usher_app::config::{EmailProviderKind, SmsProviderKind};
use usher_app::delivery::Providers;
use usher_app::{App, Clock, Config, SecretKey};
use usher_delivery::DeliveryPolicy;
use usher_domain::duration::Span;
use usher_store::{Engine, Store};

use crate::{config_loader, logging};

#[derive(Debug, Parser)]
#[command(
    name = "usher",
    version,
    about = "Usher: the sign-in and account service for organisations that share sensitive work"
)]
pub struct Cli {
    /// A TOML configuration file. Environment variables (USHER_*) override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// What to do; without one, `serve`.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
// Parsed once from the command line: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
enum Command {
    /// Run the web server and the delivery worker (migrates the database first).
    Serve {
        /// Start a clock that only moves when told (for black-box tests). Refused unless
        /// USHER_ALLOW_TEST_CLOCK=1 is also set.
        #[arg(long)]
        test_clock: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Check the configuration and print it, with secrets redacted.
    Configtest,
    /// Operator accounts.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Move the test clock of the servers sharing this database.
    TestClock {
        #[command(subcommand)]
        command: TestClockCommand,
    },
    /// The outbox of emails and text messages.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The account lifecycle: reminders, deregistration after 90 days unused, deletion 28 days later.
    Lifecycle {
        #[command(subcommand)]
        command: LifecycleCommand,
    },
    /// The key that protects secrets at rest, and the keys that sign tokens.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The services that sign people in with Usher (OpenID Connect clients).
    Clients {
        #[command(subcommand)]
        command: crate::clients_cli::ClientsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum LifecycleCommand {
    /// Run the lifecycle jobs once (for cron); `usher serve` also runs them on a schedule. Safe to
    /// run on several machines at once: each account is handled once.
    Run,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// After a key rotation (new secret_key, old one in previous_secret_keys), seal every
    /// authenticator secret again under the new key, so the old key can then be dropped.
    Reencrypt,
    /// Let the next token signing key (published since the last rotation) sign from now; the
    /// old one stays published until every token it signed has expired.
    RotateSigning {
        /// Rotate even though the next key was published too recently for every client to have it.
        #[arg(long)]
        force: bool,
        /// Which algorithm's key: ES256 (the default), RS256 or PS256.
        #[arg(long, default_value = "ES256")]
        alg: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Print a one-time link (valid 1 hour) that lets a locked-out operator set a new password.
    Recover {
        /// Which operator, when there is more than one.
        #[arg(long)]
        email: Option<String>,
        /// Also remove the operator's second factors and recovery codes (lost device): they set
        /// up a new one after the new password.
        #[arg(long)]
        reset_factors: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TestClockCommand {
    /// Move the clock forward, e.g. `usher test-clock advance 28d`.
    Advance {
        /// A length of time: 90s, 15m, 12h, 28d, 1w.
        by: Span,
    },
    /// Print the clock's current moment.
    Show,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// List the newest messages (with their text, when the dev mailbox kept it).
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How many messages.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the hash chain of the audit trail and name the first broken event.
    Verify,
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, String> {
    config_loader::load(path, &|name| std::env::var(name).ok())
}

async fn open_store(config: &Config) -> Result<Store, String> {
    let url = config.effective_database_url();
    if Engine::from_url(&url) == Some(Engine::Sqlite) && config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("data_dir: cannot create {}: {e}", config.data_dir.display()))?;
    }
    Store::connect(&url, config.database_max_connections).await.map_err(|e| {
        format!("database_url: cannot open {}: {e} (check USHER_DATABASE_URL)", usher_app::config::redact_url(&url))
    })
}

async fn open_migrated(config: &Config) -> Result<Store, String> {
    let store = open_store(config).await?;
    store.migrate(system_now().unix()).await.map_err(|e| format!("database_url: {e}"))?;
    Ok(store)
}

/// The clock a command that acts on time uses: the servers' test clock when the database runs
/// on one (only with USHER_ALLOW_TEST_CLOCK=1, never silently the real one), else the real one.
async fn clock_of(store: &Store) -> Result<Clock, String> {
    if store.test_clock().await.map_err(|e| e.to_string())?.is_none() {
        return Ok(Clock::System);
    }
    if std::env::var("USHER_ALLOW_TEST_CLOCK").as_deref() != Ok("1") {
        return Err("the database runs on the test clock (usher serve --test-clock): set USHER_ALLOW_TEST_CLOCK=1 to act on its time, or use a database without it".into());
    }
    Ok(Clock::Test(store.clone()))
}

/// The secret key, refused when it does not open what the database holds (S10).
/// The app on a migrated database with its key checked, its provider keys ready (for the
/// commands that run use cases).
async fn open_app(config: Config) -> Result<App, String> {
    let store = open_migrated(&config).await?;
    let key = open_key(&config, &store).await?;
    let app = App::new(store, Clock::System, config, key);
    app.prepare_provider(system_now()).await.map_err(|e| e.to_string())?;
    Ok(app)
}

async fn open_key(config: &Config, store: &Store) -> Result<SecretKey, String> {
    usher_app::key_check::open_for(config, store, system_now()).await.map_err(|e| e.to_string())
}

/// The loud warning when the dev mailbox is allowed on a public address.
fn dev_mailbox_warning(config: &Config) -> Option<String> {
    (config.uses_dev_providers() && !config.dev_mailbox_is_private()).then(|| {
        format!(
            "insecure_dev_mailbox_on_public_url is on: anyone can read every code and link at {}/dev/mailbox. Never for real work.",
            config.base_url()
        )
    })
}

/// For `configtest`: what the key would do against the database, if the database exists and is
/// migrated; creates and changes nothing.
async fn check_key(config: &Config) -> Result<String, String> {
    let url = config.effective_database_url();
    let sqlite_file = config.data_dir.join("usher.db");
    if Engine::from_url(&url) == Some(Engine::Sqlite) && config.database_url.is_empty() && !sqlite_file.exists() {
        return Ok("no database yet; a secret key is made at the first start if none is configured".into());
    }
    let store = match open_store(config).await {
        Ok(store) => store,
        Err(e) => return Ok(format!("not checked, as the database does not answer ({e})")),
    };
    if !store.has_key_checks_table().await.map_err(|e| format!("database_url: {e}"))? {
        return Ok("the database is not migrated yet (usher migrate)".into());
    }
    let key = SecretKey::load_existing(config).map_err(|e| e.to_string())?;
    let verdict = usher_app::key_check::verdict(config, key.as_ref(), &store).await.map_err(|e| e.to_string())?;
    Ok(match verdict {
        usher_app::key_check::KeyVerdict::Opens => "the secret key opens the database's sealed data",
        usher_app::key_check::KeyVerdict::Record => "the secret key is new to the database and will be recorded",
        usher_app::key_check::KeyVerdict::Generate => {
            "nothing sealed yet: a secret key will be made at the first start"
        }
    }
    .into())
}

pub async fn run(cli: Cli) -> Result<(), String> {
    let config = load_config(cli.config.as_deref())?;
    match cli.command.unwrap_or(Command::Serve { test_clock: false }) {
        Command::Configtest => {
            println!(
                "# Effective configuration (defaults, then --config, then USHER_* variables). Secrets are redacted."
            );
            print!("{}", config_loader::render(&config));
            println!("# database: {}", usher_app::config::redact_url(&config.effective_database_url()));
            println!("# secret key: {}", check_key(&config).await?);
            if let Some(warning) = dev_mailbox_warning(&config) {
                println!("# WARNING: {warning}");
            } else if config.uses_dev_providers() {
                println!("# dev mailbox: on, at {}/dev/mailbox (this machine only)", config.base_url());
            }
            if !config.password_hashing.meets_floor() {
                println!(
                    "# WARNING: password hashing below m=19456 KiB, t=2, p=1 (USHER_ALLOW_BENCHMARK_HASHING=1): for benchmarks only"
                );
            }
            println!("# The configuration is valid.");
            Ok(())
        }
        Command::Migrate => {
            let store = open_store(&config).await?;
            let applied = store.migrate(system_now().unix()).await.map_err(|e| format!("database_url: {e}"))?;
            open_key(&config, &store).await?;
            if applied.is_empty() {
                println!("The database is up to date.");
            } else {
                println!("Applied migrations: {applied:?}");
            }
            Ok(())
        }
        Command::Serve { test_clock } => serve(config, test_clock).await,
        Command::Operator { command: OperatorCommand::Recover { email, reset_factors } } => {
            let store = open_migrated(&config).await?;
            let key = open_key(&config, &store).await?;
            let clock = clock_of(&store).await?;
            let app = App::new(store, clock, config, key);
            let now = app.clock.now().await.map_err(|e| e.to_string())?;
            let (operator, link) = app
                .operator_recovery_link(email.as_deref(), reset_factors, now)
                .await
                .map_err(|e| e.message.to_string())?;
            if reset_factors {
                println!("The second factors of {} have been removed: they set up a new one next.", operator.full_name);
            }
            println!("A one-time link for {} ({}), valid for 1 hour:", operator.full_name, operator.email);
            println!("{link}");
            Ok(())
        }
        Command::TestClock { command } => {
            let store = open_migrated(&config).await?;
            let now = match command {
                TestClockCommand::Advance { by } => {
                    usher_app::test_clock::advance_in_store(&store, by).await.map_err(|e| e.to_string())?
                }
                TestClockCommand::Show => {
                    store.test_clock().await.map_err(|e| e.to_string())?.map(usher_domain::Timestamp::from_unix)
                }
            };
            match now {
                Some(now) => {
                    println!("{}", now.rfc3339());
                    Ok(())
                }
                None => {
                    Err("the test clock is not running: start a server with `usher serve --test-clock` first".into())
                }
            }
        }
        Command::Outbox { command: OutboxCommand::List { json, limit } } => {
            let store = open_migrated(&config).await?;
            let key = open_key(&config, &store).await?;
            let app = App::new(store, Clock::System, config, key);
            let messages = app.outbox_messages(limit.clamp(1, 1000)).await.map_err(|e| e.to_string())?;
            if json {
                let rows: Vec<_> = messages
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "id": m.id.to_string(),
                            "channel": m.message.channel.as_str(),
                            "purpose": m.message.purpose,
                            "recipient": m.message.recipient,
                            "subject": m.message.subject,
                            "body": m.message.body,
                            "status": m.status.as_str(),
                            "attempts": m.attempts,
                            "created_at": m.created_at.rfc3339(),
                            "finished_at": m.finished_at.map(|t| t.rfc3339()),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if messages.is_empty() {
                println!("The outbox is empty.");
            } else {
                for m in &messages {
                    println!(
                        "{}  {:<5}  {:<8}  {}  {}",
                        m.created_at.rfc3339(),
                        m.message.channel.as_str(),
                        m.status.as_str(),
                        m.message.recipient,
                        if m.message.subject.is_empty() { &m.message.purpose } else { &m.message.subject }
                    );
                    if !m.message.body.is_empty() {
                        for line in m.message.body.lines() {
                            println!("    {line}");
                        }
                    }
                }
            }
            Ok(())
        }
        Command::Lifecycle { command: LifecycleCommand::Run } => {
            let store = open_migrated(&config).await?;
            let key = open_key(&config, &store).await?;
            let clock = clock_of(&store).await?;
            let app = App::new(store, clock, config, key);
            let now = app.clock.now().await.map_err(|e| e.to_string())?;
            let r = app.run_lifecycle(now).await.map_err(|e| e.to_string())?;
            println!(
                "Lifecycle jobs done: {} reminded, {} deregistered, {} deleted, {} notification emails queued.",
                r.reminded, r.deregistered, r.deleted, r.notified
            );
            Ok(())
        }
        Command::Keys { command: KeysCommand::Reencrypt } => {
            let store = open_migrated(&config).await?;
            let key = open_key(&config, &store).await?;
            let app = App::new(store, Clock::System, config, key);
            let (resealed, unopenable) = app.reseal_secrets().await.map_err(|e| e.to_string())?;
            println!("Sealed {resealed} authenticator secrets again under the current key.");
            let (bodies, closed) = app.reseal_outbox_bodies().await.map_err(|e| e.to_string())?;
            println!("Sealed {bodies} kept message bodies again under the current key.");
            let (keys, locked) = app.reseal_provider_secrets().await.map_err(|e| e.to_string())?;
            println!("Sealed {keys} token signing keys and provider secrets again under the current key.");
            let closed = closed + locked;
            if unopenable > 0 || closed > 0 {
                return Err(format!(
                    "{unopenable} secrets and {closed} message bodies could not be opened with any configured key: keep the old key in previous_secret_keys, or reset those people's factors"
                ));
            }
            println!(
                "No authenticator secret needs an older key now. Recovery codes made before the rotation are still checked \
                 with the old key: dropping it from previous_secret_keys makes those codes stop working, so ask people to \
                 make new ones first."
            );
            Ok(())
        }
        Command::Keys { command: KeysCommand::RotateSigning { force, alg } } => {
            let Some(alg) = usher_domain::oidc::SigningAlg::parse(&alg.to_ascii_uppercase()) else {
                return Err(format!("--alg {alg}: choose ES256, RS256 or PS256"));
            };
            let app = open_app(config).await?;
            let ctx = usher_app::RequestContext::system("usher keys rotate-signing");
            let kid =
                app.rotate_signing_key(alg, force, &ctx, system_now()).await.map_err(|e| e.message.to_string())?;
            println!(
                "Key {kid} signs tokens from now; the previous key stays published until its tokens have expired."
            );
            println!("A new next key is published now, for the next rotation.");
            Ok(())
        }
        Command::Clients { command } => {
            let app = open_app(config).await?;
            crate::clients_cli::run(&app, command, system_now()).await
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let store = open_migrated(&config).await?;
            let key = open_key(&config, &store).await?;
            let app = App::new(store, Clock::System, config, key);
            match app.verify_audit_chain().await.map_err(|e| e.to_string())? {
                ChainReport::Intact { events } => {
                    println!("The audit trail is intact: {events} events, each linked to the one before.");
                    Ok(())
                }
                ChainReport::Broken { seq, reason } => {
                    Err(format!("the audit trail is broken at event {seq}: {reason}"))
                }
            }
        }
    }
}

async fn serve(config: Config, test_clock: bool) -> Result<(), String> {
    if test_clock && std::env::var("USHER_ALLOW_TEST_CLOCK").as_deref() != Ok("1") {
        return Err("--test-clock is refused unless USHER_ALLOW_TEST_CLOCK=1 is also set: a test clock lets the server's time be moved, so never use it for real work".into());
    }
    logging::init(&config.log);
    if !config.password_hashing.meets_floor() {
        tracing::warn!(
            "password hashing below the floor of m=19456 KiB, t=2, p=1 (USHER_ALLOW_BENCHMARK_HASHING=1): for benchmarks only, never for real work"
        );
    }
    let addr = config.listen_addr().map_err(|e| e.to_string())?;
    if config.database_url.is_empty() {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("data_dir: cannot create {}: {e}", config.data_dir.display()))?;
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("listen: cannot listen on {addr}: {e} (choose another with USHER_LISTEN)"))?;
    let store = open_migrated(&config).await?;
    let key = open_key(&config, &store).await?;
    let clock = if test_clock {
        let mut tx = store.begin().await.map_err(|e| e.to_string())?;
        tx.start_test_clock(system_now().unix()).await.map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Clock::Test(store.clone())
    } else {
        Clock::System
    };
    let providers = Providers::from_config(&config, true).map_err(|e| e.to_string())?;
    // Bound last, once everything else is ready, so a failed start holds no port.
    let management = match config.management_addr().map_err(|e| e.to_string())? {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            format!(
                "management_listen: cannot listen on {addr}: {e} (choose another with USHER_MANAGEMENT_LISTEN, or set it empty for none)"
            )
        })?),
        None => None,
    };
    // The dev mailbox page exists only on a development server, where nothing is delivered.
    let dev_mailbox = config.email.provider == EmailProviderKind::Dev && config.sms.provider == SmsProviderKind::Dev;
    let base_url = config.base_url().to_owned();
    let app = App::new(store, clock, config, key);
    usher_app::oidc::keys::check_crypto_provider().map_err(|e| e.to_string())?;
    app.prepare_provider(system_now()).await.map_err(|e| format!("cannot make the token signing keys: {e}"))?;
    // Bodies queued by a version of Usher from before they were sealed (migration 8).
    let sealed = app.seal_plain_outbox_bodies().await.map_err(|e| e.to_string())?;
    if sealed > 0 {
        tracing::info!(sealed, "sealed outbox bodies stored in the clear by an earlier version");
    }
    tokio::spawn(app.clone().run_delivery_worker(
        providers.with_logout(&app).map_err(|e| e.to_string())?,
        DeliveryPolicy::default(),
        Duration::from_secs(1),
    ));
    tokio::spawn(app.clone().run_lifecycle_jobs());

    println!("Usher {} is running on {} ({} database).", env!("CARGO_PKG_VERSION"), addr, app.store.engine().as_str());
    println!("Open {base_url} in your browser");
    if let Some(warning) = dev_mailbox_warning(&app.config) {
        println!("WARNING: {warning}");
        tracing::warn!("{warning}");
    }
    if test_clock {
        println!("The test clock is on: time stands still until moved (usher test-clock advance 1d).");
    }
    let now = app.clock.now().await.map_err(|e| e.to_string())?;
    if let Some(link) = app.operator_setup_link(now).await.map_err(|e| e.to_string())? {
        println!("Set up the first operator: {link}");
        println!("(This link works once, for 24 hours. Restart the server for a new one.)");
    }
    let state = usher_web::AppState::new(app, dev_mailbox);
    if let Some(management) = management {
        let addr = management.local_addr().map_err(|e| format!("management_listen: {e}"))?;
        println!("Metrics for Prometheus (this address only): http://{addr}/metrics");
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = usher_web::serve_management(management, state, std::future::pending()).await {
                tracing::error!(error = %e, "the management listener stopped");
            }
        });
    }
    usher_web::serve(listener, state, shutdown_signal()).await.map_err(|e| format!("the server stopped: {e}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn passwords_in_database_urls_are_hidden() {
        assert_eq!(usher_app::config::redact_url("postgres://u:pw@db/usher"), "postgres://…@db/usher");
        assert_eq!(usher_app::config::redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
