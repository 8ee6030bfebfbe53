//! Argon2id off the async threads, on a bounded pool: a burst of sign-ins waits its turn
//! instead of stalling every other request.

use std::sync::Arc;

use tokio::sync::Semaphore;
use usher_domain::Error;
use usher_domain::password::{self, HashCost};

#[derive(Debug, Clone)]
pub struct Hasher {
    cost: HashCost,
    permits: Arc<Semaphore>,
    /// Checked when the account is unknown, so that answer takes as long as any other.
    dummy_hash: Arc<str>,
}

impl Hasher {
    pub fn new(cost: HashCost, threads: usize) -> Self {
        let dummy_hash = cost.hash("usher-dummy-password").unwrap_or_default().into();
        Self { cost, permits: Arc::new(Semaphore::new(threads.max(1))), dummy_hash }
    }

    pub fn dummy_hash(&self) -> &str {
        &self.dummy_hash
    }

    pub fn cost(&self) -> HashCost {
        self.cost
    }

    async fn run<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, Error> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(job).await.map_err(Error::internal)
    }

    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let cost = self.cost;
        self.run(move || cost.hash(&password)).await?.map_err(Error::internal)
    }

    pub async fn verify(&self, stored: String, password: String) -> Result<bool, Error> {
        self.run(move || password::verify(&stored, &password)).await
    }
}
