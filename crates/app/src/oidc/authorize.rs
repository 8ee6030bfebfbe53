//! The authorization endpoint's rules (OpenID Connect Core §3.1.2): a request is checked in
//! the order that keeps redirects safe (the client and its exact redirect URI first: until
//! both are known good nothing is sent back), kept while the person signs in, then judged
//! against the person's session: sign in again (`prompt=login`, `max_age`, a factor the
//! client needs), not admitted (their organisation may not use the client), or ready for the
//! person to continue or cancel. Continuing issues a code: 256 random bits, only its hash
//! stored, single use, 60 seconds, bound to the client, redirect URI and PKCE challenge.

use serde::{Deserialize, Serialize};
use usher_domain::account::AccountStatus;
use usher_domain::duration::Span;
use usher_domain::ids::{AuthRequestId, ClientId};
use usher_domain::oidc::acr::{self, Acr};
use usher_domain::oidc::{OAuthError, OAuthErrorCode, Scope, Scopes, pkce};
use usher_domain::secret::Token;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::oidc::{AuthRequest, OidcClient, StoredAuthCode};
use usher_store::{Organisation, Tx};

use crate::sessions::Authenticated;
use crate::{App, RequestContext, store_error};

/// How long an authorization code lives.
pub const CODE_LIFETIME: Span = Span::seconds_(60);
/// How long a request waits for the person to sign in (and set up a factor, if they must).
pub const REQUEST_LIFETIME: Span = Span::hours(1);

/// An authorization request's parameters as sent (query string or form).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub ui_locales: Option<String>,
    pub claims: Option<String>,
    pub response_mode: Option<String>,
    pub request: Option<String>,
    pub request_uri: Option<String>,
}

/// A request that passed its checks, as kept while the person signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckedRequest {
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub max_age: Option<i64>,
    /// `prompt=login`: a sign-in after the request was made.
    pub login: bool,
    /// The lowest `acr` asked for, and whether it was essential.
    pub acr: Option<String>,
    pub acr_essential: bool,
    pub login_hint: Option<String>,
}

/// Why a request cannot go on.
#[derive(Debug)]
pub enum Refused {
    /// The client or redirect URI is not good: show a page, never redirect (S39).
    Page(Error),
    /// Back to the client with an error (RFC 6749 §4.1.2.1).
    Redirect(String),
}

/// What the authorization endpoint does with a good request.
#[derive(Debug)]
pub enum Started {
    /// The request waits at `/authorize/{id}` for the person.
    Waiting(AuthRequestId),
    /// Answered at once (`prompt=none`): go to this address at the client.
    Answered(String),
}

/// Where a waiting request stands for the person now looking at it.
#[derive(Debug)]
pub enum Judgement {
    /// They must sign in (again): `prompt=login`, `max_age`, or a factor the client needs.
    SignIn,
    /// Their organisation may not use the client.
    NotAdmitted,
    /// The client needs a second factor and the person has none set up: signing in again
    /// cannot help until they add one.
    NeedsFactor,
    /// They may continue (or cancel).
    Ready,
}

/// A waiting request with its client, for the page.
#[derive(Debug)]
pub struct Pending {
    pub request: AuthRequest,
    pub checked: CheckedRequest,
    pub client: OidcClient,
}

/// The address at the client that carries `params` (after `?` or `&`), with the issuer
/// (RFC 9207).
fn back_to(redirect_uri: &str, params: &[(&str, &str)], issuer: &str) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        query.append_pair(k, v);
    }
    query.append_pair("iss", issuer);
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{sep}{}", query.finish())
}

fn error_back(redirect_uri: &str, state: Option<&str>, error: &OAuthError, issuer: &str) -> String {
    let mut params = vec![("error", error.code.as_str()), ("error_description", error.description.as_str())];
    if let Some(state) = state {
        params.push(("state", state));
    }
    back_to(redirect_uri, &params, issuer)
}

fn bad_client_page(message: &str) -> Refused {
    Refused::Page(Error::new(ErrorCode::InvalidInput, message.to_owned()))
}

/// A parameter that must be short and printable.
/// The longest `state` a client may send (it comes back on the redirect).
const STATE_MAX: usize = 2000;

fn bounded(value: Option<&str>, name: &str, max: usize) -> Result<Option<String>, OAuthError> {
    match value {
        None | Some("") => Ok(None),
        Some(v) if v.len() <= max && !v.chars().any(char::is_control) => Ok(Some(v.to_owned())),
        Some(_) => Err(OAuthError::invalid_request(format!("{name} must be at most {max} printable characters."))),
    }
}

