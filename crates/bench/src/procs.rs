//! The processes a benchmark starts and what Linux says about them: CPU time and resident
//! memory from `/proc`, summed over a process and its children (gunicorn's workers, say).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;

/// Clock ticks per second in `/proc/*/stat` (USER_HZ, 100 on every Linux this runs on).
const TICKS_PER_SECOND: f64 = 100.0;

/// CPU time of a process and its descendants.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    pid: u32,
    with_children: bool,
}

impl Cpu {
    /// A server: the process and every descendant (gunicorn's workers).
    pub fn of(pid: u32) -> Self {
        Self { pid, with_children: true }
    }

    /// The load generator alone, without the servers it started.
    pub fn this_process() -> Self {
        Self { pid: std::process::id(), with_children: false }
    }

    /// User plus system CPU seconds so far.
    pub fn seconds(&self) -> anyhow::Result<f64> {
        let pids = if self.with_children { tree(self.pid) } else { vec![self.pid] };
        let mut ticks = 0u64;
        for pid in pids {
            if let Some(fields) = stat_fields(pid) {
                // utime and stime are fields 14 and 15 (1-based) of the whole line; cutime and
                // cstime (16, 17) add children that ended and were waited for.
                let range = if self.with_children { 11..15 } else { 11..13 };
                ticks += fields.get(range).map(|f| f.iter().map(|v| v.parse::<u64>().unwrap_or(0)).sum()).unwrap_or(0);
            }
        }
        Ok(ticks as f64 / TICKS_PER_SECOND)
    }
}

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces), so that the
/// first one is the state (field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// A process and all its descendants, found by their parent IDs.
fn tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok())) {
                parents.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, pp)| *pp == parent).map(|(p, _)| *p));
        i += 1;
    }
    found
}

/// Resident memory of a process and its descendants.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// VmRSS: resident now, in MiB.
    pub rss_mib: f64,
    /// VmHWM: the most it has been resident, in MiB.
    pub peak_mib: f64,
}

pub fn memory(pid: u32) -> Memory {
    let mut rss = 0u64;
    let mut peak = 0u64;
    for pid in tree(pid) {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        for line in status.lines() {
            let kib = |l: &str| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            if line.starts_with("VmRSS:") {
                rss += kib(line);
            } else if line.starts_with("VmHWM:") {
                peak += kib(line);
            }
        }
    }
    Memory { rss_mib: rss as f64 / 1024.0, peak_mib: peak as f64 / 1024.0 }
}

/// A server started for a benchmark; stopped when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// Starts `command` (its output going to `log`) and waits until `base` + `ready_path`
    /// answers 2xx.
    pub async fn start(
        name: &str,
        mut command: Command,
        base: String,
        ready_path: &str,
        log: &Path,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
        let err = out.try_clone()?;
        command.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = command.spawn().with_context(|| format!("cannot start {name}"))?;
        let mut server = Self { child, base };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                bail!("{name} exited at start ({status}); see {}", log.display());
            }
            let answer = client.get(format!("{}{ready_path}", server.base)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(120) {
                server.stop();
                bail!("{name} was not ready within 2 minutes; see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn cpu(&self) -> Cpu {
        Cpu::of(self.pid())
    }

    pub fn memory(&self) -> Memory {
        memory(self.pid())
    }

    /// Asks the server to stop (SIGTERM through `kill`, so gunicorn stops its workers too), then
    /// makes sure.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.stop();
        }
    }
}

/// A port nobody is listening on now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The machine, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub cpu: String,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
    Machine { cores, memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0, cpu, kernel }
}
