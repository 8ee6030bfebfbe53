//! The JSON API for the services that sign people in with Usher (OpenID Connect clients): the
//! same use cases as the operator's pages. A secret is in the answer that makes it, and never
//! again.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use usher_app::oidc::clients::{ClientForm, OidcClient, Registrar, SECRET_OVERLAP_DEFAULT};
use usher_domain::duration::Span;
use usher_domain::oidc::Scope;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, Problem};
use crate::extract::{ApiJson, ApiPath};
use crate::frame::Frame;
use crate::groups;

/// A registered service. Never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientOut {
    pub client_id: String,
    /// The name people see when they sign in to it.
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Where it hears, by a logout token, that a session it signed in through has ended.
    pub backchannel_logout_uri: Option<String>,
    /// client_secret_basic, client_secret_post, private_key_jwt or none (public, PKCE only).
    pub token_endpoint_auth_method: String,
    /// The scopes it may ask for.
    pub scopes: Vec<String>,
    /// The kinds of organisation whose people may use it; with `organisation_ids` both empty:
    /// every organisation.
    pub organisation_kinds: Vec<String>,
    pub organisation_ids: Vec<String>,
    pub second_factor_required: bool,
    /// pairwise (an identifier of its own for each person) or public (the account ID).
    pub subject_type: String,
    pub id_token_signed_response_alg: String,
    pub access_token_seconds: i64,
    pub id_token_seconds: i64,
    pub refresh_token_seconds: i64,
    pub created_at: String,
    /// When it was disabled; absent while it is in use.
    pub disabled_at: Option<String>,
}

impl From<&OidcClient> for ClientOut {
    fn from(c: &OidcClient) -> Self {
        Self {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            token_endpoint_auth_method: c.auth_method.as_str().to_owned(),
            scopes: c.scopes.iter().map(Scope::as_str).map(str::to_owned).collect(),
            organisation_kinds: c.admission.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
            organisation_ids: c.admission.organisation_ids.clone(),
            second_factor_required: c.second_factor_required,
            subject_type: c.subject_type.as_str().to_owned(),
            id_token_signed_response_alg: c.id_token_alg.as_str().to_owned(),
            access_token_seconds: c.access_token_seconds,
            id_token_seconds: c.id_token_seconds,
            refresh_token_seconds: c.refresh_token_seconds,
            created_at: c.created_at.rfc3339(),
            disabled_at: c.disabled_at.map(usher_domain::Timestamp::rfc3339),
        }
    }
}

/// A service to register. Only `name` and `redirect_uris` are required.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientIn {
    pub name: String,
    /// Exact addresses: https, or http on localhost or a loopback address.
    pub redirect_uris: Vec<String>,
    /// Where people's browsers may be sent after signing out at Usher (exact addresses).
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// Where the service hears, by a logout token, that a session it signed in through has
    /// ended (OpenID Connect Back-Channel Logout 1.0); absent: it is not told.
    #[serde(default)]
    pub backchannel_logout_uri: Option<String>,
    /// client_secret_basic (the default), client_secret_post, private_key_jwt or none.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<String>,
    /// The client's public keys, a JWK Set, for private_key_jwt.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub jwks: Option<serde_json::Value>,
    /// The scopes it may ask for; absent: every scope (openid profile email phone organisation).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    #[serde(default)]
    pub organisation_kinds: Vec<String>,
    #[serde(default)]
    pub organisation_ids: Vec<String>,
    /// Absent: true.
    #[serde(default)]
    pub second_factor_required: Option<bool>,
    /// pairwise (the default) or public.
    #[serde(default)]
    pub subject_type: Option<String>,
    /// A host name shared by services that should see the same pairwise identifiers.
    #[serde(default)]
    pub sector: Option<String>,
    /// ES256 (the default).
    #[serde(default)]
    pub id_token_signed_response_alg: Option<String>,
    #[serde(default)]
    pub access_token_seconds: Option<i64>,
    #[serde(default)]
    pub id_token_seconds: Option<i64>,
    #[serde(default)]
    pub refresh_token_seconds: Option<i64>,
}

/// A service just registered: its secret, if it has one, is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisteredOut {
    pub client: ClientOut,
    pub client_secret: Option<String>,
    /// The issuer to point the service's OpenID Connect library at.
    pub issuer: String,
}

/// A new secret: how long the old one keeps working.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    /// Seconds, from 0 (the old secret stops at once) to 90 days; absent: 7 days.
    #[serde(default)]
    pub overlap_seconds: Option<i64>,
}

/// The new secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretOut {
    pub client_secret: String,
    /// Until when the old secret works.
    pub old_secret_works_until: String,
}

const OPERATOR_ONLY: &str = "`forbidden`: only the operator may do this.";

#[utoipa::path(get, path = "/api/v1/clients", tag = "clients",
    responses((status = 200, body = [ClientOut]), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = OPERATOR_ONLY, body = Problem)))]
pub async fn clients(
    State(state): State<AppState>,
    groups::Operator(ref who): groups::Operator,
) -> Result<Json<Vec<ClientOut>>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    Ok(Json(state.app.clients(Registrar::Operator(operator)).await?.iter().map(ClientOut::from).collect()))
}