/// The `acr` an essential `claims` request asks for (`{"id_token":{"acr":{"essential":true,...}}}`).
fn essential_acr(claims: &str) -> Result<Option<Acr>, OAuthError> {
    let value: serde_json::Value =
        serde_json::from_str(claims).map_err(|_| OAuthError::invalid_request("claims is not JSON."))?;
    let Some(acr) = value.get("id_token").and_then(|t| t.get("acr")) else { return Ok(None) };
    if acr.get("essential").and_then(serde_json::Value::as_bool) != Some(true) {
        return Ok(None);
    }
    let mut wanted: Vec<&str> = acr
        .get("values")
        .and_then(|v| v.as_array())
        .map_or_else(Vec::new, |list| list.iter().filter_map(serde_json::Value::as_str).collect());
    if let Some(one) = acr.get("value").and_then(serde_json::Value::as_str) {
        wanted.push(one);
    }
    let known: Vec<Acr> = wanted.iter().filter_map(|w| Acr::parse(w)).collect();
    if known.is_empty() && !wanted.is_empty() {
        return Err(OAuthError::new(
            OAuthErrorCode::UnmetAuthenticationRequirements,
            "None of the essential acr values is one Usher offers.",
        ));
    }
    Ok(known.into_iter().min())
}

/// Checks everything after the client and redirect URI (they are good by then).
fn check_rest(p: &AuthorizeParams, client: &OidcClient) -> Result<(CheckedRequest, bool), OAuthError> {
    if p.request.is_some() {
        return Err(OAuthError::new(OAuthErrorCode::InvalidRequest, "request objects are not supported."));
    }
    if p.request_uri.is_some() {
        return Err(OAuthError::new(OAuthErrorCode::InvalidRequest, "request_uri is not supported."));
    }
    if p.response_type.as_deref() != Some("code") {
        return Err(OAuthError::new(
            OAuthErrorCode::UnsupportedResponseType,
            "Only the authorization code flow is offered: response_type=code.",
        ));
    }
    if p.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(OAuthError::invalid_request("Only response_mode=query is offered."));
    }
    let scopes = Scopes::parse(p.scope.as_deref().unwrap_or(""))
        .map_err(|m| OAuthError::new(OAuthErrorCode::InvalidScope, format!("The scope is wrong: {m}.")))?;
    if !scopes.contains(Scope::OpenId) {
        return Err(OAuthError::new(OAuthErrorCode::InvalidScope, "The scope must include openid."));
    }
    if !scopes.within(&client.scopes) {
        return Err(OAuthError::new(
            OAuthErrorCode::InvalidScope,
            format!("This client may ask only for: {}.", client.scopes),
        ));
    }
    let challenge = p.code_challenge.as_deref().unwrap_or("");
    if challenge.is_empty() {
        return Err(OAuthError::invalid_request(
            "PKCE is required: send code_challenge with code_challenge_method=S256.",
        ));
    }
    if p.code_challenge_method.as_deref() != Some(pkce::METHOD) {
        return Err(OAuthError::invalid_request("code_challenge_method must be S256 (plain is not accepted)."));
    }
    if !pkce::is_valid_challenge(challenge) {
        return Err(OAuthError::invalid_request("code_challenge must be the base64url SHA-256 of the verifier."));
    }
    let prompts: Vec<&str> = p.prompt.as_deref().unwrap_or("").split(' ').filter(|w| !w.is_empty()).collect();
    if let Some(unknown) = prompts.iter().find(|w| !matches!(**w, "none" | "login" | "consent" | "select_account")) {
        let shown: String = unknown.chars().take(20).collect();
        return Err(OAuthError::invalid_request(format!("prompt \"{shown}\" is not one Usher knows.")));
    }
    let none = prompts.contains(&"none");
    if none && prompts.len() > 1 {
        return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values."));
    }
    let max_age = match p.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(text) => Some(
            text.parse::<i64>()
                .ok()
                .filter(|n| (0..=i64::from(u32::MAX)).contains(n))
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a whole number of seconds."))?,
        ),
    };
    let essential = match p.claims.as_deref().filter(|c| !c.is_empty()) {
        Some(claims) => essential_acr(claims)?,
        None => None,
    };
    let voluntary = p.acr_values.as_deref().and_then(acr::lowest_requested);
    let checked = CheckedRequest {
        redirect_uri: p.redirect_uri.clone().unwrap_or_default(),
        scope: scopes.to_string(),
        state: bounded(p.state.as_deref(), "state", STATE_MAX)?,
        nonce: bounded(p.nonce.as_deref(), "nonce", 500)?,
        code_challenge: challenge.to_owned(),
        max_age,
        login: prompts.contains(&"login"),
        acr: essential.or(voluntary).map(|a| a.as_str().to_owned()),
        acr_essential: essential.is_some(),
        login_hint: bounded(p.login_hint.as_deref(), "login_hint", 254)?,
    };
    Ok((checked, none))
}

