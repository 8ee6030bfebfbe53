//! Subject identifiers (OpenID Connect Core §8): pairwise by default, so two services cannot
//! join what they know of one person by `sub`; public (the account ID) where the operator says.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::ids::UserId;

/// The pairwise `sub` of `user` for clients of `sector`: HMAC-SHA256 under the provider's
/// subject secret, over the sector and the account ID. Stable for as long as the secret is.
pub fn pairwise(secret: &[u8; 32], sector: &str, user: &UserId) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else { return String::new() };
    mac.update(sector.as_bytes());
    mac.update(&[0]);
    mac.update(user.as_str().as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_subjects_differ_by_sector_and_are_stable() {
        let secret = [7u8; 32];
        let user = UserId::from_trusted("0123456789abcdef0123456789abcdef".into());
        let a = pairwise(&secret, "court.example", &user);
        assert_eq!(a, pairwise(&secret, "court.example", &user));
        assert_ne!(a, pairwise(&secret, "probation.example", &user));
        assert_ne!(a, pairwise(&[8u8; 32], "court.example", &user));
        assert_eq!(a.len(), 43);
        assert!(!a.contains(user.as_str()));
    }
}
