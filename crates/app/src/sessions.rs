//! Sessions of our own: a 256-bit token in the cookie, only its hash stored, idle and absolute
//! timeouts checked on the server against `now`.

use usher_domain::account::{AccountStatus, SessionStage};
use usher_domain::evidence::{AuthMethod, Evidence};
use usher_domain::ids::SessionId;
use usher_domain::secret::Token;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::oidc::SessionService;
use usher_store::{SessionRecord, Tx, User};

use crate::oidc::logout::ServiceTold;

use crate::{App, RequestContext, store_error};

/// A person behind a session cookie, as the web layer sees them. Only a session at
/// [`SessionStage::Full`] is signed in; the web layer keeps the others to the second-factor and
/// set-up pages.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: SessionRecord,
    pub user: User,
    /// The password is past its age: it must be changed before anything else.
    pub password_expired: bool,
}

impl Authenticated {
    pub fn is_full(&self) -> bool {
        self.session.stage == SessionStage::Full
    }

    /// What this session has proven and when (for `amr`, `acr`, `auth_time` and `max_age`).
    pub fn evidence(&self) -> &Evidence {
        &self.session.evidence
    }
}

/// The answer to a request for a step of signing in that this session is not at.
pub(crate) fn wrong_stage() -> Error {
    Error::new(ErrorCode::Forbidden, "This page is not part of where you are in signing in. Go back to the start.")
}

