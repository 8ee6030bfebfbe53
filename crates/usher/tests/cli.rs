//! The binary as an operator meets it: start-up, bad input, the set-up link, recovery and the
//! test clock. Each failure must be one clear line naming the setting to change, and a non-zero
//! exit.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

fn usher() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_usher"));
    for (k, _) in std::env::vars() {
        if k.starts_with("USHER_") {
            c.env_remove(k);
        }
    }
    // Tests run side by side: each management listener takes a free port.
    c.env("USHER_MANAGEMENT_LISTEN", "127.0.0.1:0");
    c.stdin(Stdio::null());
    c
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("usher-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Asserts a failure of one line on stderr that mentions every one of `needles`.
fn fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "{n:?} not in {:?}", lines[0]);
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

struct Server {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Server {
    fn start(data: &std::path::Path, port: u16, extra: &[(&str, &str)]) -> Self {
        let mut cmd = usher();
        cmd.arg("serve")
            .env("USHER_DATA_DIR", data)
            .env("USHER_LISTEN", format!("127.0.0.1:{port}"))
            .env("USHER_PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
            .env("USHER_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines: rx }
    }

    /// Lines printed until the "Open ..." line (the start-up banner), or until `timeout`.
    fn banner(&self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(60)) {
            let done = line.starts_with("Open ");
            seen.push(line);
            if done {
                // The set-up link, if any, follows at once.
                while let Ok(more) = self.lines.recv_timeout(Duration::from_millis(1500)) {
                    seen.push(more);
                }
                break;
            }
        }
        seen
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn bad_configuration_stops_start_up_with_one_clear_line() {
    let dir = temp_dir("bad");
    let file = dir.join("usher.toml");
    std::fs::write(&file, "lisen = \"127.0.0.1:1\"\n").unwrap();
    fails_with(&usher().args(["--config", file.to_str().unwrap(), "configtest"]).output().unwrap(), &["lisen"]);

    std::fs::write(&file, "[sessions\n").unwrap();
    fails_with(&usher().args(["--config", file.to_str().unwrap(), "serve"]).output().unwrap(), &["not valid TOML"]);

    fails_with(
        &usher().arg("configtest").env("USHER_PUBLIC_BASE_URL", "signin.example.org").output().unwrap(),
        &["public_base_url", "USHER_PUBLIC_BASE_URL"],
    );

    let missing = dir.join("no-such-key");
    fails_with(
        &usher()
            .arg("serve")
            .env("USHER_DATA_DIR", &dir)
            .env("USHER_SECRET_KEY_FILE", &missing)
            .env("USHER_LISTEN", format!("127.0.0.1:{}", free_port()))
            .output()
            .unwrap(),
        &["USHER_SECRET_KEY_FILE", "no-such-key"],
    );
    fails_with(
        &usher()
            .arg("serve")
            .env("USHER_DATA_DIR", &dir)
            .env("USHER_LISTEN", format!("127.0.0.1:{}", free_port()))
            .env("USHER_DATABASE_URL", "postgres://usher@127.0.0.1:1/usher")
            .output()
            .unwrap(),
        &["database_url", "USHER_DATABASE_URL"],
    );
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    fails_with(
        &usher()
            .arg("serve")
            .env("USHER_DATA_DIR", &dir)
            .env("USHER_LISTEN", format!("127.0.0.1:{port}"))
            .output()
            .unwrap(),
        &["listen", "USHER_LISTEN"],
    );
}

#[test]
fn second_factor_settings_and_key_rotation_commands() {
    let dir = temp_dir("mfa");
    let out = usher()
        .arg("configtest")
        .env("USHER_DATA_DIR", &dir)
        .env("USHER_MFA_REQUIRED", "false")
        .env("USHER_SMS_ALLOWED_COUNTRIES", "GB,JE")
        .env("USHER_PREVIOUS_SECRET_KEYS", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB=")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("required = false"), "{text}");
    assert!(text.contains("\"JE\""), "{text}");
    assert!(!text.contains("BBBBBBBB"), "old keys are secrets: {text}");
    fails_with(
        &usher().arg("configtest").env("USHER_MFA_REQUIRED", "maybe").output().unwrap(),
        &["USHER_MFA_REQUIRED", "true or false"],
    );
    fails_with(
        &usher().arg("configtest").env("USHER_SMS_ALLOWED_COUNTRIES", "uk").output().unwrap(),
        &["sms.allowed_countries"],
    );
    let out = usher().args(["keys", "reencrypt"]).env("USHER_DATA_DIR", &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Sealed 0 authenticator secrets"));
}

#[test]
fn lifecycle_run_is_a_command_for_cron() {
    let dir = temp_dir("lifecycle");
    let out = usher().args(["lifecycle", "run"]).env("USHER_DATA_DIR", &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("Lifecycle jobs done: 0 reminded, 0 deregistered, 0 deleted, 0 notification emails queued.")
    );
    fails_with(
        &usher().arg("configtest").env("USHER_LIFECYCLE_REMINDERS", "14d,95d").output().unwrap(),
        &["lifecycle.reminders"],
    );
}

#[test]
fn the_test_clock_needs_explicit_permission() {
    let dir = temp_dir("clock");
    fails_with(
        &usher().args(["serve", "--test-clock"]).env("USHER_DATA_DIR", &dir).output().unwrap(),
        &["USHER_ALLOW_TEST_CLOCK=1"],
    );
    fails_with(
        &usher().args(["test-clock", "advance", "1d"]).env("USHER_DATA_DIR", &dir).output().unwrap(),
        &["not running"],
    );
    let out = usher().args(["test-clock", "advance", "soon"]).env("USHER_DATA_DIR", &dir).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a length of time"));
}

#[test]
fn configtest_prints_the_effective_configuration_without_secrets() {
    let out = usher()
        .arg("configtest")
        .env("USHER_EMAIL_PROVIDER", "smtp")
        .env("USHER_EMAIL_SMTP_HOST", "mail.example.org")
        .env("USHER_EMAIL_SMTP_USERNAME", "usher")
        .env("USHER_EMAIL_SMTP_PASSWORD", "planted-secret-value")
        .env("USHER_DATABASE_URL", "postgres://usher:planted-db-password@db.internal/usher")
        .env("USHER_SECRET_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("mail.example.org"));
    assert!(text.contains("[redacted]"));
    assert!(!text.contains("planted-secret-value"));
    assert!(!text.contains("planted-db-password"), "{text}");
    assert!(text.contains("postgres://…@db.internal/usher"), "{text}");
    assert!(!text.contains("AAAAAAAAAAAA"));
    assert!(text.contains("The configuration is valid."));
}

#[test]
fn serve_prints_a_setup_link_until_an_operator_exists_and_recover_prints_a_new_one() {
    let dir = temp_dir("serve");
    let port = free_port();
    let server = Server::start(&dir, port, &[]);
    let banner = server.banner();
    assert!(banner.iter().any(|l| l == &format!("Open http://127.0.0.1:{port} in your browser")), "{banner:?}");
    let link =
        banner.iter().find_map(|l| l.strip_prefix("Set up the first operator: ")).expect("a set-up link").to_owned();
    assert!(link.starts_with(&format!("http://127.0.0.1:{port}/setup/")));
    assert!(dir.join("usher.db").exists(), "the data directory holds the database");
    assert!(dir.join("secret.key").exists(), "and the key");

    // Follow the link as a browser would.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let form = http.get(&link).send().await.unwrap();
        assert_eq!(form.status(), 200);
        let csrf = form
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("__Host-usher-csrf="))
            .and_then(|c| c.split(';').next())
            .unwrap()
            .to_owned();
        let body = format!("csrf_token={csrf}&full_name=Olive+Operator&email=olive%40example.org&password=Tr1cky-Horse-42&confirm_password=Tr1cky-Horse-42");
        let done = http
            .post(&link)
            .header("cookie", format!("__Host-usher-csrf={csrf}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303);
    });
    drop(server);

    // Re-running reuses the data: no new link once an operator exists.
    let server = Server::start(&dir, port, &[]);
    let banner = server.banner();
    assert!(banner.iter().any(|l| l.starts_with("Open ")), "{banner:?}");
    assert!(!banner.iter().any(|l| l.contains("/setup/")), "{banner:?}");
    drop(server);

    let out = usher()
        .args(["operator", "recover"])
        .env("USHER_DATA_DIR", &dir)
        .env("USHER_PUBLIC_BASE_URL", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Olive Operator"), "{text}");
    assert!(text.lines().any(|l| l.starts_with(&format!("http://127.0.0.1:{port}/setup/"))), "{text}");

    let out = usher().args(["outbox", "list", "--json"]).env("USHER_DATA_DIR", &dir).output().unwrap();
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().iter().any(|m| m["purpose"] == "operator_account_created"), "{list}");

    let out = usher().args(["audit", "verify"]).env("USHER_DATA_DIR", &dir).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));

    let out = usher().arg("migrate").env("USHER_DATA_DIR", &dir).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "The database is up to date.");
}

#[test]
fn the_test_clock_command_moves_a_running_servers_clock() {
    let dir = temp_dir("tc");
    let port = free_port();
    let server = Server::start(&dir, port, &[("USHER_ALLOW_TEST_CLOCK", "1")]);
    drop(server);
    // A plain start does not start the clock; --test-clock does.
    let mut cmd = usher();
    let mut child = cmd
        .args(["serve", "--test-clock"])
        .env("USHER_ALLOW_TEST_CLOCK", "1")
        .env("USHER_DATA_DIR", &dir)
        .env("USHER_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("test clock is on"))));
    let show = |dir: &PathBuf| {
        String::from_utf8_lossy(
            &usher().args(["test-clock", "show"]).env("USHER_DATA_DIR", dir).output().unwrap().stdout,
        )
        .trim()
        .to_owned()
    };
    let before = show(&dir);
    let out = usher().args(["test-clock", "advance", "28d"]).env("USHER_DATA_DIR", &dir).output().unwrap();
    assert!(out.status.success());
    let after = show(&dir);
    assert_ne!(before, after);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let served: serde_json::Value = rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/api/v1/test-clock")).await.unwrap().json().await.unwrap()
    });
    assert_eq!(served["now"], after);
    // Defect 8: commands that act on time used the real clock when the servers run on the test
    // clock. They refuse without permission and use the test clock with it.
    for command in [&["lifecycle", "run"][..], &["operator", "recover"]] {
        fails_with(&usher().args(command).env("USHER_DATA_DIR", &dir).output().unwrap(), &["USHER_ALLOW_TEST_CLOCK=1"]);
    }
    let out = usher()
        .args(["lifecycle", "run"])
        .env("USHER_DATA_DIR", &dir)
        .env("USHER_ALLOW_TEST_CLOCK", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = child.kill();
    let _ = child.wait();
}

/// S10: a lost or different secret key is refused with one line by every command that opens the
/// database, instead of a new key being made and every authenticator app then failing.
#[test]
fn a_lost_or_different_secret_key_is_refused() {
    let dir = temp_dir("lost-key");
    let in_dir = |args: &[&str]| {
        let mut c = usher();
        c.args(args).env("USHER_DATA_DIR", &dir).env("USHER_LISTEN", format!("127.0.0.1:{}", free_port()));
        c
    };
    let out = in_dir(&["migrate"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key_file = dir.join("secret.key");
    let original = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    let out = in_dir(&["configtest"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("the secret key opens"), "{out:?}");

    // A different valid key: refused by serve, migrate and configtest alike.
    let other = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    for command in [&["serve"][..], &["migrate"], &["configtest"], &["lifecycle", "run"]] {
        fails_with(&in_dir(command).env("USHER_SECRET_KEY", other).output().unwrap(), &["secret_key", "another key"]);
    }
    // A rotation keeps the old key in previous_secret_keys, and the new one is then recorded.
    let out = in_dir(&["migrate"])
        .env("USHER_SECRET_KEY", other)
        .env("USHER_PREVIOUS_SECRET_KEYS", &original)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = in_dir(&["migrate"]).env("USHER_SECRET_KEY", other).output().unwrap();
    assert!(out.status.success(), "the rotated key is known now: {}", String::from_utf8_lossy(&out.stderr));

    // The key file deleted: no new key is made, and nothing starts.
    std::fs::remove_file(&key_file).unwrap();
    for command in [&["serve"][..], &["migrate"], &["configtest"], &["outbox", "list"]] {
        fails_with(&in_dir(command).output().unwrap(), &["secret_key_file", "secret.key is missing", "restore"]);
        assert!(!key_file.exists(), "no new key is made for a database that has sealed data");
    }
    std::fs::write(&key_file, format!("{original}\n")).unwrap();
    let out = in_dir(&["migrate"]).output().unwrap();
    assert!(out.status.success(), "the restored key opens it again: {}", String::from_utf8_lossy(&out.stderr));
}

/// Defect: the default dev providers on a public address let anyone read every code at
/// /dev/mailbox. They are refused there unless loudly allowed, and then warned about.
#[test]
fn the_dev_mailbox_is_refused_on_a_public_address() {
    let dir = temp_dir("dev-public");
    let public = [("USHER_DATA_DIR", dir.to_str().unwrap()), ("USHER_PUBLIC_BASE_URL", "https://signin.example.org")];
    for command in ["configtest", "serve"] {
        fails_with(
            &usher().arg(command).envs(public).output().unwrap(),
            &["email.provider", "dev mailbox", "insecure_dev_mailbox_on_public_url"],
        );
    }
    let out = usher()
        .arg("configtest")
        .envs(public)
        .env("USHER_INSECURE_DEV_MAILBOX_ON_PUBLIC_URL", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# WARNING: insecure_dev_mailbox_on_public_url is on: anyone can read"), "{text}");

    let port = free_port();
    let server = Server::start(
        &dir,
        port,
        &[
            ("USHER_PUBLIC_BASE_URL", "https://signin.example.org"),
            ("USHER_INSECURE_DEV_MAILBOX_ON_PUBLIC_URL", "true"),
        ],
    );
    let banner = server.banner().join("\n");
    assert!(banner.contains("WARNING: insecure_dev_mailbox_on_public_url is on"), "{banner}");
}

/// Defect 11: /metrics was served to the public on the main listener. It is on the management
/// listener only (loopback by default, configurable).
#[test]
fn metrics_are_served_on_the_management_listener_only() {
    let dir = temp_dir("metrics");
    let port = free_port();
    let server = Server::start(&dir, port, &[]);
    let banner = server.banner();
    let metrics_url = banner
        .iter()
        .find_map(|l| l.strip_prefix("Metrics for Prometheus (this address only): "))
        .unwrap_or_else(|| panic!("no metrics line in {banner:?}"))
        .to_owned();
    assert!(metrics_url.starts_with("http://127.0.0.1:") && metrics_url.ends_with("/metrics"), "{metrics_url}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let public = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.unwrap();
        assert_eq!(public.status(), 404, "not on the public listener");
        let scraped = reqwest::get(&metrics_url).await.unwrap();
        assert_eq!(scraped.status(), 200);
        assert!(scraped.text().await.unwrap().contains("usher_http_requests_total"));
        let health = reqwest::get(metrics_url.replace("/metrics", "/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);
    });
    drop(server);
    fails_with(
        &usher().arg("configtest").env("USHER_MANAGEMENT_LISTEN", "everywhere").output().unwrap(),
        &["management_listen", "USHER_MANAGEMENT_LISTEN"],
    );
}
