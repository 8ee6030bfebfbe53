//! Delivery: emails a second from the outbox of a running `usher serve` to a local SMTP sink,
//! and the Message-ID of an email sent twice. The sink is a small tokio SMTP server inside the
//! benchmark: it accepts everything, notes the Message-ID of each message, and, as when a
//! connection dies after the server took a message, loses its answer once for each recipient
//! whose address starts with `flaky`, so the worker sends that email again after its backoff.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use usher_domain::message::{Channel, OutgoingMessage};

use crate::seed::{self, Engine};
use crate::{Settings, procs, progress, usher};

/// Emails queued for the retry check; each is sent twice.
const FLAKY: u64 = 5;
const SENDER_DOMAIN: &str = "bench.test";

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryRun {
    /// Emails queued at once before the server started.
    pub messages: u64,
    /// From the first email the sink took to the last, at full speed.
    pub seconds: f64,
    pub per_second: f64,
    /// TCP connections the server opened to the sink for them all.
    pub connections: u64,
    /// Emails whose first answer was lost, and which came again.
    pub retried: u64,
    /// Each of those came twice with one Message-ID, `<outbox ID@sender's domain>`.
    pub message_id_stable: bool,
    /// Emails that came twice without being asked to (none expected).
    pub unexpected_duplicates: u64,
}

#[derive(Debug, Default)]
struct Received {
    first_at: Option<Instant>,
    last_at: Option<Instant>,
    accepted: u64,
    connections: u64,
    /// Message-IDs seen, per recipient, in order.
    ids: HashMap<String, Vec<String>>,
}

/// The sink: one task per connection, speaking as much SMTP as lettre needs.
async fn sink() -> anyhow::Result<(u16, Arc<Mutex<Received>>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let received = Arc::new(Mutex::new(Received::default()));
    let shared = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(mut r) = shared.lock() {
                r.connections += 1;
            }
            tokio::spawn(session(stream, shared.clone()));
        }
    });
    Ok((port, received))
}

async fn session(stream: tokio::net::TcpStream, received: Arc<Mutex<Received>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 bench sink\r\n").await?;
    let mut rcpt = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let answer: &[u8] = if command.starts_with("EHLO") {
            b"250-bench sink\r\n250 8BITMIME\r\n"
        } else if command.starts_with("RCPT TO:") {
            rcpt = line.trim_end()[8..].trim_matches(['<', '>', ' ']).to_ascii_lowercase();
            b"250 OK\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go on\r\n").await?;
            let mut message_id = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    break;
                }
                if message_id.is_empty() && line.to_ascii_lowercase().starts_with("message-id:") {
                    message_id = line[11..].trim().to_owned();
                }
            }
            let first_copy = {
                let Ok(mut r) = received.lock() else { return Ok(()) };
                let now = Instant::now();
                r.first_at.get_or_insert(now);
                r.last_at = Some(now);
                r.accepted += 1;
                let seen = r.ids.entry(rcpt.clone()).or_default();
                seen.push(message_id);
                seen.len() == 1
            };
            if first_copy && rcpt.starts_with("flaky") { b"451 4.4.2 answer lost\r\n" } else { b"250 accepted\r\n" }
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            // MAIL, RSET, NOOP.
            b"250 OK\r\n"
        };
        write.write_all(answer).await?;
    }
}

fn write_config(dir: &Path, port: u16, database_url: &str, smtp_port: u16) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("usher-delivery-{port}.toml"));
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\n\
         public_base_url = \"http://127.0.0.1:{port}\"\n\
         data_dir = \"{dir}\"\n\
         database_url = \"{database_url}\"\n\
         secret_key = \"{key}\"\n\
         [log]\nlevel = \"warn\"\n\
         [email]\nprovider = \"smtp\"\nsender_address = \"no-reply@{SENDER_DOMAIN}\"\n\
         [email.smtp]\nhost = \"127.0.0.1\"\nport = {smtp_port}\ntls = \"none\"\n",
        key = usher::SECRET_KEY,
        dir = dir.display(),
    );
    std::fs::write(&path, text)?;
    Ok(path)
}

