//! Usher's domain: pure rules and types. No I/O and no clock reads: every function that
//! depends on the moment takes `now` as a parameter.

pub mod account;
pub mod audit;
pub mod code;
pub mod duration;
pub mod email;
pub mod error;
pub mod evidence;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod message;
pub mod name;
pub mod notification;
pub mod oidc;
pub mod organisation;
pub mod password;
pub mod phone;
pub mod policy;
pub mod recovery;
pub mod sealing;
pub mod secret;
pub mod time;
pub mod totp;

pub use error::{Error, ErrorCode};
pub use time::Timestamp;
