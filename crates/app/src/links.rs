//! Finding a one-time link from the token in its URL. The checks are the same for every kind
//! of link; each use case words its own answer for a used or an expired one.

use usher_domain::secret::Token;
use usher_domain::{Error, Timestamp};
use usher_store::{LinkPurpose, OneTimeLink, Tx};

use crate::store_error;

/// A link that exists and is of the expected kind.
#[derive(Debug)]
pub(crate) enum LinkState {
    Live(OneTimeLink),
    /// Used, or replaced by a newer one.
    Used(OneTimeLink),
    Expired(OneTimeLink),
}

impl LinkState {
    pub(crate) fn link(&self) -> &OneTimeLink {
        match self {
            Self::Live(l) | Self::Used(l) | Self::Expired(l) => l,
        }
    }
}

/// The link behind `token` if it is one of `purposes`; anything else (malformed, unknown,
/// another kind) is "not found".
pub(crate) async fn find_link(
    tx: &mut Tx,
    token: &str,
    purposes: &[LinkPurpose],
    now: Timestamp,
) -> Result<LinkState, Error> {
    let token = Token::parse(token).ok_or_else(Error::not_found)?;
    let link = tx.link(&token.hash()).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
    if !purposes.contains(&link.purpose) {
        return Err(Error::not_found());
    }
    Ok(if link.used_at.is_some() {
        LinkState::Used(link)
    } else if now > link.expires_at {
        LinkState::Expired(link)
    } else {
        LinkState::Live(link)
    })
}
