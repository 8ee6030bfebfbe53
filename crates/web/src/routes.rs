//! Every route of the public listener, each with its method and its group (groups.rs). The
//! router is built from this one list, and the OpenAPI document reads each operation's group
//! from it, so a route cannot be served under one rule and documented under another.

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};

use crate::AppState;
use crate::groups::Group::{self, *};
use crate::{api, assets, oidc, pages};

/// One method on one path, in one group.
#[derive(Debug)]
pub(crate) struct Route {
    pub method: Method,
    pub path: &'static str,
    pub group: Group,
    pub handler: MethodRouter<AppState>,
}

fn on<H, T>(method: Method, path: &'static str, group: Group, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let handler = if method == Method::POST { post(handler) } else { get(handler) };
    Route { method, path, group, handler }
}

fn g<H: Handler<T, AppState>, T: 'static>(path: &'static str, group: Group, handler: H) -> Route {
    on(Method::GET, path, group, handler)
}

fn p<H: Handler<T, AppState>, T: 'static>(path: &'static str, group: Group, handler: H) -> Route {
    on(Method::POST, path, group, handler)
}

/// The pages.
fn pages() -> Vec<Route> {
    use pages::{account, activation, admin, audit, clients, mfa, notices, operator};
    vec![
        g("/", Public, pages::start),
        g("/setup/{token}", Public, pages::setup_form),
        p("/setup/{token}", Public, pages::setup_submit),
        g("/sign-in", Public, pages::sign_in_form),
        p("/sign-in", Public, pages::sign_in_submit),
        p("/sign-out", Public, pages::sign_out),
        g("/signed-out", Public, pages::signed_out),
        g("/dev/mailbox", Public, pages::dev_mailbox),
        g("/notifications", Public, notices::list),
        p("/notifications/{id}/dismiss", Public, notices::dismiss),
        g("/phishing", Public, notices::phishing),
        g("/recover", Public, mfa::recover),
        g("/reset-password", Public, account::reset_request_form),
        p("/reset-password", Public, account::reset_request_submit),
        g("/reset-password/{token}", Public, account::reset_form),
        p("/reset-password/{token}", Public, account::reset_submit),
        p("/reset-password/{token}/second-factor", Public, account::reset_second_factor),
        p("/reset-password/{token}/second-factor/text", Public, account::reset_text),
        p("/reset-password/{token}/second-factor/email-code", Public, account::reset_email_code),
        g("/activate/{token}", Public, activation::show),
        p("/activate/{token}/terms", Public, activation::terms),
        p("/activate/{token}/send-code", Public, activation::send_code),
        p("/activate/{token}/code", Public, activation::code),
        p("/activate/{token}/password", Public, activation::password),
        g("/sign-in/second-factor", SecondFactorStep, mfa::second_factor_form),
        p("/sign-in/second-factor", SecondFactorStep, mfa::second_factor_submit),
        p("/sign-in/second-factor/email-code", SecondFactorStep, mfa::second_factor_email),
        g("/sign-in/lost-device", SecondFactorStep, mfa::lost_device_form),
        p("/sign-in/lost-device", SecondFactorStep, mfa::lost_device_submit),
        p("/sign-in/lost-device/text", SecondFactorStep, mfa::lost_device_text),
        g("/set-up", SetUp, mfa::setup),
        p("/set-up/app/send-code", SetUp, mfa::setup_check_send),
        g("/set-up/app/check", SetUp, mfa::setup_check_form),
        p("/set-up/app/check", SetUp, mfa::setup_check_submit),
        g("/set-up/app", SetUp, mfa::setup_app),
        p("/set-up/app", SetUp, mfa::setup_app_submit),
        p("/set-up/app/new", SetUp, mfa::setup_app_new),
        g("/set-up/email", SetUp, mfa::setup_email),
        p("/set-up/email", SetUp, mfa::setup_email_submit),
        p("/set-up/email/send", SetUp, mfa::setup_email_send),
        g("/account/password", PasswordChange, account::password_form),
        p("/account/password", PasswordChange, account::password_submit),
        g("/home", SignedIn, pages::home),
        g("/account/sessions", SignedIn, account::sessions),
        p("/account/sessions/end-others", SignedIn, account::end_others),
        p("/account/sessions/{id}/end", SignedIn, account::end_session),
        g("/account/security", SignedIn, mfa::security),
        g("/account/confirm-password", SignedIn, mfa::confirm_password_form),
        p("/account/confirm-password", SignedIn, mfa::confirm_password_submit),
        p("/account/security/factors/{id}/remove", SignedIn, mfa::remove_factor),
        p("/account/security/recovery-codes", SignedIn, mfa::new_recovery_codes),
        g("/account/security/recovery-phone", SignedIn, mfa::recovery_phone_form),
        p("/account/security/recovery-phone", SignedIn, mfa::recovery_phone_send),
        p("/account/security/recovery-phone/confirm", SignedIn, mfa::recovery_phone_confirm),
        p("/account/security/recovery-phone/remove", SignedIn, mfa::recovery_phone_remove),
        g("/operator/organisations", Operator, operator::list),
        g("/operator/organisations/new", Operator, operator::new_form),
        p("/operator/organisations/new", Operator, operator::new_submit),
        g("/operator/organisations/{id}", Operator, operator::show),
        g("/operator/organisations/{id}/administrators/new", Operator, operator::invite_form),
        p("/operator/organisations/{id}/administrators/new", Operator, operator::invite_submit),
        p("/operator/organisations/{id}/second-factors", Operator, operator::second_factor_rules),
        p("/operator/administrators/{id}/reset-factors", Operator, operator::reset_administrator_factors),
        g("/operator/clients", Operator, clients::list),
        g("/operator/clients/new", Operator, clients::new_form),
        p("/operator/clients/new", Operator, clients::new_submit),
        g("/operator/clients/{id}", Operator, clients::show),
        p("/operator/clients/{id}/secret", Operator, clients::rotate_secret),
        p("/operator/clients/{id}/disable", Operator, clients::disable),
        g("/operator/notifications", Operator, notices::operator_list),
        g("/operator/notifications/new", Operator, notices::new_form),
        p("/operator/notifications/new", Operator, notices::new_submit),
        p("/operator/notifications/{id}/end", Operator, notices::end),
        g("/operator/audit", Operator, audit::operator_view),
        g("/operator/audit/export", Operator, audit::operator_export),
        g("/operator/terms", Operator, operator::terms_form),
        p("/operator/terms", Operator, operator::terms_submit),
        g("/admin/audit", OrgAdmin, audit::admin_view),
        g("/admin/audit/export", OrgAdmin, audit::admin_export),
        g("/admin/users", OrgAdmin, admin::list),
        g("/admin/users/new", OrgAdmin, admin::add_form),
        p("/admin/users/new", OrgAdmin, admin::add_submit),
        g("/admin/users/{id}", OrgAdmin, admin::show),
        p("/admin/users/{id}/resend-activation", OrgAdmin, admin::resend),
        g("/admin/users/{id}/mobile", OrgAdmin, admin::mobile_form),
        p("/admin/users/{id}/mobile", OrgAdmin, admin::mobile_submit),
        p("/admin/users/{id}/unlock", OrgAdmin, admin::unlock),
        p("/admin/users/{id}/reset-factors", OrgAdmin, admin::reset_factors),
        p("/admin/users/{id}/reregister", OrgAdmin, admin::reregister),
    ]
}

