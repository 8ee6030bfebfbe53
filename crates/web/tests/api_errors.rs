//! Every error is an error of ours: under `/api/v1` RFC 9457 problem details with a stable
//! `code` and the request ID, on pages the HTML error page, whatever refused the request: a
//! handler, an extractor (a path, query, JSON body or form it cannot read), or the router (an
//! unknown path, a method the path does not take). A 429 says when to try again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Page, TestApp};
use reqwest::Method;
use usher_domain::duration::Span;

/// Asserts `page` is problem details with `status` and `code`, carrying the request ID.
fn assert_problem(page: &Page, status: u16, code: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    let content_type = page.headers.get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "{}", page.body);
    let p = page.json();
    assert_eq!(p["status"], status);
    assert_eq!(p["code"], code);
    assert_eq!(p["type"], format!("urn:usher:problem:{code}"));
    let request_id = page.headers.get("x-request-id").unwrap().to_str().unwrap();
    assert_eq!(p["request_id"], request_id);
    assert!(!p["title"].as_str().unwrap().is_empty());
    assert!(!p["detail"].as_str().unwrap().is_empty());
}

/// Asserts `page` is our HTML error page with `status`.
fn assert_error_page(page: &Page, status: u16, h1: &str) {
    assert_eq!(page.status, status, "{}", page.body);
    let content_type = page.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(content_type.starts_with("text/html"), "{content_type}: {}", page.body);
    assert_eq!(page.h1(), h1, "{}", page.body);
    assert!(page.body.contains("Go to the start page"), "{}", page.body);
}

/// A signed-in organisation administrator.
async fn administrator(t: &TestApp) -> common::Client {
    let operator = t.operator().await;
    t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await.1
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_problem_details() {
    let t = TestApp::start().await;
    // Past the route group's door (an administrator), so that the path is what is read next.
    let c = administrator(&t).await;
    assert_problem(&c.get("/api/v1/users/%FF").await, 400, "invalid_input");
    assert_problem(&c.get("/api/v1/activations/%C3%28").await, 400, "invalid_input");
    assert_problem(&c.api(Method::POST, "/api/v1/sessions/%FF/end", None).await, 400, "invalid_input");
    // Without a session the door answers first, before anything of the request is read.
    assert_problem(&t.client().get("/api/v1/users/%FF").await, 401, "unauthenticated");
}

#[tokio::test]
async fn a_method_the_path_does_not_take_is_405_problem_details_with_allow() {
    let t = TestApp::start().await;
    let c = t.client();
    let page = c.request(Method::DELETE, "/api/v1/session", &[], None).await;
    assert_problem(&page, 405, "method_not_allowed");
    assert_eq!(page.headers.get("allow").unwrap(), "GET,HEAD");
    let page = c.request(Method::PUT, "/api/v1/sign-in", &[], None).await;
    assert_problem(&page, 405, "method_not_allowed");
    assert_eq!(page.headers.get("allow").unwrap(), "POST");
    // A GET never changes state, so it meets the router before any anti-forgery check.
    let page = c.get("/api/v1/sign-out").await;
    assert_problem(&page, 405, "method_not_allowed");
    assert_eq!(page.headers.get("allow").unwrap(), "POST");
}

#[tokio::test]
async fn an_unknown_path_under_the_api_is_404_problem_details() {
    let t = TestApp::start().await;
    let c = t.client();
    assert_problem(&c.get("/api/v1/no-such-thing").await, 404, "not_found");
    assert_problem(&c.api(Method::POST, "/api/v1/no/such/thing", None).await, 404, "not_found");
}

#[tokio::test]
async fn unreadable_bodies_and_queries_are_problem_details() {
    let t = TestApp::start().await;
    let c = t.client();
    let json = |body: &str| Some((body.to_owned(), "application/json"));
    let bad_json = c.request(Method::POST, "/api/v1/sign-in", &[], json("{\"email\": ")).await;
    assert_problem(&bad_json, 400, "invalid_input");
    let wrong_shape = c.request(Method::POST, "/api/v1/sign-in", &[], json("[1, 2]")).await;
    assert_problem(&wrong_shape, 400, "invalid_input");
    let secret = "Sup3r-Secret-Pass!";
    let wrong_field = c
        .request(Method::POST, "/api/v1/sign-in", &[], json(&format!("{{\"email\": 5, \"password\": \"{secret}\"}}")))
        .await;
    assert_problem(&wrong_field, 400, "invalid_input");
    assert!(!wrong_field.body.contains(secret), "what was sent is never echoed");

    // A write that is not JSON is refused before any handler reads it (S25).
    let not_json = c.request(Method::POST, "/api/v1/sign-in", &[], Some(("a=b".into(), "text/plain"))).await;
    assert_problem(&not_json, 403, "csrf_rejected");

    let too_large = format!("{{\"email\": \"{}\", \"password\": \"x\"}}", "a".repeat(80 * 1024));
    let page = c.request(Method::POST, "/api/v1/sign-in", &[], json(&too_large)).await;
    assert_problem(&page, 413, "payload_too_large");

    // A query parameter sent twice cannot be read as one.
    let admin = administrator(&t).await;
    assert_problem(&admin.get("/api/v1/users?q=a&q=b").await, 400, "invalid_input");
}

#[tokio::test]
async fn pages_get_the_html_error_page_for_the_same_cases() {
    let t = TestApp::start().await;
    let c = t.client();
    assert_error_page(&c.get("/activate/%FF").await, 400, "There is a problem");
    let wrong_method = c.request(Method::DELETE, "/sign-in", &[], None).await;
    assert_error_page(&wrong_method, 405, "This page cannot be used that way");
    assert_eq!(wrong_method.headers.get("allow").unwrap(), "GET,HEAD,POST");
    let get_only = c.get("/sign-out").await;
    assert_error_page(&get_only, 405, "This page cannot be used that way");
    assert_eq!(get_only.headers.get("allow").unwrap(), "POST");
    assert_error_page(&c.get("/no/such/page").await, 404, "Page not found");
    let admin = administrator(&t).await;
    assert_error_page(&admin.get("/admin/users?q=a&q=b").await, 400, "There is a problem");
}

#[tokio::test]
async fn a_429_says_when_the_limit_frees_in_the_api_and_on_pages() {
    let t = TestApp::start().await;
    let api = t.client();
    // 20 reset requests per IP address an hour; the window starts at the first.
    for _ in 0..20 {
        let page =
            api.api(Method::POST, "/api/v1/password-resets", Some(serde_json::json!({"email": "a@example.org"})));
        assert_eq!(page.await.status, 202);
    }
    t.advance(Span::minutes(10)).await;
    let limited = api.api(Method::POST, "/api/v1/password-resets", Some(serde_json::json!({"email": "a@example.org"})));
    let limited = limited.await;
    assert_problem(&limited, 429, "rate_limited");
    assert_eq!(limited.headers.get("retry-after").unwrap(), "3000", "50 minutes of the hour are left");

    // The pages count against the same per-IP window.
    let c = t.client();
    c.get("/reset-password").await;
    t.advance(Span::minutes(20)).await;
    let page = c.post_form("/reset-password", &[("email", "a@example.org")]).await;
    assert_error_page(&page, 429, "Too many attempts");
    assert_eq!(page.headers.get("retry-after").unwrap(), "1800");
}
