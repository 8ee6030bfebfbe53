//! Which services were told of a sign-out, carried across the redirect after it (to the
//! signed-out page, or back to the sessions page) in the address, sealed under the secret key
//! so that nobody can make the page say a service was told when it was not, and only for a
//! few minutes.

use serde::{Deserialize, Serialize};
use usher_app::oidc::logout::ServiceTold;
use usher_domain::Timestamp;

use crate::AppState;

/// How long the list stays readable after the sign-out.
const FRESH_SECONDS: i64 = 300;
const BOUND_TO: &str = "told-services";

#[derive(Serialize, Deserialize)]
struct Sealed {
    at: i64,
    services: Vec<(String, bool)>,
}

/// `told=...` for the address after a sign-out; empty when there is nothing to say.
pub(crate) fn query(state: &AppState, told: &[ServiceTold], now: Timestamp) -> String {
    if told.is_empty() {
        return String::new();
    }
    let sealed = Sealed { at: now.unix(), services: told.iter().map(|t| (t.name.clone(), t.told)).collect() };
    let Ok(json) = serde_json::to_vec(&sealed) else { return String::new() };
    match state.app.secret_key.seal(&json, BOUND_TO) {
        Ok(text) => form_urlencoded::Serializer::new(String::new()).append_pair("told", &text).finish(),
        Err(_) => String::new(),
    }
}

/// The services of a `told` parameter, if it is ours and fresh.
pub(crate) fn open(state: &AppState, param: Option<&str>, now: Timestamp) -> Vec<ServiceTold> {
    let Some(text) = param.filter(|t| t.len() < 8192) else { return Vec::new() };
    let Ok(json) = state.app.secret_key.open(text, BOUND_TO) else { return Vec::new() };
    let Ok(sealed) = serde_json::from_slice::<Sealed>(&json) else { return Vec::new() };
    if now.unix() < sealed.at || now.unix() - sealed.at > FRESH_SECONDS {
        return Vec::new();
    }
    sealed.services.into_iter().map(|(name, told)| ServiceTold { name, told }).collect()
}

/// The services told and not told, by name, for a page.
#[derive(Debug, Default)]
pub(crate) struct Told {
    pub told: Vec<String>,
    pub not_told: Vec<String>,
}

impl Told {
    pub(crate) fn of(services: &[ServiceTold]) -> Self {
        let mut t = Self::default();
        for s in services {
            if s.told { t.told.push(s.name.clone()) } else { t.not_told.push(s.name.clone()) }
        }
        t
    }
}
