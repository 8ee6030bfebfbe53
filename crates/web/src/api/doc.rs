//! The OpenAPI document. Each operation's own answers are annotated on its handler; what the
//! layers in front of every handler can answer is added here, from the same rules those layers
//! apply, so the document says exactly what the server does:
//! - path parameters, with their formats (IDs are 32 hex characters, link tokens 43 base64url);
//! - security: the session cookie, and with it on a write the `X-CSRF-Token` header (csrf.rs);
//! - 400 for a web address, query or body that cannot be read, 413 for a body over the limit
//!   (extract.rs); 403 from the anti-forgery guard and from the frame (an expired password, a
//!   sign-in still waiting for its second factor); 500 and 503 when the database fails;
//! - every error as `application/problem+json` with the `Problem` schema, and `Retry-After` on
//!   each 429.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use super::{SessionInfo, TestClock, TestClockMove};
use super::{account, clients, mfa, people};
use crate::error::{Problem, ProblemField};
use crate::routes;
use crate::session::SESSION_COOKIE;
use usher_domain::ErrorCode;

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Usher API",
        description = "Sign-in and account service. Every error is an RFC 9457 problem document \
            (`application/problem+json`) with a stable `code` and the `request_id` to quote. \
            Writes are `POST` with `Content-Type: application/json`; a write made with the session \
            cookie must also send the `csrf_token` from the sign-in answer as `X-CSRF-Token`."
    ),
    paths(
        super::session,
        super::test_clock_get,
        super::test_clock_post,
        super::healthz,
        people::organisations,
        people::register_organisation,
        people::organisation,
        people::invite_administrator,
        people::terms,
        people::publish_terms,
        clients::clients,
        clients::register,
        clients::client,
        clients::rotate_secret,
        clients::disable,
        clients::logout_deliveries,
        people::users,
        people::add_user,
        people::user,
        people::correct_mobile,
        people::resend_activation,
        people::activation,
        people::activation_terms,
        people::activation_send_code,
        people::activation_code,
        people::activation_password,
        account::sign_in,
        account::sign_out,
        account::change_password,
        account::request_reset,
        account::sessions,
        account::end_session,
        account::unlock,
        account::reregister,
        mfa::second_factor,
        mfa::email_code,
        mfa::send_check,
        mfa::check,
        mfa::new_app,
        mfa::confirm_app,
        mfa::factors,
        mfa::reset_factors,
    ),
    components(schemas(SessionInfo, TestClock, TestClockMove, Problem, ProblemField)),
    modifiers(&InFrontOfEveryHandler)
)]
pub struct ApiDoc;

/// What the frame, the anti-forgery guard and the extractors add to every API operation.
#[derive(Debug)]
struct InFrontOfEveryHandler;

pub const CSRF_HEADER: &str = "X-CSRF-Token";

impl Modify for InFrontOfEveryHandler {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The session cookie set by POST /api/v1/sign-in (and replaced at each step of signing in).",
            ))),
        );
        components.add_security_scheme(
            "csrf",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                CSRF_HEADER,
                "The anti-forgery token: `csrf_token` from the sign-in answer (the value of the \
                 `__Host-usher-csrf` cookie). Required on every write that carries the session cookie.",
            ))),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/api/") {
                continue;
            }
            if let Some(op) = item.get.as_mut() {
                in_front(path, op, &axum::http::Method::GET);
            }
            if let Some(op) = item.post.as_mut() {
                in_front(path, op, &axum::http::Method::POST);
            }
        }
    }
}

