//! Test support shared by the workspace's integration tests: real peers started as child
//! processes. Not part of the product.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const INSTALL_HINT: &str = "the SMTP tests need python3 with aiosmtpd: run `pip install -r tests/helpers/requirements.txt` \
     (the project's test script installs it)";

/// The sink server; killed, and its file removed, when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    outfile: PathBuf,
}

impl SmtpSink {
    /// Starts `tests/helpers/smtp_sink.py` (aiosmtpd) on a free port; `name` keeps files apart.
    pub fn start(name: &str) -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let outfile = std::env::temp_dir().join(format!("smtp-sink-{}-{name}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&outfile);
        let mut child = Command::new("python3")
            .arg(root.join("tests/helpers/smtp_sink.py"))
            .arg("0")
            .arg(&outfile)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("could not start python3 ({e}); {INSTALL_HINT}"));

        // Read the first line on a thread so a stuck server fails the test instead of hanging it.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = line.trim().strip_prefix("LISTENING ").and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            panic!("the SMTP sink did not start (first line {line:?}, stderr: {stderr}); {INSTALL_HINT}");
        };
        Self { child, port, outfile }
    }

    /// The messages received so far, waiting up to 10 s for at least `count`.
    pub fn received(&self, count: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let text = std::fs::read_to_string(&self.outfile).unwrap_or_default();
            let lines: Vec<serde_json::Value> =
                text.lines().map(|l| serde_json::from_str(l).expect("a JSON line from the sink")).collect();
            if lines.len() >= count {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the SMTP sink did not receive {count} message(s) within 10 s");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.outfile);
    }
}