#[utoipa::path(post, path = "/api/v1/clients", tag = "clients", request_body = ClientIn,
    responses((status = 201, body = RegisteredOut), (status = 400, description = "`invalid_input`, with a message for each field", body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = OPERATOR_ONLY, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiJson(b): ApiJson<ClientIn>,
) -> Result<(StatusCode, Json<RegisteredOut>), ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let form = ClientForm {
        name: b.name,
        redirect_uris: b.redirect_uris,
        post_logout_redirect_uris: b.post_logout_redirect_uris,
        backchannel_logout_uri: b.backchannel_logout_uri,
        auth_method: b.token_endpoint_auth_method,
        jwks: b.jwks.map(|v| v.to_string()),
        scopes: b.scopes.map(|s| s.join(" ")),
        organisation_kinds: b.organisation_kinds,
        organisation_ids: b.organisation_ids,
        second_factor_required: b.second_factor_required,
        subject_type: b.subject_type,
        sector: b.sector,
        id_token_alg: b.id_token_signed_response_alg,
        access_token_seconds: b.access_token_seconds,
        id_token_seconds: b.id_token_seconds,
        refresh_token_seconds: b.refresh_token_seconds,
    };
    let made = state.app.register_client(Registrar::Operator(operator), &form, &frame.context(), frame.now).await?;
    Ok((
        StatusCode::CREATED,
        Json(RegisteredOut {
            client: ClientOut::from(&made.client),
            client_secret: made.secret.as_ref().map(|s| s.expose().to_owned()),
            issuer: state.app.issuer(),
        }),
    ))
}

#[utoipa::path(get, path = "/api/v1/clients/{id}", tag = "clients",
    responses((status = 200, body = ClientOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = OPERATOR_ONLY, body = Problem), (status = 404, description = "`not_found`: no such client", body = Problem)))]
pub async fn client(
    State(state): State<AppState>,
    groups::Operator(ref who): groups::Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientOut>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    Ok(Json(ClientOut::from(&state.app.client(Registrar::Operator(operator), &id).await?)))
}

#[utoipa::path(post, path = "/api/v1/clients/{id}/secret", tag = "clients", request_body = SecretIn,
    responses((status = 200, body = SecretOut), (status = 400, description = "`invalid_input`: the overlap is out of range", body = Problem), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = OPERATOR_ONLY, body = Problem), (status = 404, description = "`not_found`: no such client", body = Problem), (status = 409, description = "`conflict`: the client uses no secret (private_key_jwt or public)", body = Problem)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiPath(id): ApiPath<String>,
    ApiJson(b): ApiJson<SecretIn>,
) -> Result<Json<SecretOut>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let overlap = b.overlap_seconds.map_or(SECRET_OVERLAP_DEFAULT, Span::seconds_);
    let secret = state
        .app
        .rotate_client_secret(Registrar::Operator(operator), &id, overlap, &frame.context(), frame.now)
        .await?;
    Ok(Json(SecretOut {
        client_secret: secret.expose().to_owned(),
        old_secret_works_until: frame.now.plus(overlap).rfc3339(),
    }))
}

#[utoipa::path(post, path = "/api/v1/clients/{id}/disable", tag = "clients",
    responses((status = 200, body = ClientOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = OPERATOR_ONLY, body = Problem), (status = 404, description = "`not_found`: no such client", body = Problem), (status = 409, description = "`conflict`: the client is disabled already", body = Problem)))]
pub async fn disable(
    State(state): State<AppState>,
    Extension(frame): Extension<Arc<Frame>>,
    groups::Operator(ref who): groups::Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ClientOut>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let c = state.app.disable_client(Registrar::Operator(operator), &id, &frame.context(), frame.now).await?;
    Ok(Json(ClientOut::from(&c)))
}

/// How the logout tokens to a service stand: one per session that signed in to it and ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutDeliveriesOut {
    /// Queued and not yet tried.
    pub pending: i64,
    /// Tried, failed, and to be tried again.
    pub retrying: i64,
    /// Given up after the last try: the service never heard of these sign-outs.
    pub given_up: i64,
    pub delivered: i64,
    /// The newest not delivered (pending, retrying or given up), at most 50.
    pub undelivered: Vec<LogoutDeliveryOut>,
}

/// One logout token not (yet) delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutDeliveryOut {
    /// When the session ended.
    pub session_ended_at: String,
    /// pending, retrying or given_up.
    pub status: String,
    pub attempts: i64,
    /// When it is tried next (pending and retrying).
    pub next_attempt_at: Option<String>,
    /// What the last try met, in a few words.
    pub last_error: Option<String>,
}

/// The status people read for an outbox row of a logout token.
pub(crate) fn delivery_status(d: &usher_app::oidc::clients::LogoutDelivery) -> &'static str {
    match (d.status.as_str(), d.attempts) {
        ("pending", 0) => "pending",
        ("pending", _) => "retrying",
        ("sent", _) => "delivered",
        _ => "given_up",
    }
}

#[utoipa::path(get, path = "/api/v1/clients/{id}/logout-deliveries", tag = "clients",
    responses((status = 200, body = LogoutDeliveriesOut), (status = 401, description = "`unauthenticated`: sign in first", body = Problem), (status = 403, description = OPERATOR_ONLY, body = Problem), (status = 404, description = "`not_found`: no such client", body = Problem)))]
pub async fn logout_deliveries(
    State(state): State<AppState>,
    groups::Operator(ref who): groups::Operator,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<LogoutDeliveriesOut>, ApiError> {
    let operator = usher_app::authz::Operator::check(who)?;
    let (counts, undelivered) = state.app.logout_deliveries(Registrar::Operator(operator), &id, 50).await?;
    Ok(Json(LogoutDeliveriesOut {
        pending: counts.pending,
        retrying: counts.retrying,
        given_up: counts.given_up,
        delivered: counts.delivered,
        undelivered: undelivered
            .iter()
            .map(|d| {
                let status = delivery_status(d);
                LogoutDeliveryOut {
                    session_ended_at: d.session_ended_at.rfc3339(),
                    status: status.to_owned(),
                    attempts: d.attempts,
                    next_attempt_at: (status != "given_up").then(|| d.next_attempt_at.rfc3339()),
                    last_error: d.last_error.clone(),
                }
            })
            .collect(),
    }))
}
