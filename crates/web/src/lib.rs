//! The web layer: HTML pages (askama templates in the GOV.UK Design System's patterns), the
//! JSON API under `/api/v1`, sessions, CSRF, security headers, request IDs and metrics.
//! Handlers translate HTTP to use cases and back; the rules live in `usher_app`.

mod api;
mod assets;
mod csrf;
mod error;
mod extract;
mod frame;
mod groups;
mod metrics;
mod oidc;
mod pages;
mod return_to;
mod routes;
mod session;
mod told;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{MethodRouter, get};
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
    // One method router per path: each method keeps its own group's door.
    let mut paths: Vec<(&'static str, MethodRouter<AppState>)> = Vec::new();
    for route in routes::all() {
        let (group, door_state) = (route.group, state.clone());
        let door = from_fn(move |req, next| groups::guard(group, door_state.clone(), req, next));
        let handler = route.handler.route_layer(door);
        match paths.iter_mut().find(|(path, _)| *path == route.path) {
            Some((_, existing)) => *existing = std::mem::take(existing).merge(handler),
            None => paths.push((route.path, handler)),
        }
    }
    paths
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| router.route(path, handler))
        .method_not_allowed_fallback(error::method_not_allowed_fallback)
        .fallback(pages::not_found)
        .layer(from_fn_with_state(state.clone(), frame::frame))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(extract::BODY_LIMIT))
        .with_state(state)
}

/// Every route of the public listener as (method, path, group name), for tests that walk the
/// router itself rather than a hand-made list.
pub fn route_table() -> Vec<(String, &'static str, &'static str)> {
    routes::all().into_iter().map(|r| (r.method.to_string(), r.path, r.group.name())).collect()
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
