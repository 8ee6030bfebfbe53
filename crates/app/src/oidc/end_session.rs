//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a service sends the person to
//! the end-session endpoint to sign out of Usher, and of every other service the session
//! signed in to. A request with an ID token of ours for the signed-in person signs out at
//! once; any other asks the person first, so a link on another site cannot sign anyone out
//! silently. The browser goes back only to a post-logout address the service registered,
//! exactly as registered.

use serde::Deserialize;
use usher_domain::ids::ClientId;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::Tx;
use usher_store::oidc::OidcClient;

use super::logout::ServiceTold;
use crate::sessions::Authenticated;
use crate::{App, RequestContext, store_error};

/// The end-session request's parameters (§2), from the query or a form.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EndSessionParams {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub logout_hint: Option<String>,
    pub ui_locales: Option<String>,
}

/// What to do with an end-session request.
#[derive(Debug)]
pub enum EndSession {
    /// Ask the person whether to sign out.
    Confirm(Confirmation),
    /// Signed out (or nobody was signed in): go back to the service, or say so here.
    /// `signed_out` says whether a session of this browser ended (its cookie then goes).
    Done { told: Vec<ServiceTold>, back_to: Option<String>, signed_out: bool },
}

/// What the confirmation page says and carries.
#[derive(Debug, Clone)]
pub struct Confirmation {
    /// The service that sent the person, when it is known.
    pub client_name: Option<String>,
    /// The checked request, carried by the page's form to [`App::confirm_end_session`].
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    /// True when the service asked to send the person back somewhere it has not registered:
    /// they stay on Usher.
    pub unregistered_redirect: bool,
}

/// The claims of an ID token used as a hint.
#[derive(Debug, Deserialize)]
struct Hint {
    sub: String,
    #[serde(deserialize_with = "audiences")]
    aud: Vec<String>,
    /// The session and service the ID token was issued for.
    #[serde(default)]
    sid: Option<String>,
}

fn audiences<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Aud {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Aud::deserialize(d)? {
        Aud::One(a) => vec![a],
        Aud::Many(a) => a,
    })
}

/// Longest parameter accepted: an ID token is a few kilobytes at most.
const MAX_PARAM: usize = 8192;

fn invalid(message: &'static str) -> Error {
    Error::new(ErrorCode::InvalidInput, message)
}

/// A request checked: which client, where to go back to (with `state`), and what the hint said.
struct Checked {
    client: Option<OidcClient>,
    back_to: Option<String>,
    unregistered_redirect: bool,
    hint_sub: Option<String>,
    hint_sid: Option<String>,
}

/// `uri` with `state` added as a query parameter.
fn with_state(uri: &str, state: Option<&str>) -> String {
    let Some(state) = state else { return uri.to_owned() };
    let mut url = match url::Url::parse(uri) {
        Ok(u) => u,
        Err(_) => return uri.to_owned(),
    };
    url.query_pairs_mut().append_pair("state", state);
    url.to_string()
}