fn email(to: String) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Email,
        purpose: "bench".into(),
        recipient: to,
        subject: "Benchmark".into(),
        body: format!("A message the size of Usher's emails.\n\n{}", "Some words of an email body. ".repeat(30)),
        expires_at: None,
    }
}

/// Queues the emails (sealed, as Usher queues them), starts the server and waits for the sink.
pub async fn measure(
    settings: &Settings,
    engine: Engine,
    usher_bin: &Path,
    dir: &Path,
    postgres: &str,
) -> anyhow::Result<DeliveryRun> {
    let n = settings.delivery_messages;
    let (smtp_port, received) = sink().await?;
    let url = seed::fresh_database(engine, dir, postgres, "usher_bench_delivery").await?;
    let port = procs::free_port()?;
    let config = write_config(dir, port, &url, smtp_port)?;
    usher::run_cli(usher_bin, &config, &["migrate"], false)?;
    let key = usher_app::keys::SecretKey::load(&usher_app::Config {
        secret_key: Some(usher_domain::secret::SecretString::new(usher::SECRET_KEY)),
        ..usher_app::Config::default()
    })?;
    let store = usher_store::Store::connect(&url, 2).await?;
    let now = usher::now();
    let mut tx = store.begin().await?;
    let mut flaky_ids = HashMap::new();
    for i in 0..FLAKY {
        let to = format!("flaky{i}@{SENDER_DOMAIN}");
        flaky_ids.insert(to.clone(), tx.enqueue(&email(to), &key, now).await?);
    }
    for i in 0..n {
        tx.enqueue(&email(seed::email(i)), &key, now).await?;
    }
    tx.commit().await?;

    progress(&format!("{}: delivering {n} emails to a local SMTP sink", engine.label()));
    let mut command = std::process::Command::new(usher_bin);
    command.arg("--config").arg(&config).arg("serve").arg("--test-clock").env("USHER_ALLOW_TEST_CLOCK", "1");
    let server = procs::Server::start(
        "usher",
        command,
        format!("http://127.0.0.1:{port}"),
        "/healthz",
        &dir.join(format!("usher-delivery-{port}.log")),
    )
    .await?;
    let total = n + FLAKY;
    wait_for(&received, total, Duration::from_secs(120 + n / 50)).await?;
    let (seconds, connections) = {
        let r = received.lock().map_err(|_| anyhow::anyhow!("sink poisoned"))?;
        let span = match (r.first_at, r.last_at) {
            (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        (span, r.connections)
    };

    // The lost answers are retried after the first backoff: move the server's clock past it.
    usher::run_cli_env(usher_bin, &config, &["test-clock", "advance", "31s"], &[("USHER_ALLOW_TEST_CLOCK", "1")])?;
    wait_for(&received, total + FLAKY, Duration::from_secs(60)).await?;
    drop(server);
    store.close().await;
    seed::drop_database(engine, postgres, "usher_bench_delivery").await?;

    let r = received.lock().map_err(|_| anyhow::anyhow!("sink poisoned"))?;
    let message_id_stable = flaky_ids.iter().all(|(to, id)| {
        let expected = format!("<{id}@{SENDER_DOMAIN}>");
        r.ids.get(to).is_some_and(|seen| seen.len() == 2 && seen.iter().all(|s| *s == expected))
    });
    let unexpected_duplicates =
        r.ids.iter().filter(|(to, seen)| !to.starts_with("flaky") && seen.len() > 1).count() as u64;
    Ok(DeliveryRun {
        messages: n,
        seconds,
        per_second: (total.saturating_sub(1)) as f64 / seconds.max(1e-9),
        connections,
        retried: FLAKY,
        message_id_stable,
        unexpected_duplicates,
    })
}

async fn wait_for(received: &Mutex<Received>, count: u64, limit: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let got = received.lock().map(|r| r.accepted).unwrap_or(0);
        if got >= count {
            return Ok(());
        }
        anyhow::ensure!(started.elapsed() < limit, "the SMTP sink took {got} of {count} emails within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
