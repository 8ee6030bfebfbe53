//! The load generator. A closed loop (a fixed number of workers, each sending its next request
//! as soon as the last one is answered) finds a path's throughput; an open loop (requests
//! started at a fixed rate whatever the answers do) finds its latency at a moderate load. In
//! the open loop a request's latency counts from the moment it was due, not from when it was
//! sent, so a slow server cannot hide its queue (no coordinated omission).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::procs::Cpu;

/// What one request of a job came to.
#[derive(Debug)]
pub enum Step {
    /// Answered as expected.
    Done,
    /// Answered otherwise: the message says how.
    Failed(String),
    /// The job has no more work (every prepared account has been used).
    Exhausted,
}

pub type StepFuture = Pin<Box<dyn Future<Output = Step> + Send>>;

/// Makes request number `n` of a job. Numbers are handed out once each, in order.
pub type Job = Arc<dyn Fn(u64) -> StepFuture + Send + Sync>;

/// A job that hands each of the accounts `from..to` to `run` once, across every phase it is used
/// in (a code or a pending session can be used only once), then says it is exhausted. `run`
/// gets the account and the request number.
pub fn each_account_once((from, to): (u64, u64), run: impl Fn(u64, u64) -> StepFuture + Send + Sync + 'static) -> Job {
    let next = Arc::new(AtomicU64::new(from));
    Arc::new(move |n| {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= to { Box::pin(async { Step::Exhausted }) } else { run(i, n) }
    })
}

/// The figures of one phase of load.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub requests: u64,
    pub failed: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The load generator's own CPU use over the phase, in cores (1.0 = one core busy).
    pub generator_cores: f64,
    /// The server's CPU use over the phase, in cores.
    pub server_cores: f64,
    /// The first unexpected answer, if any, to tell a broken run from a slow one.
    pub first_failure: Option<String>,
    /// The open loop's target rate; absent for a closed loop.
    pub target_rate: Option<f64>,
}

struct Tally {
    latencies: Vec<Duration>,
    failed: u64,
    first_failure: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self { latencies: Vec::new(), failed: 0, first_failure: None }
    }

    fn record(&mut self, step: Step, latency: Duration) -> bool {
        match step {
            Step::Done => self.latencies.push(latency),
            Step::Failed(why) => {
                self.failed += 1;
                self.first_failure.get_or_insert(why);
            }
            Step::Exhausted => return false,
        }
        true
    }

    fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.failed += other.failed;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
    }

    fn outcome(mut self, elapsed: Duration, generator: f64, server: f64, target_rate: Option<f64>) -> Outcome {
        self.latencies.sort_unstable();
        let seconds = elapsed.as_secs_f64().max(1e-9);
        let ok = self.latencies.len() as u64;
        Outcome {
            requests: ok,
            failed: self.failed,
            seconds,
            per_second: ok as f64 / seconds,
            p50_ms: percentile(&self.latencies, 0.50),
            p99_ms: percentile(&self.latencies, 0.99),
            generator_cores: generator / seconds,
            server_cores: server / seconds,
            first_failure: self.first_failure,
            target_rate,
        }
    }
}

/// The `q` quantile (nearest rank) in milliseconds; 0 when nothing was measured.
fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// Runs `job` with `workers` concurrent workers for `duration` (or until the job is exhausted).
pub async fn closed(job: Job, workers: usize, duration: Duration, server: &Cpu) -> anyhow::Result<Outcome> {
    let me = Cpu::this_process();
    let (generator_before, server_before) = (me.seconds()?, server.seconds()?);
    let start = Instant::now();
    let deadline = start + duration;
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..workers.max(1) {
        let (job, next) = (job.clone(), next.clone());
        set.spawn(async move {
            let mut tally = Tally::new();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let step = job(n).await;
                if !tally.record(step, sent.elapsed()) {
                    break;
                }
            }
            tally
        });
    }
    let mut all = Tally::new();
    while let Some(done) = set.join_next().await {
        all.merge(done?);
    }
    let elapsed = start.elapsed();
    let generator = me.seconds()? - generator_before;
    let server_used = server.seconds()? - server_before;
    Ok(all.outcome(elapsed, generator, server_used, None))
}

/// Starts `job` requests at `rate` per second for `duration`, each in its own task.
pub async fn open(job: Job, rate: f64, duration: Duration, server: &Cpu) -> anyhow::Result<Outcome> {
    let me = Cpu::this_process();
    let (generator_before, server_before) = (me.seconds()?, server.seconds()?);
    let rate = rate.max(1.0);
    let total = (rate * duration.as_secs_f64()).ceil().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut set = JoinSet::new();
    for n in 0..total {
        let due = start + interval.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let job = job.clone();
        set.spawn(async move {
            let step = job(n).await;
            (step, due.elapsed())
        });
    }
    let mut all = Tally::new();
    while let Some(done) = set.join_next().await {
        let (step, latency) = done?;
        all.record(step, latency);
    }
    let elapsed = start.elapsed();
    let generator = me.seconds()? - generator_before;
    let server_used = server.seconds()? - server_before;
    Ok(all.outcome(elapsed, generator, server_used, Some(rate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert!((percentile(&ms, 0.50) - 50.0).abs() < 1e-9);
        assert!((percentile(&ms, 0.99) - 99.0).abs() < 1e-9);
        assert!((percentile(&ms[..1], 0.99) - 1.0).abs() < 1e-9);
        assert!(percentile(&[], 0.5).abs() < 1e-9);
    }
}
