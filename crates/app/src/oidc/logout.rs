//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a session ends, every
//! service it signed in to that has a logout address gets one logout token, through the
//! outbox. The token is signed when it is sent, with a new `jti` each time, so it is fresh
//! however long the service was down; the outbox retries with backoff and gives up after a
//! bounded time, and the operator sees what was given up on the service's page.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use usher_delivery::{Provider, SendError, SendFuture};
use usher_domain::duration::Span;
use usher_domain::ids::{ClientId, MessageId, UserId};
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::oidc::{SubjectType, subject};
use usher_domain::secret::Token;
use usher_domain::{Error, Timestamp};
use usher_store::Tx;
use usher_store::oidc::{EndedLink, EndedSessions, OidcClient};

use crate::{App, RequestContext, store_error};

/// The `events` member that makes a JWT a logout token (§2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The JWT type of logout tokens (§2.4, explicit typing).
pub const LOGOUT_TOKEN_TYPE: &str = "logout+jwt";
/// How long a logout token is valid after it is signed: it is signed at each attempt.
pub const LOGOUT_TOKEN_SECONDS: i64 = 120;
/// The outbox purpose of logout tokens.
pub const PURPOSE: &str = "backchannel_logout";

/// A service a session had signed in to, and whether it was told of the sign-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceTold {
    pub name: String,
    /// False when the service has no logout address: the person signs out of it there.
    pub told: bool,
}

/// What the outbox holds for one logout token: enough to sign it when it is sent.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    client_id: String,
    sub: String,
    sid: String,
}

impl App {
    /// The `sub` a client sees for a person, from the person's ID alone (their account may be
    /// being deleted).
    pub(crate) async fn subject_of(&self, tx: &mut Tx, client: &OidcClient, user: &UserId) -> Result<String, Error> {
        Ok(match client.subject_type {
            SubjectType::Public => user.to_string(),
            SubjectType::Pairwise => subject::pairwise(&self.subject_secret(tx).await?, &client.sector, user),
        })
    }

    /// Queues a logout token for each service of `ended` that has a logout address, in the
    /// caller's transaction (so it is sent only if the sessions really ended), and returns the
    /// services the sessions had signed in to, by name, once each.
    pub(crate) async fn tell_services(
        &self,
        tx: &mut Tx,
        ended: EndedSessions,
        now: Timestamp,
    ) -> Result<Vec<ServiceTold>, Error> {
        self.tell_links(tx, &ended.links, now).await
    }

    pub(crate) async fn tell_links(
        &self,
        tx: &mut Tx,
        links: &[EndedLink],
        now: Timestamp,
    ) -> Result<Vec<ServiceTold>, Error> {
        let mut told: Vec<ServiceTold> = Vec::new();
        let mut clients: Vec<OidcClient> = Vec::new();
        for link in links {
            let client = match clients.iter().find(|c| c.id == link.client_id) {
                Some(c) => c.clone(),
                None => {
                    let Some(c) = tx.client(&link.client_id).await.map_err(store_error)? else { continue };
                    clients.push(c.clone());
                    c
                }
            };
            if let Some(uri) = &client.backchannel_logout_uri {
                let body = Pending {
                    client_id: client.id.to_string(),
                    sub: self.subject_of(tx, &client, &link.user_id).await?,
                    sid: link.sid.clone(),
                };
                let message = OutgoingMessage {
                    channel: Channel::Logout,
                    purpose: PURPOSE.to_owned(),
                    recipient: uri.clone(),
                    subject: format!("Sign-out to {}", client.id),
                    body: serde_json::to_string(&body).map_err(Error::internal)?,
                    expires_at: None,
                };
                let id = tx.enqueue(&message, &self.secret_key, now).await.map_err(store_error)?;
                tx.set_logout_message(link, &id).await.map_err(store_error)?;
            }
            let entry = ServiceTold { name: client.name.clone(), told: client.backchannel_logout_uri.is_some() };
            if !told.contains(&entry) {
                told.push(entry);
            }
        }
        Ok(told)
    }