/// The JSON API.
pub(crate) fn api() -> Vec<Route> {
    use api::{account, clients, mfa, people};
    vec![
        g("/api/v1/openapi.json", Public, api::openapi),
        g("/api/v1/test-clock", Public, api::test_clock_get),
        p("/api/v1/test-clock", Public, api::test_clock_post),
        g("/api/v1/terms", Public, people::terms),
        g("/api/v1/activations/{token}", Public, people::activation),
        p("/api/v1/activations/{token}/terms", Public, people::activation_terms),
        p("/api/v1/activations/{token}/code-requests", Public, people::activation_send_code),
        p("/api/v1/activations/{token}/code", Public, people::activation_code),
        p("/api/v1/activations/{token}/password", Public, people::activation_password),
        p("/api/v1/sign-in", Public, account::sign_in),
        p("/api/v1/sign-out", Public, account::sign_out),
        p("/api/v1/password-resets", Public, account::request_reset),
        p("/api/v1/sign-in/second-factor", SecondFactorStep, mfa::second_factor),
        p("/api/v1/sign-in/email-code", SecondFactorStep, mfa::email_code),
        p("/api/v1/factors/set-up/check-code", SetUp, mfa::send_check),
        p("/api/v1/factors/set-up/check", SetUp, mfa::check),
        p("/api/v1/factors/set-up/app", SetUp, mfa::new_app),
        p("/api/v1/factors/set-up/app/confirm", SetUp, mfa::confirm_app),
        p("/api/v1/password", PasswordChange, account::change_password),
        g("/api/v1/session", SignedIn, api::session),
        g("/api/v1/sessions", SignedIn, account::sessions),
        p("/api/v1/sessions/{id}/end", SignedIn, account::end_session),
        g("/api/v1/factors", SignedIn, mfa::factors),
        g("/api/v1/organisations", Operator, people::organisations),
        p("/api/v1/organisations", Operator, people::register_organisation),
        g("/api/v1/organisations/{id}", Operator, people::organisation),
        p("/api/v1/organisations/{id}/administrators", Operator, people::invite_administrator),
        p("/api/v1/terms", Operator, people::publish_terms),
        g("/api/v1/clients", Operator, clients::clients),
        p("/api/v1/clients", Operator, clients::register),
        g("/api/v1/clients/{id}", Operator, clients::client),
        p("/api/v1/clients/{id}/secret", Operator, clients::rotate_secret),
        p("/api/v1/clients/{id}/disable", Operator, clients::disable),
        g("/api/v1/clients/{id}/logout-deliveries", Operator, clients::logout_deliveries),
        g("/api/v1/users", OrgAdmin, people::users),
        p("/api/v1/users", OrgAdmin, people::add_user),
        g("/api/v1/users/{id}", OrgAdmin, people::user),
        p("/api/v1/users/{id}/mobile", OrgAdmin, people::correct_mobile),
        p("/api/v1/users/{id}/activation-email", OrgAdmin, people::resend_activation),
        p("/api/v1/users/{id}/unlock", OrgAdmin, account::unlock),
        p("/api/v1/users/{id}/factors/reset", OrgAdmin, mfa::reset_factors),
        p("/api/v1/users/{id}/reregistration", OrgAdmin, account::reregister),
    ]
}

