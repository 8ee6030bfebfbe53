//! Registering relying parties: the operator (at the pages, the API or the command line) gives
//! a client its name, redirect URIs, authentication, scopes and who may use it; its secret is
//! shown once and only a hash is kept; a secret can be rotated with an overlap, and a client
//! disabled at once.

use usher_domain::duration::Span;
use usher_domain::error::FieldError;
use usher_domain::ids::ClientId;
use usher_domain::oidc::client::{Admission, Lifetimes, own_sector};
use usher_domain::oidc::{AuthMethod, ClientRules, RedirectUri, Scope, Scopes, SigningAlg, SubjectType};
use usher_domain::organisation::OrganisationKind;
use usher_domain::secret::{SecretString, Token};
use usher_domain::{Error, ErrorCode, Timestamp};
pub use usher_store::oidc::OidcClient;
pub use usher_store::oidc::{DeliveryCounts, LogoutDelivery};
use usher_store::{NewAuditEvent, Tx};

use crate::authz::Operator;
use crate::{App, RequestContext, store_error};

/// Who registers or changes a client: a signed-in operator, or the operator at the server's
/// command line.
#[derive(Debug, Clone, Copy)]
pub enum Registrar<'a> {
    Operator(Operator<'a>),
    Console,
}

/// A registration as a form or the API gives it; every field is checked by [`App::register_client`].
#[derive(Debug, Clone, Default)]
pub struct ClientForm {
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the client hears that a session it signed in through has ended.
    pub backchannel_logout_uri: Option<String>,
    /// `client_secret_basic` (the default), `client_secret_post`, `private_key_jwt` or `none`.
    pub auth_method: Option<String>,
    /// The client's public keys (a JWK Set, JSON) for `private_key_jwt`.
    pub jwks: Option<String>,
    /// Space-separated; absent: every scope.
    pub scopes: Option<String>,
    pub organisation_kinds: Vec<String>,
    pub organisation_ids: Vec<String>,
    /// Absent: yes.
    pub second_factor_required: Option<bool>,
    /// `pairwise` (the default) or `public`.
    pub subject_type: Option<String>,
    pub sector: Option<String>,
    /// `ES256` (the default), `RS256` or `PS256`.
    pub id_token_alg: Option<String>,
    pub access_token_seconds: Option<i64>,
    pub id_token_seconds: Option<i64>,
    pub refresh_token_seconds: Option<i64>,
}

/// A client just registered, with its secret: shown this once.
#[derive(Debug)]
pub struct Registered {
    pub client: OidcClient,
    pub secret: Option<SecretString>,
}

/// How long the old secret keeps working after a rotation, unless told otherwise.
pub const SECRET_OVERLAP_DEFAULT: Span = Span::days(7);
pub const SECRET_OVERLAP_MAX: Span = Span::days(90);

/// Signing algorithms Usher signs ID tokens with: ES256 unless a client needs RSA.
pub const SIGNING_ALGS: [SigningAlg; 3] = [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::Ps256];