impl App {
    async fn check_end_session(&self, tx: &mut Tx, p: &EndSessionParams, now: Timestamp) -> Result<Checked, Error> {
        let fields = [&p.id_token_hint, &p.client_id, &p.post_logout_redirect_uri, &p.state, &p.logout_hint];
        if fields.iter().any(|f| f.as_ref().is_some_and(|v| v.len() > MAX_PARAM)) {
            return Err(invalid("This sign-out request is too long to be real. Sign out from the menu instead."));
        }
        let blank = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let (mut hint_sub, mut hint_sid) = (None, None);
        let mut client_id = blank(&p.client_id);
        if let Some(token) = blank(&p.id_token_hint) {
            // Our own ID token, expired or not (§2: the hint may have expired).
            let Some(hint) = self.verify_own::<Hint>(tx, &token, "JWT", now).await? else {
                return Err(invalid(
                    "The service sent a sign-out request Usher cannot check. Sign out from the menu instead, and tell the service's helpdesk.",
                ));
            };
            let Some(aud) = hint.aud.first().cloned() else {
                return Err(invalid("The service's sign-out request names no service."));
            };
            if client_id.as_ref().is_some_and(|c| !hint.aud.contains(c)) {
                return Err(invalid("The service's sign-out request names two different services."));
            }
            client_id.get_or_insert(aud);
            hint_sub = Some(hint.sub);
            hint_sid = hint.sid;
        }
        let client = match client_id {
            None => None,
            Some(id) => match ClientId::parse(&id) {
                Some(id) => tx.client(&id).await.map_err(store_error)?.filter(|c| c.disabled_at.is_none()),
                None => None,
            },
        };
        let (mut back_to, mut unregistered_redirect) = (None, false);
        if let Some(uri) = blank(&p.post_logout_redirect_uri) {
            match &client {
                Some(c) if c.post_logout_redirect_uris.contains(&uri) => {
                    back_to = Some(with_state(&uri, p.state.as_deref()));
                }
                _ => unregistered_redirect = true,
            }
        }
        Ok(Checked { client, back_to, unregistered_redirect, hint_sub, hint_sid })
    }

    /// An end-session request arrives from a service. `who` is the person signed in here, if
    /// anyone is.
    pub async fn end_session_request(
        &self,
        p: &EndSessionParams,
        who: Option<&Authenticated>,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<EndSession, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let checked = self.check_end_session(&mut tx, p, now).await?;
        let Some(who) = who.filter(|w| w.is_full()) else {
            // Nobody fully signed in: nothing to end (a sign-in half done is left alone, so that
            // another site cannot interrupt it); the service gets its answer.
            return Ok(EndSession::Done { told: Vec::new(), back_to: checked.back_to, signed_out: false });
        };
        // At once only for an ID token of this very session: the person and the sid match.
        let same_session = match (&checked.client, &checked.hint_sub, &checked.hint_sid) {
            (Some(client), Some(sub), Some(sid)) => {
                self.subject_of(&mut tx, client, &who.user.id).await? == *sub
                    && tx.session_has_sid(&who.session.id, &client.id, sid).await.map_err(store_error)?
            }
            _ => false,
        };
        drop(tx);
        if same_session && !checked.unregistered_redirect {
            let told = self.sign_out(who, ctx, now).await?;
            return Ok(EndSession::Done { told, back_to: checked.back_to, signed_out: true });
        }
        Ok(EndSession::Confirm(Confirmation {
            client_name: checked.client.as_ref().map(|c| c.name.clone()),
            client_id: checked.client.as_ref().map(|c| c.id.to_string()),
            post_logout_redirect_uri: if checked.back_to.is_some() { p.post_logout_redirect_uri.clone() } else { None },
            state: p.state.clone(),
            unregistered_redirect: checked.unregistered_redirect,
        }))
    }

    /// The person confirmed signing out (the confirmation page's form, with its anti-forgery
    /// token): the request is checked again, the session ends.
    pub async fn confirm_end_session(
        &self,
        p: &EndSessionParams,
        who: Option<&Authenticated>,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<EndSession, Error> {
        let params = EndSessionParams { id_token_hint: None, logout_hint: None, ..p.clone() };
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let checked = self.check_end_session(&mut tx, &params, now).await?;
        drop(tx);
        let told = match who {
            Some(who) => self.sign_out(who, ctx, now).await?,
            None => Vec::new(),
        };
        Ok(EndSession::Done { told, back_to: checked.back_to, signed_out: who.is_some() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_added_to_the_registered_address() {
        assert_eq!(with_state("https://rp.example/out", Some("a b")), "https://rp.example/out?state=a+b");
        assert_eq!(with_state("https://rp.example/out?x=1", Some("s")), "https://rp.example/out?x=1&state=s");
        assert_eq!(with_state("https://rp.example/out", None), "https://rp.example/out");
    }
}
