//! `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0): what the provider offers,
//! under the one configured issuer, never one taken from the request's Host or a proxy header
//! (S38).

use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use usher_app::oidc::clients::SIGNING_ALGS;
use usher_app::oidc::endpoints;
use usher_app::oidc::tokens::METHODS_CLAIM;
use usher_domain::oidc::{Acr, AuthMethod, Scope};

use crate::AppState;

/// How long a relying party may cache the document.
const MAX_AGE_SECONDS: i64 = 3600;

pub(crate) async fn show(State(state): State<AppState>) -> Response {
    let issuer = state.app.issuer();
    let at = |path: &str| format!("{issuer}{path}");
    let algs: Vec<&str> = SIGNING_ALGS.iter().map(|a| a.as_str()).collect();
    let mut claims: Vec<&str> =
        vec!["iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", METHODS_CLAIM, "azp", "sid"];
    for scope in Scope::ALL {
        claims.extend(scope.claims());
    }
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": at(endpoints::AUTHORIZE),
        "token_endpoint": at(endpoints::TOKEN),
        "userinfo_endpoint": at(endpoints::USERINFO),
        "jwks_uri": at(endpoints::JWKS),
        "revocation_endpoint": at(endpoints::REVOKE),
        "introspection_endpoint": at(endpoints::INTROSPECT),
        "end_session_endpoint": at(endpoints::END_SESSION),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "scopes_supported": Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["pairwise", "public"],
        "id_token_signing_alg_values_supported": algs,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": AuthMethod::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claims_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "acr_values_supported": Acr::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["en-GB"],
        "claims_locales_supported": ["en-GB"],
    });
    super::public_json(body, MAX_AGE_SECONDS)
}