impl App {
    pub async fn register_client(
        &self,
        by: Registrar<'_>,
        form: &ClientForm,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<Registered, Error> {
        let client = check(form, now)?;
        let secret = client.auth_method.uses_secret().then(Token::generate);
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.insert_client(&client).await.map_err(store_error)?;
        // Its algorithm's keys, if it is the first client to use RS256 or PS256.
        self.ensure_signing_keys(&mut tx, client.id_token_alg, now).await?;
        if let Some(secret) = &secret {
            tx.add_client_secret(&client.id, &secret.hash(), now, now).await.map_err(store_error)?;
        }
        let detail = format!("{} ({}, {})", client.name, client.auth_method.as_str(), client.redirect_uris.join(" "));
        audit(&mut tx, ctx, by, "client.registered", &client.id, detail, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(Registered { client, secret: secret.map(|s| SecretString::new(s.expose())) })
    }

    /// A new secret for a client; the old one keeps working for `overlap` (none: at once).
    pub async fn rotate_client_secret(
        &self,
        by: Registrar<'_>,
        id: &str,
        overlap: Span,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<SecretString, Error> {
        if overlap.seconds() < 0 || overlap.seconds() > SECRET_OVERLAP_MAX.seconds() {
            return Err(Error::field(
                "overlap_seconds",
                format!("The overlap must be between 0 and {} seconds.", SECRET_OVERLAP_MAX.seconds()),
            ));
        }
        let id = ClientId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        let client = tx.client(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        if !client.auth_method.uses_secret() {
            return Err(Error::new(
                ErrorCode::Conflict,
                "This client does not use a secret: it signs its requests with its own key, or is public.",
            ));
        }
        let secret = Token::generate();
        tx.add_client_secret(&id, &secret.hash(), now.plus(overlap), now).await.map_err(store_error)?;
        let detail = format!("old secret works until {}", now.plus(overlap).rfc3339());
        audit(&mut tx, ctx, by, "client.secret_rotated", &id, detail, now).await?;
        tx.commit().await.map_err(store_error)?;
        Ok(SecretString::new(secret.expose()))
    }

    /// Disables a client at once: it gets nothing from any endpoint, and whatever it holds
    /// stops working.
    pub async fn disable_client(
        &self,
        by: Registrar<'_>,
        id: &str,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<OidcClient, Error> {
        let id = ClientId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.client(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        if !tx.disable_client(&id, now).await.map_err(store_error)? {
            return Err(Error::new(ErrorCode::Conflict, "This client is disabled already."));
        }
        // Every session signed in to it is over there: the client hears so, once per session.
        let links = tx.end_links_of_client(&id, now).await.map_err(store_error)?;
        let sessions = links.len();
        self.tell_links(&mut tx, &links, now).await?;
        let detail = if sessions == 0 { String::new() } else { format!("{sessions} sessions signed out of it") };
        audit(&mut tx, ctx, by, "client.disabled", &id, detail, now).await?;
        let client = tx.client(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        tx.commit().await.map_err(store_error)?;
        Ok(client)
    }

    /// Every registered client, by name.
    pub async fn clients(&self, _by: Registrar<'_>) -> Result<Vec<OidcClient>, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.clients().await.map_err(store_error)
    }

    /// How the logout tokens to a client stand, and the newest not delivered (at most `limit`).
    pub async fn logout_deliveries(
        &self,
        _by: Registrar<'_>,
        id: &str,
        limit: i64,
    ) -> Result<(DeliveryCounts, Vec<LogoutDelivery>), Error> {
        let id = ClientId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.client(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)?;
        let counts = tx.logout_delivery_counts(&id).await.map_err(store_error)?;
        let undelivered = tx.undelivered_logouts(&id, limit).await.map_err(store_error)?;
        Ok((counts, undelivered))
    }

    pub async fn client(&self, _by: Registrar<'_>, id: &str) -> Result<OidcClient, Error> {
        let id = ClientId::parse(id).ok_or_else(Error::not_found)?;
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        tx.client(&id).await.map_err(store_error)?.ok_or_else(Error::not_found)
    }
}

async fn audit(
    tx: &mut Tx,
    ctx: &RequestContext,
    by: Registrar<'_>,
    action: &str,
    client: &ClientId,
    detail: String,
    now: Timestamp,
) -> Result<(), Error> {
    let mut event: NewAuditEvent = ctx.event(action, "success");
    if let Registrar::Operator(op) = by {
        event.actor_id = Some(op.user().id.to_string());
    }
    let detail = if detail.is_empty() { format!("client {client}") } else { format!("client {client}: {detail}") };
    event.detail = Some(usher_domain::audit::clean(&detail, 500));
    tx.append_audit(&event, now).await.map(|_| ()).map_err(store_error)
}

fn field(fields: &mut Vec<FieldError>, field: &'static str, message: impl Into<String>) {
    fields.push(FieldError { field, message: message.into() });
}

/// Checks a registration as a whole, naming every field that is wrong.
fn check(form: &ClientForm, now: Timestamp) -> Result<OidcClient, Error> {
    let mut fields = Vec::new();
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        field(&mut fields, "name", "Enter the name people will see, at most 100 characters.");
    }
    let mut redirect_uris = Vec::new();
    for uri in form.redirect_uris.iter().filter(|u| !u.trim().is_empty()) {
        match RedirectUri::parse(uri) {
            Ok(u) if !redirect_uris.contains(&u) => redirect_uris.push(u),
            Ok(_) => {}
            Err(message) => field(&mut fields, "redirect_uris", message),
        }
    }
    if redirect_uris.len() > 20 {
        field(&mut fields, "redirect_uris", "Give at most 20 redirect URIs.");
    }
    let mut logout_uris = Vec::new();
    for uri in form.post_logout_redirect_uris.iter().filter(|u| !u.trim().is_empty()) {
        match RedirectUri::parse(uri) {
            Ok(u) => logout_uris.push(u.as_str().to_owned()),
            Err(message) => field(&mut fields, "post_logout_redirect_uris", message),
        }
    }
    if logout_uris.len() > 20 {
        field(&mut fields, "post_logout_redirect_uris", "Give at most 20 post-logout redirect URIs.");
    }
    let backchannel_logout_uri = match form.backchannel_logout_uri.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
        None => None,
        Some(uri) => match RedirectUri::parse_named(uri, "back-channel logout URI") {
            Ok(u) => Some(u.as_str().to_owned()),
            Err(message) => {
                field(&mut fields, "backchannel_logout_uri", message);
                None
            }
        },
    };
    let auth_method = match form.auth_method.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(AuthMethod::SecretBasic),
        Some(text) => AuthMethod::parse(text).or_else(|| {
            field(
                &mut fields,
                "auth_method",
                "Choose client_secret_basic, client_secret_post, private_key_jwt or none (a public client).",
            );
            None
        }),
    };
    let jwks = form.jwks.as_deref().map(str::trim).filter(|s| !s.is_empty());
    match (auth_method, jwks) {
        (Some(AuthMethod::PrivateKeyJwt), None) => {
            field(&mut fields, "jwks", "A client that signs its requests needs its public keys (a JWK Set).");
        }
        (Some(AuthMethod::PrivateKeyJwt), Some(text)) => {
            if let Err(message) = super::client_auth::check_jwks(text) {
                field(&mut fields, "jwks", message);
            }
        }
        (_, Some(_)) => field(&mut fields, "jwks", "Public keys are only for a client that uses private_key_jwt."),
        (_, None) => {}
    }
    let scopes = match form.scopes.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Scopes::from_list(&Scope::ALL),
        Some(text) => match Scopes::parse(text) {
            Ok(s) if s.contains(Scope::OpenId) => s,
            Ok(_) => {
                field(&mut fields, "scopes", "The scopes must include openid.");
                Scopes::default()
            }
            Err(message) => {
                field(&mut fields, "scopes", format!("The scopes are wrong: {message}."));
                Scopes::default()
            }
        },
    };
    let mut kinds = Vec::new();
    for kind in form.organisation_kinds.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
        match OrganisationKind::parse(kind) {
            Some(k) if !kinds.contains(&k) => kinds.push(k),
            Some(_) => {}
            None => field(
                &mut fields,
                "organisation_kinds",
                "Choose kinds from law_firm, chambers, police, prosecutor, court and other.",
            ),
        }
    }
    let organisation_ids: Vec<String> =
        form.organisation_ids.iter().map(|i| i.trim().to_owned()).filter(|i| !i.is_empty()).collect();
    if organisation_ids.iter().any(|i| usher_domain::ids::OrganisationId::parse(i).is_none()) {
        field(&mut fields, "organisation_ids", "An organisation ID is 32 characters from 0-9 and a-f.");
    }
    let subject_type = match form.subject_type.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(SubjectType::Pairwise),
        Some(text) => SubjectType::parse(text).or_else(|| {
            field(&mut fields, "subject_type", "Choose pairwise or public.");
            None
        }),
    };
    let id_token_alg = match form.id_token_alg.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(SigningAlg::Es256),
        Some(text) => SigningAlg::parse(text).filter(|a| SIGNING_ALGS.contains(a)).or_else(|| {
            field(&mut fields, "id_token_alg", "Choose ES256 (recommended), RS256 or PS256.");
            None
        }),
    };
    let mut lifetime = |what: &str, name: &'static str, given: Option<i64>, default: Span, max: Span| {
        Lifetimes::check(what, given.unwrap_or(default.seconds()), max).map(|s| s.seconds()).unwrap_or_else(|m| {
            field(&mut fields, name, m);
            0
        })
    };
    let access = lifetime(
        "access token",
        "access_token_seconds",
        form.access_token_seconds,
        Lifetimes::ACCESS_DEFAULT,
        Lifetimes::ACCESS_MAX,
    );
    let id = lifetime("ID token", "id_token_seconds", form.id_token_seconds, Lifetimes::ID_DEFAULT, Lifetimes::ID_MAX);
    let refresh = lifetime(
        "refresh token",
        "refresh_token_seconds",
        form.refresh_token_seconds,
        Lifetimes::REFRESH_DEFAULT,
        Lifetimes::REFRESH_MAX,
    );
    let rules = match (auth_method, subject_type) {
        (Some(a), Some(s)) if !redirect_uris.is_empty() => {
            match ClientRules::new(redirect_uris, a, s, form.sector.as_deref()) {
                Ok(r) => Some(r),
                Err(message) => {
                    field(&mut fields, "sector", message);
                    None
                }
            }
        }
        _ => {
            if form.redirect_uris.iter().all(|u| u.trim().is_empty()) {
                field(&mut fields, "redirect_uris", "Give at least one redirect URI.");
            }
            None
        }
    };
    let (Some(rules), Some(id_token_alg), true) = (rules, id_token_alg, fields.is_empty()) else {
        return Err(Error::invalid(fields));
    };
    let client_id = ClientId::generate();
    let sector = rules.sector.unwrap_or_else(|| own_sector(&client_id.to_string()));
    Ok(OidcClient {
        id: client_id,
        name: name.to_owned(),
        auth_method: rules.auth_method,
        jwks: jwks.map(str::to_owned),
        redirect_uris: rules.redirect_uris.iter().map(|u| u.as_str().to_owned()).collect(),
        post_logout_redirect_uris: logout_uris,
        backchannel_logout_uri,
        scopes,
        admission: Admission { kinds, organisation_ids },
        second_factor_required: form.second_factor_required.unwrap_or(true),
        subject_type: rules.subject_type,
        sector,
        id_token_alg,
        access_token_seconds: access,
        id_token_seconds: id,
        refresh_token_seconds: refresh,
        created_at: now,
        updated_at: now,
        disabled_at: None,
    })
}
