//! Typed identifiers. Each is 128 random bits written as 32 lower-case hex characters, made in
//! the application rather than by the database so both engines share one schema.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn generate() -> Self {
                Self(random_hex_id())
            }

            /// Accepts only the canonical form; anything else is simply not an ID we issued.
            pub fn parse(text: &str) -> Option<Self> {
                is_canonical_id(text).then(|| Self(text.to_owned()))
            }

            /// For values read back from our own database.
            pub fn from_trusted(text: String) -> Self {
                Self(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

id_type!(
    /// A person with an account: operator, organisation administrator or user.
    UserId
);
id_type!(
    /// An organisation: a law firm, chambers, police force, prosecutor or court.
    OrganisationId
);
id_type!(
    /// A message in the outbox.
    MessageId
);
id_type!(
    /// A signed-in session (not its secret token).
    SessionId
);

id_type!(
    /// A relying party registered with Usher's OpenID Connect provider (its `client_id`).
    ClientId
);
id_type!(
    /// What one authorization code issued: its refresh-token family and access tokens.
    GrantId
);
id_type!(
    /// An authorization request waiting for a person to sign in and continue.
    AuthRequestId
);

fn random_hex_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn is_canonical_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_other_text() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        assert_ne!(UserId::generate(), id);
        for bad in ["", "abc", "../../etc/passwd", &"G".repeat(32), &id.as_str().to_uppercase()] {
            assert!(UserId::parse(bad).is_none(), "{bad}");
        }
    }
}