/// Touch `last_seen_at` at most this often, so reads do not all become writes.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// Starts a session once the password is proven, inside the caller's transaction; returns the
/// token for the cookie. A session that is full at once is a full authentication.
pub(crate) async fn start_session(
    tx: &mut Tx,
    user: &User,
    stage: SessionStage,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<Token, Error> {
    let mut evidence = Evidence::default().proven(AuthMethod::Password, now);
    if stage == SessionStage::Full {
        evidence = evidence.completed(now);
    }
    let times = Times { created_at: now, reauthenticated_at: None };
    Ok(insert_session(tx, user, stage, times, evidence, ctx, now).await?.0)
}

/// When a session began (its absolute timeout counts from this) and last had its password
/// entered again.
struct Times {
    created_at: Timestamp,
    reauthenticated_at: Option<Timestamp>,
}

async fn insert_session(
    tx: &mut Tx,
    user: &User,
    stage: SessionStage,
    Times { created_at, reauthenticated_at }: Times,
    evidence: Evidence,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<(Token, SessionId), Error> {
    let token = Token::generate();
    let id = SessionId::generate();
    let record = SessionRecord {
        id: id.clone(),
        user_id: user.id.clone(),
        created_at,
        last_seen_at: now,
        ip: ctx.ip.clone(),
        user_agent: ctx.user_agent.as_deref().map(|s| usher_domain::audit::clean(s, 256)),
        stage,
        reauthenticated_at,
        evidence,
    };
    tx.insert_session(&token.hash(), &record).await.map_err(store_error)?;
    Ok((token, id))
}

/// Moves a session on (second factor proven, factors recovered, password re-entered): the old
/// session ends, exactly once on any node, and a new one with a new token takes its place
/// (S21), with the old one's evidence and what this step proved (`evidence`, which the caller
/// builds from `old.evidence()`). Conflict when another request moved it first.
pub(crate) async fn replace_session(
    tx: &mut Tx,
    old: &Authenticated,
    stage: SessionStage,
    evidence: Evidence,
    reauthenticated: bool,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<Token, Error> {
    if !tx.end_session_once(&old.session.id, now).await.map_err(store_error)? {
        return Err(Error::new(ErrorCode::Conflict, "This sign-in has already moved on. Sign in again."));
    }
    // A full session keeps its start, so the absolute timeout still counts from the sign-in.
    let created_at = if old.is_full() { old.session.created_at } else { now };
    let reauthenticated_at = if reauthenticated { Some(now) } else { old.session.reauthenticated_at };
    let (token, id) =
        insert_session(tx, &old.user, stage, Times { created_at, reauthenticated_at }, evidence, ctx, now).await?;
    // The same sign-in goes on: the services it signed in to stay signed in, with their `sid`.
    tx.move_session_services(&old.session.id, &id).await.map_err(store_error)?;
    Ok(token)
}

/// A new full session for the person of `old` once all their sessions have ended (as after a
/// password change, which proved the current password), keeping `old`'s start (the absolute
/// timeout still counts from the sign-in) and its evidence.
pub(crate) async fn successor_session(
    tx: &mut Tx,
    old: &Authenticated,
    ctx: &RequestContext,
    now: Timestamp,
) -> Result<Token, Error> {
    let created_at = if old.is_full() { old.session.created_at } else { now };
    let times = Times { created_at, reauthenticated_at: old.session.reauthenticated_at };
    let evidence = old.evidence().clone().proven(AuthMethod::Password, now);
    Ok(insert_session(tx, &old.user, SessionStage::Full, times, evidence, ctx, now).await?.0)
}

impl App {
    /// The person behind a session cookie, or `None` when the cookie is unknown, ended, past a
    /// timeout, or the account can no longer be used.
    pub async fn authenticate(&self, cookie: &str, now: Timestamp) -> Result<Option<Authenticated>, Error> {
        let Some(token) = Token::parse(cookie) else {
            return Ok(None);
        };
        // Every request passes here: one read (a join, no transaction, no write lock), and a
        // write (both are idempotent) only when a session must end or its last-seen time is stale.
        let Some((session, user)) = self.store.live_session_with_user(&token.hash()).await.map_err(store_error)? else {
            return Ok(None);
        };
        let idle = now.seconds_since(session.last_seen_at) > self.policy.idle_timeout.seconds();
        let lifetime = if session.stage == SessionStage::Full {
            self.policy.absolute_timeout.seconds()
        } else {
            self.policy.pending_session_lifetime.seconds()
        };
        let too_old = now.seconds_since(session.created_at) > lifetime;
        let usable = user.as_ref().is_some_and(|u| u.status == AccountStatus::Active);
        if idle || too_old || !usable {
            let because = if usable { "session timed out" } else { "account cannot be used" };
            let mut tx = self.store.begin().await.map_err(store_error)?;
            let ended = tx.end_session(&session.id, because, now).await.map_err(store_error)?;
            self.tell_services(&mut tx, ended, now).await?;
            tx.commit().await.map_err(store_error)?;
            return Ok(None);
        }
        if now.seconds_since(session.last_seen_at) >= TOUCH_EVERY_SECONDS {
            let mut tx = self.store.begin().await.map_err(store_error)?;
            tx.touch_session(&session.id, now).await.map_err(store_error)?;
            tx.commit().await.map_err(store_error)?;
        }
        Ok(user.map(|user| {
            let password_expired = self.password_expires_at(&user).is_some_and(|at| now >= at);
            Authenticated { session, user, password_expired }
        }))
    }

    /// Signs out of this session, and of every service it signed in to that hears of it;
    /// returns the services the session had signed in to.
    pub async fn sign_out(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Vec<ServiceTold>, Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let ended = tx.end_session(&who.session.id, "signed out", now).await.map_err(store_error)?;
        let told = self.tell_services(&mut tx, ended, now).await?;
        let mut event = ctx.event("sign_out", "success");
        event.actor_id = Some(who.user.id.to_string());
        event.subject_id = Some(who.user.id.to_string());
        event.organisation_id = who.user.organisation_id.as_ref().map(ToString::to_string);
        event.detail = told_detail(&told);
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(told)
    }
}

impl App {
    /// The signed-in person's live sessions, newest first.
    pub async fn sessions(&self, who: &Authenticated) -> Result<Vec<SessionRecord>, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.sessions_of(&who.user.id).await.map_err(store_error)
    }

    /// Ends one of the signed-in person's sessions (another device, or this one); returns the
    /// services it had signed in to.
    pub async fn end_session(
        &self,
        who: &Authenticated,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Vec<ServiceTold>, Error> {
        let id = SessionId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let ended = tx.end_session_of(&who.user.id, &id, now).await.map_err(store_error)?;
        if ended.sessions == 0 {
            return Err(Error::not_found());
        }
        let told = self.tell_services(&mut tx, ended, now).await?;
        let mut event = ctx.event("session.ended", "success");
        event.actor_id = Some(who.user.id.to_string());
        event.subject_id = Some(who.user.id.to_string());
        event.detail = told_detail(&told);
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(told)
    }

    /// Ends every session of the signed-in person except the one in use.
    pub async fn end_other_sessions(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<(u64, Vec<ServiceTold>), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let ended = tx.end_other_sessions(&who.user.id, &who.session.id, now).await.map_err(store_error)?;
        let count = ended.sessions;
        let told = self.tell_services(&mut tx, ended, now).await?;
        let mut event = ctx.event("session.ended_others", "success");
        event.actor_id = Some(who.user.id.to_string());
        event.subject_id = Some(who.user.id.to_string());
        event.detail = Some(match told_detail(&told) {
            Some(services) => format!("{count} ended; {services}"),
            None => format!("{count} ended"),
        });
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok((count, told))
    }

    /// The services each of the signed-in person's live sessions signed in to.
    pub async fn services_of_sessions(&self, who: &Authenticated) -> Result<Vec<SessionService>, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.services_of_sessions(&who.user.id).await.map_err(store_error)
    }
}

/// The services told, for an audit event's detail (none when there were none).
fn told_detail(told: &[ServiceTold]) -> Option<String> {
    told.iter().any(|t| t.told).then(|| format!("services told: {}", crate::oidc::logout::names(told)))
}
