//! Checking the audit trail's hash chain.

use usher_domain::Error;
use usher_domain::audit::{GENESIS, chain_hash};

use crate::{App, store_error};

/// The result of `usher audit verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainReport {
    /// Every event links to the one before and matches its hash.
    Intact { events: i64 },
    /// The first event whose stored hash or link does not match.
    Broken { seq: i64, reason: &'static str },
}

impl App {
    pub async fn verify_audit_chain(&self) -> Result<ChainReport, Error> {
        let (head_seq, head_hash) = self.store.audit_chain_head().await.map_err(store_error)?;
        let mut previous = GENESIS.to_owned();
        let mut expected_seq = 1;
        loop {
            let batch = self.store.audit_events_after(expected_seq - 1, 1000).await.map_err(store_error)?;
            if batch.is_empty() {
                let count = expected_seq - 1;
                // Events removed from the end leave the chain head pointing past them.
                if count != head_seq || previous != head_hash {
                    return Ok(ChainReport::Broken {
                        seq: count + 1,
                        reason: "events are missing from the end of the trail",
                    });
                }
                return Ok(ChainReport::Intact { events: count });
            }
            for e in &batch {
                if e.seq != expected_seq {
                    return Ok(ChainReport::Broken { seq: expected_seq, reason: "missing event" });
                }
                if e.prev_hash != previous {
                    return Ok(ChainReport::Broken { seq: e.seq, reason: "does not link to the event before it" });
                }
                if chain_hash(&previous, &e.fields()) != e.hash {
                    return Ok(ChainReport::Broken { seq: e.seq, reason: "its content does not match its hash" });
                }
                previous.clone_from(&e.hash);
                expected_seq += 1;
            }
        }
    }
}