impl App {
    /// Checks an authorization request and keeps it for the person, or answers at once for
    /// `prompt=none` with the session in `who`.
    pub async fn start_authorization(
        &self,
        p: &AuthorizeParams,
        who: Option<&Authenticated>,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Started, Refused> {
        let internal = |e: Error| Refused::Page(e);
        let Some(client_id) = p.client_id.as_deref().and_then(ClientId::parse) else {
            return Err(bad_client_page(
                "The service that sent you here is not known to us (its client_id is missing or wrong). \
                 Go back to that service and tell its helpdesk.",
            ));
        };
        let mut tx = self.store.begin_read().await.map_err(|e| internal(store_error(e)))?;
        let client = tx.client(&client_id).await.map_err(|e| internal(store_error(e)))?;
        drop(tx);
        let Some(client) = client.filter(|c| c.disabled_at.is_none()) else {
            return Err(bad_client_page(
                "The service that sent you here is not known to us, or may no longer use Usher. \
                 Go back to that service and tell its helpdesk.",
            ));
        };
        let Some(redirect_uri) = p.redirect_uri.as_deref().filter(|u| client.redirect_uris.iter().any(|r| r == u))
        else {
            return Err(bad_client_page(&format!(
                "{} sent you here with a return address we do not know, so we have not sent you back. \
                 Tell {}'s helpdesk that its redirect URI is not registered.",
                client.name, client.name
            )));
        };
        let issuer = self.issuer();
        // A state too long to keep is not echoed on the error either.
        let state = p.state.as_deref().filter(|s| s.len() <= STATE_MAX && !s.chars().any(char::is_control));
        let (checked, none) =
            check_rest(p, &client).map_err(|e| Refused::Redirect(error_back(redirect_uri, state, &e, &issuer)))?;
        let request = AuthRequest {
            id: AuthRequestId::generate(),
            client_id: client.id.clone(),
            request: serde_json::to_string(&checked).map_err(|e| internal(Error::internal(e)))?,
            created_at: now,
            expires_at: now.plus(REQUEST_LIFETIME),
            done_at: None,
        };
        if none {
            let pending = Pending { request, checked, client };
            return self.answer_silently(&pending, who, ctx, now).await;
        }
        let mut tx = self.store.begin().await.map_err(|e| internal(store_error(e)))?;
        tx.insert_auth_request(&request).await.map_err(|e| internal(store_error(e)))?;
        tx.commit().await.map_err(|e| internal(store_error(e)))?;
        Ok(Started::Waiting(request.id))
    }

    /// `prompt=none`: a code now if the session needs nothing more, else the reason.
    async fn answer_silently(
        &self,
        pending: &Pending,
        who: Option<&Authenticated>,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Started, Refused> {
        let issuer = self.issuer();
        let back = |code: OAuthErrorCode, why: &str| {
            let e = OAuthError::new(code, why);
            Refused::Redirect(error_back(&pending.checked.redirect_uri, pending.checked.state.as_deref(), &e, &issuer))
        };
        let Some(who) = who.filter(|w| w.is_full() && !w.password_expired) else {
            return Err(back(OAuthErrorCode::LoginRequired, "The person is not signed in to Usher."));
        };
        match self.judge(pending, who, now).await.map_err(Refused::Page)? {
            Judgement::SignIn => Err(back(OAuthErrorCode::LoginRequired, "The person must sign in again.")),
            Judgement::NeedsFactor => {
                Err(back(OAuthErrorCode::InteractionRequired, "The person must set up a second factor first."))
            }
            Judgement::NotAdmitted => {
                Err(back(OAuthErrorCode::AccessDenied, "The person's organisation may not use this service."))
            }
            Judgement::Ready => {
                let mut tx = self.store.begin().await.map_err(|e| Refused::Page(store_error(e)))?;
                // Silently only to a service the person has seen and continued to before.
                let known = tx.has_continued_to(&who.user.id, &pending.client.id).await;
                if !known.map_err(|e| Refused::Page(store_error(e)))? {
                    return Err(back(
                        OAuthErrorCode::ConsentRequired,
                        "The person has not continued to this service before: ask without prompt=none.",
                    ));
                }
                let url =
                    self.issue_authorization_code(&mut tx, pending, who, ctx, now).await.map_err(Refused::Page)?;
                tx.commit().await.map_err(|e| Refused::Page(store_error(e)))?;
                Ok(Started::Answered(url))
            }
        }
    }

    /// A waiting request, with its client, for the person at `/authorize/{id}`.
    pub async fn pending_authorization(&self, id: &str, now: Timestamp) -> Result<Pending, Error> {
        let gone = || {
            Error::new(
                ErrorCode::NotFound,
                "This sign-in request has expired or was used already. Go back to the service you were signing in to \
                 and start again.",
            )
        };
        let id = AuthRequestId::parse(id).ok_or_else(gone)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let request = tx.auth_request(&id).await.map_err(store_error)?.ok_or_else(gone)?;
        if request.done_at.is_some() || now >= request.expires_at {
            return Err(gone());
        }
        let client = tx
            .client(&request.client_id)
            .await
            .map_err(store_error)?
            .filter(|c| c.disabled_at.is_none())
            .ok_or_else(gone)?;
        let checked: CheckedRequest = serde_json::from_str(&request.request).map_err(Error::internal)?;
        Ok(Pending { request, checked, client })
    }

    /// The organisation of a person, for the page and the claims.
    pub async fn organisation_of(&self, who: &Authenticated) -> Result<Option<Organisation>, Error> {
        let Some(id) = &who.user.organisation_id else { return Ok(None) };
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.organisation(id).await.map_err(store_error)
    }

    /// Where `pending` stands for the signed-in person `who`.
    pub async fn judge(&self, pending: &Pending, who: &Authenticated, now: Timestamp) -> Result<Judgement, Error> {
        let evidence = who.evidence();
        let Some(auth_time) = evidence.auth_time() else { return Ok(Judgement::SignIn) };
        let fresh = auth_time >= pending.request.created_at;
        if pending.checked.login && !fresh {
            return Ok(Judgement::SignIn);
        }
        // A sign-in made after the request was made is as fresh as the request can ask.
        if let Some(max_age) = pending.checked.max_age
            && !fresh
            && !evidence.authenticated_within(Span::seconds_(max_age), now)
        {
            return Ok(Judgement::SignIn);
        }
        let wanted = pending.checked.acr.as_deref().and_then(Acr::parse);
        let needs_mfa = pending.client.second_factor_required || wanted.is_some_and(|w| w > Acr::Password);
        if needs_mfa && !Acr::of(evidence).meets(Acr::MultiFactor) {
            if pending.client.second_factor_required {
                let mut tx = self.store.begin_read().await.map_err(store_error)?;
                if self.usable_factors(&mut tx, &who.user).await?.is_empty() {
                    return Ok(Judgement::NeedsFactor);
                }
            }
            if !fresh {
                return Ok(Judgement::SignIn);
            }
        }
        let admitted = pending.client.admission.is_open() || {
            let organisation = self.organisation_of(who).await?;
            pending.client.admission.admits(organisation.as_ref().map(|o| (o.id.as_str(), o.kind)))
        };
        Ok(if admitted { Judgement::Ready } else { Judgement::NotAdmitted })
    }

    /// The person continues to the client: the request ends (once, on any node) and a code
    /// goes back. Returns the client's address to go to.
    pub async fn continue_authorization(
        &self,
        id: &str,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<String, Error> {
        let pending = self.pending_authorization(id, now).await?;
        let url = match self.judge(&pending, who, now).await? {
            Judgement::Ready => None,
            Judgement::SignIn => return Err(Error::new(ErrorCode::Conflict, "Sign in again first.")),
            Judgement::NeedsFactor => Some(self.refusal_url(
                &pending,
                OAuthErrorCode::AccessDenied,
                "This service needs a second factor, and the person has none set up.",
            )),
            Judgement::NotAdmitted => Some(self.refusal_url(
                &pending,
                OAuthErrorCode::AccessDenied,
                "The person's organisation may not use this service.",
            )),
        };
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if !tx.finish_auth_request(&pending.request.id, now).await.map_err(store_error)? {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This sign-in request was used already. Start again at the service.",
            ));
        }
        let url = match url {
            Some(url) => url,
            None => self.issue_authorization_code(&mut tx, &pending, who, ctx, now).await?,
        };
        tx.commit().await.map_err(store_error)?;
        Ok(url)
    }

    /// The person cancels (or is not admitted): the client hears `access_denied`.
    pub async fn cancel_authorization(
        &self,
        id: &str,
        who: Option<&Authenticated>,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<String, Error> {
        let pending = self.pending_authorization(id, now).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        if !tx.finish_auth_request(&pending.request.id, now).await.map_err(store_error)? {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This sign-in request was used already. Start again at the service.",
            ));
        }
        let mut event = ctx.event("oidc.authorization", "cancelled");
        if let Some(who) = who {
            event = who_event(event, who);
        }
        event.detail = Some(client_detail(&pending.client));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(self.refusal_url(&pending, OAuthErrorCode::AccessDenied, "The person did not continue to this service."))
    }