fn in_front(path: &str, op: &mut Operation, method: &axum::http::Method) {
    declare_path_parameters(path, op);
    let write = *method == axum::http::Method::POST;
    // The route's group (routes.rs) says whether it needs a session and what its door refuses.
    let group = routes::group_of(method, path).unwrap_or(crate::groups::Group::Public);
    let needs_session = group.needs_session();
    if needs_session {
        add(op, "401", "`unauthenticated`: no session, or not one this operation takes; sign in first.");
    }
    let mut with_session = SecurityRequirement::new("session", Vec::<String>::new());
    if write {
        with_session = with_session.add("csrf", Vec::<String>::new());
    }
    op.security =
        Some(if needs_session { vec![with_session] } else { vec![SecurityRequirement::default(), with_session] });

    let has_parameters = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
    if has_parameters || op.request_body.is_some() {
        add(op, "400", "`invalid_input`: a path parameter, query or body that cannot be read.");
    }
    if op.request_body.is_some() {
        add(op, "413", "`payload_too_large`: a body over 64 KB.");
    }
    let mut refusals = Vec::new();
    if write {
        refusals.push(
            "`csrf_rejected`: not `application/json`, sent from another site, or sent with the session \
             cookie but without `X-CSRF-Token`",
        );
    }
    for code in group.refusals() {
        refusals.push(match code {
            ErrorCode::PasswordExpired => "`password_expired`: the signed-in person must change their password first",
            ErrorCode::SecondFactorRequired => {
                "`second_factor_required`: the session has proven only the password so far"
            }
            _ => "`forbidden`: the signed-in person's role may not do this",
        });
    }
    if !refusals.is_empty() {
        add(op, "403", &format!("Refused before the operation: {}.", refusals.join("; ")));
    }
    add(op, "500", "`internal`: something went wrong on our side; quote the `request_id`.");
    add(op, "503", "`unavailable`: the database does not answer just now.");
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if response.description.is_empty() {
            let reason = status.parse::<axum::http::StatusCode>().ok().and_then(|s| s.canonical_reason());
            response.description = reason.unwrap_or("Answered").to_owned();
        }
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        response.content.clear();
        response.content.insert(
            "application/problem+json".to_owned(),
            Content::new(Some(RefOr::Ref(Ref::from_schema_name("Problem")))),
        );
        if status == "429" {
            response.headers.insert(
                "Retry-After".to_owned(),
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)))
                    .description(Some("Seconds until the limit frees."))
                    .build(),
            );
        }
    }
}

/// Documents `status` for `op`; if the handler documents it already, its description gains `why`.
fn add(op: &mut Operation, status: &str, why: &str) {
    match op.responses.responses.get_mut(status) {
        Some(RefOr::T(existing)) if !existing.description.contains(why) => {
            existing.description = if existing.description.is_empty() {
                why.to_owned()
            } else {
                format!("{} Also {why}", existing.description.trim_end_matches('.').to_owned() + ".")
            };
        }
        Some(_) => {}
        None => {
            op.responses.responses.insert(status.to_owned(), RefOr::T(ResponseBuilder::new().description(why).build()));
        }
    }
}

/// Declares each `{name}` of `path` that the handler did not: IDs we issue are 32 lower-case hex
/// characters, link tokens 43 URL-safe base64 characters (256 bits).
fn declare_path_parameters(path: &str, op: &mut Operation) {
    let names: Vec<&str> =
        path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
    let parameters = op.parameters.get_or_insert_with(Vec::new);
    for name in names {
        if parameters.iter().any(|p| p.name == name && p.parameter_in == ParameterIn::Path) {
            continue;
        }
        let (pattern, description) = match (name, path) {
            ("token", _) => {
                ("^[A-Za-z0-9_-]{43}$", "The token from the activation link (43 URL-safe base64 characters).")
            }
            (_, p) if p.starts_with("/api/v1/organisations/") => ("^[0-9a-f]{32}$", "The organisation's ID."),
            (_, p) if p.starts_with("/api/v1/sessions/") => ("^[0-9a-f]{32}$", "The ID of one of your sessions."),
            _ => ("^[0-9a-f]{32}$", "The person's ID (someone in your organisation)."),
        };
        parameters.push(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern))))
                .build(),
        );
    }
}