/// The OpenID Connect provider. The authorization endpoint reads the session but, like the
/// other protocol endpoints, takes cross-site requests (a relying party's form may POST it); the
/// page where a person continues is theirs, behind the signed-in door.
fn openid_connect() -> Vec<Route> {
    use oidc::{authorize, discovery, end_session, introspect, jwks, revoke, token, userinfo};
    use usher_app::oidc::endpoints::{AUTHORIZE, DISCOVERY, END_SESSION, INTROSPECT, JWKS, REVOKE, TOKEN, USERINFO};
    vec![
        g(DISCOVERY, Protocol, discovery::show),
        g(JWKS, Protocol, jwks::show),
        g(AUTHORIZE, Protocol, authorize::get),
        p(AUTHORIZE, Protocol, authorize::post),
        g("/oidc/authorize/{id}", SignedIn, authorize::show),
        p("/oidc/authorize/{id}", SignedIn, authorize::decide),
        p(TOKEN, Protocol, token::exchange),
        g(USERINFO, Protocol, userinfo::get),
        p(USERINFO, Protocol, userinfo::post),
        p(REVOKE, Protocol, revoke::revoke),
        p(INTROSPECT, Protocol, introspect::introspect),
        g(END_SESSION, Protocol, end_session::get),
        p(END_SESSION, Protocol, end_session::post),
        // The person's own answer on the confirmation page: a form of ours, anti-forgery checked.
        p(end_session::CONFIRM, Public, end_session::confirm),
    ]
}

/// Everything else on the public listener: the health check and the assets.
fn rest() -> Vec<Route> {
    vec![g("/healthz", Protocol, api::healthz), g("/assets/{file}", Public, assets::serve)]
}

/// Every route of the public listener.
pub(crate) fn all() -> Vec<Route> {
    let mut routes = pages();
    routes.extend(api());
    routes.extend(openid_connect());
    routes.extend(rest());
    routes
}

/// The group of the operation `method` `path`, as the router serves it.
pub(crate) fn group_of(method: &Method, path: &str) -> Option<Group> {
    api().into_iter().chain(rest()).find(|r| r.method == *method && r.path == path).map(|r| r.group)
}
