//! The OpenID Connect provider's pure rules: PKCE, redirect URIs, scopes and claim sets,
//! `acr` from what a session proved, and pairwise subjects. No I/O and no clock reads.

pub mod acr;
pub mod client;
pub mod error;
pub mod pkce;
pub mod scope;
pub mod subject;

pub use acr::Acr;
pub use client::{AuthMethod, ClientRules, RedirectUri, SigningAlg, SubjectType};
pub use error::{OAuthError, OAuthErrorCode};
pub use scope::{Scope, Scopes};
