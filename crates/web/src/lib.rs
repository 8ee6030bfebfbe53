//! The web layer: HTML pages (askama templates in the GOV.UK Design System's patterns), the
//! JSON API under `/api/v1`, sessions, CSRF, security headers, request IDs and metrics.
//! Handlers translate HTTP to use cases and back; the rules live in `usher_app`.

mod api;
mod assets;
mod csrf;
mod error;
mod extract;
mod frame;
mod metrics;
mod pages;
mod return_to;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use usher_app::App;

pub use api::ApiDoc;
pub use metrics::Metrics;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    /// The dev mailbox page exists only when the dev mailbox delivers a channel.
    pub dev_mailbox: bool,
    pub metrics: Arc<Metrics>,
    /// Cookies get `Secure` (and the `__Host-` prefix) unless the base URL is plain http on a
    /// host other than localhost, where browsers would refuse them.
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(app: App, dev_mailbox: bool) -> Self {
        let secure_cookies = true;
        Self { app, dev_mailbox, metrics: Arc::new(Metrics::new()), secure_cookies }
    }
}

pub fn router(state: AppState) -> Router {
    use api::people;
    use pages::mfa;
    let pages = Router::new()
        .route("/", get(pages::start))
        .route("/home", get(pages::home))
        .route("/setup/{token}", get(pages::setup_form).post(pages::setup_submit))
        .route("/sign-in", get(pages::sign_in_form).post(pages::sign_in_submit))
        .route("/sign-out", post(pages::sign_out))
        .route("/signed-out", get(pages::signed_out))
        .route("/dev/mailbox", get(pages::dev_mailbox))
        .route("/operator/organisations", get(pages::operator::list))
        .route("/operator/organisations/new", get(pages::operator::new_form).post(pages::operator::new_submit))
        .route("/operator/organisations/{id}", get(pages::operator::show))
        .route(
            "/operator/organisations/{id}/administrators/new",
            get(pages::operator::invite_form).post(pages::operator::invite_submit),
        )
        .route("/operator/organisations/{id}/second-factors", post(pages::operator::second_factor_rules))
        .route("/operator/administrators/{id}/reset-factors", post(pages::operator::reset_administrator_factors))
        .route("/notifications", get(pages::notices::list))
        .route("/notifications/{id}/dismiss", post(pages::notices::dismiss))
        .route("/phishing", get(pages::notices::phishing))
        .route("/operator/notifications", get(pages::notices::operator_list))
        .route("/operator/notifications/new", get(pages::notices::new_form).post(pages::notices::new_submit))
        .route("/operator/notifications/{id}/end", post(pages::notices::end))
        .route("/operator/audit", get(pages::audit::operator_view))
        .route("/operator/audit/export", get(pages::audit::operator_export))
        .route("/admin/audit", get(pages::audit::admin_view))
        .route("/admin/audit/export", get(pages::audit::admin_export))
        .route("/operator/terms", get(pages::operator::terms_form).post(pages::operator::terms_submit))
        .route("/admin/users", get(pages::admin::list))
        .route("/admin/users/new", get(pages::admin::add_form).post(pages::admin::add_submit))
        .route("/admin/users/{id}", get(pages::admin::show))
        .route("/admin/users/{id}/resend-activation", post(pages::admin::resend))
        .route("/admin/users/{id}/mobile", get(pages::admin::mobile_form).post(pages::admin::mobile_submit))
        .route("/account/password", get(pages::account::password_form).post(pages::account::password_submit))
        .route("/account/sessions", get(pages::account::sessions))
        .route("/account/sessions/end-others", post(pages::account::end_others))
        .route("/account/sessions/{id}/end", post(pages::account::end_session))
        .route("/reset-password", get(pages::account::reset_request_form).post(pages::account::reset_request_submit))
        .route("/reset-password/{token}", get(pages::account::reset_form).post(pages::account::reset_submit))
        .route("/admin/users/{id}/unlock", post(pages::admin::unlock))
        .route("/admin/users/{id}/reset-factors", post(pages::admin::reset_factors))
        .route("/admin/users/{id}/reregister", post(pages::admin::reregister))
        .route("/reset-password/{token}/second-factor", post(pages::account::reset_second_factor))
        .route("/reset-password/{token}/second-factor/text", post(pages::account::reset_text))
        .route("/reset-password/{token}/second-factor/email-code", post(pages::account::reset_email_code))
        .route("/recover", get(mfa::recover))
        .route("/sign-in/second-factor", get(mfa::second_factor_form).post(mfa::second_factor_submit))
        .route("/sign-in/second-factor/email-code", post(mfa::second_factor_email))
        .route("/sign-in/lost-device", get(mfa::lost_device_form).post(mfa::lost_device_submit))
        .route("/sign-in/lost-device/text", post(mfa::lost_device_text))
        .route("/set-up", get(mfa::setup))
        .route("/set-up/app/send-code", post(mfa::setup_check_send))
        .route("/set-up/app/check", get(mfa::setup_check_form).post(mfa::setup_check_submit))
        .route("/set-up/app", get(mfa::setup_app).post(mfa::setup_app_submit))
        .route("/set-up/app/new", post(mfa::setup_app_new))
        .route("/set-up/email", get(mfa::setup_email).post(mfa::setup_email_submit))
        .route("/set-up/email/send", post(mfa::setup_email_send))
        .route("/account/security", get(mfa::security))
        .route("/account/confirm-password", get(mfa::confirm_password_form).post(mfa::confirm_password_submit))
        .route("/account/security/factors/{id}/remove", post(mfa::remove_factor))
        .route("/account/security/recovery-codes", post(mfa::new_recovery_codes))
        .route("/account/security/recovery-phone", get(mfa::recovery_phone_form).post(mfa::recovery_phone_send))
        .route("/account/security/recovery-phone/confirm", post(mfa::recovery_phone_confirm))
        .route("/account/security/recovery-phone/remove", post(mfa::recovery_phone_remove))
        .route("/activate/{token}", get(pages::activation::show))
        .route("/activate/{token}/terms", post(pages::activation::terms))
        .route("/activate/{token}/send-code", post(pages::activation::send_code))
        .route("/activate/{token}/code", post(pages::activation::code))
        .route("/activate/{token}/password", post(pages::activation::password));
    let api = Router::new()
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/session", get(api::session))
        .route("/api/v1/test-clock", get(api::test_clock_get).post(api::test_clock_post))
        .route("/api/v1/organisations", get(people::organisations).post(people::register_organisation))
        .route("/api/v1/organisations/{id}", get(people::organisation))
        .route("/api/v1/organisations/{id}/administrators", post(people::invite_administrator))
        .route("/api/v1/terms", get(people::terms).post(people::publish_terms))
        .route("/api/v1/users", get(people::users).post(people::add_user))
        .route("/api/v1/users/{id}", get(people::user))
        .route("/api/v1/users/{id}/mobile", post(people::correct_mobile))
        .route("/api/v1/users/{id}/activation-email", post(people::resend_activation))
        .route("/api/v1/activations/{token}", get(people::activation))
        .route("/api/v1/activations/{token}/terms", post(people::activation_terms))
        .route("/api/v1/activations/{token}/code-requests", post(people::activation_send_code))
        .route("/api/v1/activations/{token}/code", post(people::activation_code))
        .route("/api/v1/activations/{token}/password", post(people::activation_password))
        .route("/api/v1/sign-in", post(api::account::sign_in))
        .route("/api/v1/sign-out", post(api::account::sign_out))
        .route("/api/v1/password", post(api::account::change_password))
        .route("/api/v1/password-resets", post(api::account::request_reset))
        .route("/api/v1/sessions", get(api::account::sessions))
        .route("/api/v1/sessions/{id}/end", post(api::account::end_session))
        .route("/api/v1/users/{id}/unlock", post(api::account::unlock))
        .route("/api/v1/sign-in/second-factor", post(api::mfa::second_factor))
        .route("/api/v1/sign-in/email-code", post(api::mfa::email_code))
        .route("/api/v1/factors", get(api::mfa::factors))
        .route("/api/v1/factors/set-up/check-code", post(api::mfa::send_check))
        .route("/api/v1/factors/set-up/check", post(api::mfa::check))
        .route("/api/v1/factors/set-up/app", post(api::mfa::new_app))
        .route("/api/v1/factors/set-up/app/confirm", post(api::mfa::confirm_app))
        .route("/api/v1/users/{id}/factors/reset", post(api::mfa::reset_factors))
        .route("/api/v1/users/{id}/reregistration", post(api::account::reregister));
    Router::new()
        .merge(pages)
        .merge(api)
        .route("/healthz", get(api::healthz))
        .route("/assets/{file}", get(assets::serve))
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .fallback(pages::not_found)
        .layer(from_fn_with_state(state.clone(), csrf::guard))
        .layer(from_fn_with_state(state.clone(), frame::frame))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}

/// The management listener's routes: Prometheus metrics and the health check. Served on its own
/// address (loopback by default), never on the public one.
pub fn management_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::render))
        .route("/healthz", get(api::healthz))
        .layer(DefaultBodyLimit::max(1024))
        .with_state(state)
}

/// Serves the management routes until `shutdown` completes.
pub async fn serve_management(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, management_router(state)).with_graceful_shutdown(shutdown).await
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
