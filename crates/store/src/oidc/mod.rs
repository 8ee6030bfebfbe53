//! The OpenID Connect provider's storage: clients and their hashed secrets, signing keys and
//! the pairwise subject secret (both sealed), authorization requests and codes, grants and
//! their refresh tokens. Single-use rules are compare-and-set updates.

mod clients;
mod flow;
mod grants;
mod keys;
mod logout;

pub use clients::OidcClient;
pub use flow::{AuthRequest, CodeUse, StoredAuthCode};
pub use grants::{Grant, RefreshUse};
pub use keys::SigningKeyRecord;
pub(crate) use keys::sealed_key_ids_sql;
pub use logout::{DeliveryCounts, EndedLink, EndedSessions, LogoutDelivery, SessionService};

use sqlx::Row as _;
use sqlx::any::AnyRow;
use usher_domain::Timestamp;

use crate::{Result, StoreError};

fn decode_error(what: &str) -> StoreError {
    StoreError::Query(sqlx::Error::Decode(format!("unreadable {what}").into()))
}

fn time(row: &AnyRow, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_unix(row.try_get(column)?))
}

fn opt_time(row: &AnyRow, column: &str) -> Result<Option<Timestamp>> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(Timestamp::from_unix))
}
