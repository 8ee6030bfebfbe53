//! Rate limits shared by every node: a window count per key in the store. Keys are hashed, so
//! the table holds no personal data.

use sha2::{Digest, Sha256};
use usher_domain::duration::Span;
use usher_domain::limits::RateLimit;
use usher_domain::{Error, Timestamp};
use usher_store::WindowCount;

use crate::{App, store_error};

impl App {
    /// Counts a request against a rate limit; refuses with "try again later" past the limit.
    pub async fn rate_limit(&self, limit: RateLimit, key: &str, now: Timestamp) -> Result<(), Error> {
        let count = self.hit(limit, key, now).await?;
        if count.hits <= limit.max {
            Ok(())
        } else {
            Err(Error::rate_limited(
                format!("There have been too many attempts. Wait {} and try again.", describe(limit.window)),
                Span::seconds_(count.resets_at.seconds_since(now)),
            ))
        }
    }

    pub(crate) async fn within_limit(&self, limit: RateLimit, key: &str, now: Timestamp) -> Result<bool, Error> {
        Ok(self.hit(limit, key, now).await?.hits <= limit.max)
    }

    async fn hit(&self, limit: RateLimit, key: &str, now: Timestamp) -> Result<WindowCount, Error> {
        self.store.hit_rate_limit(&bucket(limit, key), limit.window.seconds(), now).await.map_err(store_error)
    }

    /// `None` while `key` is still under `limit`, without counting this request; past it, how
    /// long until the limit frees.
    pub(crate) async fn limit_reached(
        &self,
        limit: RateLimit,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<Span>, Error> {
        let count =
            self.store.rate_limit_hits(&bucket(limit, key), limit.window.seconds(), now).await.map_err(store_error)?;
        Ok((count.hits >= limit.max).then(|| Span::seconds_(count.resets_at.seconds_since(now))))
    }

    /// Counts one request against `limit` (for limits that count only failures).
    pub(crate) async fn count_against(&self, limit: RateLimit, key: &str, now: Timestamp) -> Result<(), Error> {
        self.store.hit_rate_limit(&bucket(limit, key), limit.window.seconds(), now).await.map_err(store_error)?;
        Ok(())
    }

    /// Forgets `key`'s count under `limit`.
    pub(crate) async fn clear_limit(&self, limit: RateLimit, key: &str) -> Result<(), Error> {
        self.store.clear_rate_limit(&bucket(limit, key)).await.map_err(store_error)
    }
}

/// The storage name of `key`'s bucket under `limit`. Keys (emails, addresses) are hashed, so
/// the table holds no personal data; an IPv6 address counts by its /64, which one subscriber
/// usually holds whole.
pub(crate) fn bucket(limit: RateLimit, key: &str) -> String {
    let key = key.trim().to_lowercase();
    let key = match key.parse::<std::net::Ipv6Addr>() {
        Ok(v6) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        _ => key,
    };
    format!("{}:{}", limit.name, hex::encode(Sha256::digest(key.as_bytes())))
}

fn describe(span: Span) -> String {
    match span.seconds() {
        s if s % 3600 == 0 => format!("{} hour{}", s / 3600, if s == 3600 { "" } else { "s" }),
        s => format!("{} minutes", s / 60),
    }
}
