//! Argon2id off the async threads, on a bounded pool: a burst of sign-ins waits its turn
//! instead of stalling every other request. Each of the pool's places keeps its Argon2 memory
//! for the next hash (see [`Workspace`]).

use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use usher_domain::Error;
use usher_domain::password::{self, HashCost, Workspace};

#[derive(Debug, Clone)]
pub struct Hasher {
    cost: HashCost,
    permits: Arc<Semaphore>,
    /// At most one per permit, so memory stays at `threads` × the cost's memory.
    workspaces: Arc<Mutex<Vec<Workspace>>>,
    threads: usize,
    /// Checked when the account is unknown, so that answer takes as long as any other.
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(cost: HashCost, threads: usize) -> Self {
        let dummy_hash = cost.hash("usher-dummy-password").unwrap_or_default().into();
        Self {
            cost,
            permits: Arc::new(Semaphore::new(threads.max(1))),
            workspaces: Arc::new(Mutex::new(Vec::new())),
            threads: threads.max(1),
            dummy_hash,
        }
    }

    pub fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    pub fn cost(&self) -> HashCost {
        self.cost
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce(&mut Workspace) -> T + Send + 'static) -> Result<T, Error> {
        // The permit goes with the job: a request given up while its hash runs must not let
        // another hash start beside it.
        let permit = self.permits.clone().acquire_owned().await.map_err(Error::internal)?;
        let (workspaces, threads, cost) = (self.workspaces.clone(), self.threads, self.cost);
        tokio::task::spawn_blocking(move || {
            let kept = workspaces.lock().ok().and_then(|mut kept| kept.pop());
            let mut work = kept.unwrap_or_else(|| Workspace::up_to(cost));
            let done = job(&mut work);
            if let Ok(mut kept) = workspaces.lock()
                && kept.len() < threads
            {
                kept.push(work);
            }
            drop(permit);
            done
        })
        .await
        .map_err(Error::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let cost = self.cost;
        self.run(move |work| cost.hash_in(&password, work)).await?.map_err(Error::internal)
    }

    pub async fn verify(&self, stored: String, password: String) -> Result<bool, Error> {
        self.run(move |work| password::verify_in(&stored, &password, work)).await
    }

    /// As [`Hasher::verify`], for sign-in: a wrong password on a hash made at a lower cost than
    /// configured also does the missing work, so it takes as long as the check of an unknown
    /// email against the dummy hash (S6).
    pub async fn verify_evenly(&self, stored: String, password: String) -> Result<bool, Error> {
        let cost = self.cost;
        self.run(move |work| {
            let ok = password::verify_in(&stored, &password, work);
            if !ok && let Some(padding) = cost.padding_for(&stored) {
                let _ = padding.hash_in("usher-padding", work);
            }
            ok
        })
        .await
    }
}
