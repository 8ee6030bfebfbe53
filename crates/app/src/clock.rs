//! The one place that reads the wall clock. Everything else receives `now` as a parameter;
//! clippy's `disallowed-methods` (see clippy.toml) enforces that.
//!
//! With the test clock on (`usher serve --test-clock`, allowed only with
//! `USHER_ALLOW_TEST_CLOCK=1`), the moment is kept in the database and moves only when told, so
//! black-box tests can check day-28 and day-90 rules against a running server, and every
//! server sharing the database sees the same moment.

#![allow(clippy::disallowed_methods)]

use usher_domain::{Error, Timestamp};
use usher_store::Store;

#[derive(Debug, Clone)]
pub enum Clock {
    System,
    Test(Store),
}

impl Clock {
    pub async fn now(&self) -> Result<Timestamp, Error> {
        match self {
            Self::System => Ok(system_now()),
            Self::Test(store) => match store.test_clock().await {
                Ok(Some(now)) => Ok(Timestamp::from_unix(now)),
                Ok(None) => Err(Error::internal("the test clock has not been started")),
                Err(e) => Err(crate::store_error(e)),
            },
        }
    }

    pub fn is_test(&self) -> bool {
        matches!(self, Self::Test(_))
    }
}

/// The wall clock, for the edges that must know the real time (start-up, the test clock's
/// first value, JWTs for delivery providers).
pub fn system_now() -> Timestamp {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Timestamp::from_unix(seconds)
}

/// Measures elapsed real time for metrics and logs; never used for a rule.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }

    pub fn elapsed_seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}