    fn refusal_url(&self, pending: &Pending, code: OAuthErrorCode, why: &str) -> String {
        error_back(
            &pending.checked.redirect_uri,
            pending.checked.state.as_deref(),
            &OAuthError::new(code, why),
            &self.issuer(),
        )
    }

    async fn issue_authorization_code(
        &self,
        tx: &mut Tx,
        pending: &Pending,
        who: &Authenticated,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<String, Error> {
        if who.user.status != AccountStatus::Active {
            return Err(Error::new(ErrorCode::Forbidden, "This account cannot be used now."));
        }
        let evidence = who.evidence();
        let acr = Acr::of(evidence);
        if pending.checked.acr_essential {
            let wanted = pending.checked.acr.as_deref().and_then(Acr::parse).unwrap_or(Acr::Password);
            if !acr.meets(wanted) {
                return Ok(self.refusal_url(
                    pending,
                    OAuthErrorCode::UnmetAuthenticationRequirements,
                    "The person could not sign in as strongly as this service requires.",
                ));
            }
        }
        if pending.client.second_factor_required && !acr.meets(Acr::MultiFactor) {
            return Ok(self.refusal_url(
                pending,
                OAuthErrorCode::AccessDenied,
                "This service needs a second factor, and the person has none set up.",
            ));
        }
        // The session signs in to this service: when it ends, the service is told, with this
        // `sid` (random per session and service, so services cannot link sessions by it).
        let new_sid = Token::generate();
        let Some(sid) = tx
            .record_session_service(&who.session.id, &pending.client.id, &who.user.id, new_sid.expose(), now)
            .await
            .map_err(store_error)?
        else {
            return Err(Error::new(ErrorCode::Conflict, "This sign-in has ended. Sign in again."));
        };
        let code = Token::generate();
        let stored = StoredAuthCode {
            code_hash: code.hash(),
            client_id: pending.client.id.clone(),
            user_id: who.user.id.clone(),
            session_id: who.session.id.clone(),
            sid,
            redirect_uri: pending.checked.redirect_uri.clone(),
            code_challenge: pending.checked.code_challenge.clone(),
            scope: pending.checked.scope.clone(),
            nonce: pending.checked.nonce.clone(),
            auth_time: evidence.auth_time().unwrap_or(now),
            evidence: evidence.stored(),
            acr: acr.as_str().to_owned(),
            created_at: now,
            expires_at: now.plus(CODE_LIFETIME),
            used_at: None,
        };
        tx.insert_auth_code(&stored).await.map_err(store_error)?;
        tx.record_activity(&who.user.id, now).await.map_err(store_error)?;
        let mut event = who_event(ctx.event("oidc.authorization", "success"), who);
        event.detail = Some(format!("{}; {}", client_detail(&pending.client), stored.scope));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        let mut params = vec![("code", code.expose())];
        if let Some(state) = pending.checked.state.as_deref() {
            params.push(("state", state));
        }
        Ok(back_to(&pending.checked.redirect_uri, &params, &self.issuer()))
    }
}

pub(crate) fn who_event(mut event: usher_store::NewAuditEvent, who: &Authenticated) -> usher_store::NewAuditEvent {
    event.actor_id = Some(who.user.id.to_string());
    event.subject_id = Some(who.user.id.to_string());
    event.organisation_id = who.user.organisation_id.as_ref().map(ToString::to_string);
    event
}

pub(crate) fn client_detail(client: &OidcClient) -> String {
    usher_domain::audit::clean(&format!("client {} ({})", client.id, client.name), 200)
}