    /// Ends the sessions whose services would otherwise not hear they are over: past their
    /// idle or absolute timeout with nobody coming back to end them, or ended by a path that
    /// raced a sign-in to a service. Run by the lifecycle jobs; safe on several servers at
    /// once (each link ends once). Returns how many sessions were handled.
    pub async fn sign_out_timed_out_sessions(&self, now: Timestamp) -> Result<u64, Error> {
        const BATCH: i64 = 200;
        let idle_since = now.minus(self.policy.idle_timeout);
        let started_before = now.minus(self.policy.absolute_timeout);
        let mut handled = 0;
        loop {
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let due = tx.sessions_to_sign_out(idle_since, started_before, BATCH).await.map_err(store_error)?;
            if due.is_empty() {
                break;
            }
            let mut any = false;
            for (session, had_ended) in &due {
                let ended =
                    tx.end_timed_out_session(session, idle_since, started_before, now).await.map_err(store_error)?;
                if ended.links.is_empty() {
                    continue;
                }
                any = true;
                let user = ended.links[0].user_id.clone();
                let told = self.tell_services(&mut tx, ended, now).await?;
                let mut event = RequestContext::system("lifecycle").event("session.timed_out", "success");
                event.subject_id = Some(user.to_string());
                event.detail = Some(format!(
                    "{}; services told: {}",
                    if *had_ended { "session had ended" } else { "idle or absolute timeout" },
                    names(&told)
                ));
                tx.append_audit(&event, now).await.map_err(store_error)?;
                handled += 1;
            }
            tx.commit().await.map_err(store_error)?;
            if !any || due.len() < usize::try_from(BATCH).unwrap_or(usize::MAX) {
                break;
            }
        }
        Ok(handled)
    }
}

/// An error of our own while making a logout token: logged in full, and a fixed phrase for the
/// operator's page (which must say nothing internal).
fn internal(e: impl std::fmt::Display) -> SendError {
    tracing::error!(error = %e, "could not make a logout token; will retry");
    SendError::Transient("Usher could not make the logout token (see its log); it will try again".into())
}

/// The names of the services told, for the audit trail.
pub(crate) fn names(told: &[ServiceTold]) -> String {
    let told: Vec<&str> = told.iter().filter(|t| t.told).map(|t| t.name.as_str()).collect();
    if told.is_empty() { "none".to_owned() } else { told.join(", ") }
}

/// Sends queued logout tokens: signs each when it goes, and POSTs it to the service's logout
/// address (§2.5). A 200 or 204 is delivered; a 5xx, a 429 or no answer is tried again; any
/// other answer is given up at once (the service refused the token).
#[derive(Debug, Clone)]
pub struct LogoutSender {
    app: App,
    http: reqwest::Client,
}

impl LogoutSender {
    pub fn new(app: App) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            // §2.5: the service answers itself; a redirect is not followed.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::internal)?;
        Ok(Self { app, http })
    }

    async fn token(&self, pending: &Pending) -> Result<String, SendError> {
        let now = self.app.clock.now().await.map_err(internal)?;
        let mut tx = self.app.store.begin_read().await.map_err(internal)?;
        let client_id = ClientId::parse(&pending.client_id)
            .ok_or_else(|| SendError::Permanent("the queued logout names no valid client".into()))?;
        let client = tx
            .client(&client_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| SendError::Permanent("the client is no longer registered".into()))?;
        let claims = json!({
            "iss": self.app.issuer(),
            "sub": pending.sub,
            "aud": client.id.to_string(),
            "iat": now.unix(),
            "exp": now.plus(Span::seconds_(LOGOUT_TOKEN_SECONDS)).unix(),
            // New for every token signed, never reused (§2.4).
            "jti": Token::generate().expose(),
            "sid": pending.sid,
            "events": { LOGOUT_EVENT: {} },
        });
        self.app.sign(&mut tx, client.id_token_alg, LOGOUT_TOKEN_TYPE, &claims).await.map_err(internal)
    }
}

impl Provider for LogoutSender {
    fn name(&self) -> &'static str {
        "backchannel"
    }

    fn send<'a>(&'a self, _id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            if message.channel != Channel::Logout {
                return Err(SendError::Permanent("only logout tokens go to a service's logout address".into()));
            }
            let pending: Pending = serde_json::from_str(&message.body)
                .map_err(|_| SendError::Permanent("the queued logout is unreadable".into()))?;
            let token = self.token(&pending).await?;
            let answer = self
                .http
                .post(&message.recipient)
                .header(reqwest::header::CACHE_CONTROL, "no-store")
                .form(&[("logout_token", token.as_str())])
                .send()
                .await
                .map_err(|e| SendError::Transient(format!("no answer from the service: {}", without_url(&e))))?;
            let status = answer.status();
            if status.is_success() {
                return Ok(());
            }
            let why = format!("the service answered {status}");
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Err(SendError::Transient(why))
            } else {
                Err(SendError::Permanent(why))
            }
        })
    }
}

/// A reqwest error without the address (which may carry a query the operator registered).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "could not connect".into()
    } else {
        "the request failed".into()
    }
}
