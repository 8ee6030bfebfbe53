//! The OpenAPI document describes the server as it is: every `{param}` declared with its
//! format, every error as problem details, a `Retry-After` on every 429, the session cookie and
//! the anti-forgery header where the server wants them, and the answers every operation can get
//! from the layers in front of its handler. Schemathesis (scripts/test) then checks the server
//! against it; this test checks the document's own shape.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::Value;

async fn document() -> (TestApp, Value) {
    let t = TestApp::start().await;
    let page = t.client().get("/api/v1/openapi.json").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers.get("content-type").unwrap(), "application/json");
    let doc = page.json();
    (t, doc)
}

/// Each (path, method, operation) under `/api/`.
fn api_operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    assert!(out.len() >= 30, "{} operations", out.len());
    out
}

#[tokio::test]
async fn every_path_parameter_is_declared_with_its_format() {
    let (_t, doc) = document().await;
    let mut checked = 0;
    for (path, method, op) in api_operations(&doc) {
        let names: Vec<&str> =
            path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
        let declared: Vec<&Value> =
            op["parameters"].as_array().map(|p| p.iter().filter(|p| p["in"] == "path").collect()).unwrap_or_default();
        assert_eq!(declared.len(), names.len(), "{method} {path}: declares {declared:?}");
        for name in names {
            let p = declared.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{method} {path}: {name}"));
            assert_eq!(p["required"], true, "{method} {path}: {name}");
            assert_eq!(p["schema"]["type"], "string", "{method} {path}: {name}");
            let pattern = p["schema"]["pattern"].as_str().unwrap_or_else(|| panic!("{method} {path}: {name} format"));
            let expected = if name == "token" { "^[A-Za-z0-9_-]{43}$" } else { "^[0-9a-f]{32}$" };
            assert_eq!(pattern, expected, "{method} {path}: {name}");
            assert!(p["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path}: {name}");
            checked += 1;
        }
    }
    assert_eq!(checked, 18, "the 18 operations with an {{id}} or a {{token}}");
}

#[tokio::test]
async fn every_error_is_problem_details_and_every_429_says_when_to_retry() {
    let (_t, doc) = document().await;
    assert!(doc["components"]["schemas"]["Problem"]["properties"]["code"].is_object());
    let table = usher_web::route_table();
    for (path, method, op) in api_operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        for status in ["500", "503"] {
            assert!(responses.contains_key(status), "{method} {path} lacks {status}");
        }
        // A write meets the anti-forgery guard; a route behind a door, its refusals.
        let (_, _, group) = table
            .iter()
            .find(|(m, p, _)| m.eq_ignore_ascii_case(&method) && *p == path)
            .unwrap_or_else(|| panic!("{method} {path} is documented but not served"));
        if method == "post" || !matches!(*group, "public" | "protocol") {
            assert!(responses.contains_key("403"), "{method} {path} ({group}) lacks 403");
        }
        if !matches!(*group, "public" | "protocol") {
            assert!(responses.contains_key("401"), "{method} {path} ({group}) lacks 401");
        }
        if op["requestBody"].is_object() {
            let content = op["requestBody"]["content"].as_object().unwrap();
            assert_eq!(content.keys().collect::<Vec<_>>(), ["application/json"], "{method} {path}");
            assert!(responses.contains_key("400") && responses.contains_key("413"), "{method} {path}");
        }
        for (status, response) in responses {
            let code: u16 = status.parse().unwrap_or_else(|_| panic!("{method} {path}: status {status}"));
            assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{method} {path} {status}");
            if code < 400 {
                continue;
            }
            let content = response["content"].as_object().unwrap_or_else(|| panic!("{method} {path} {status}"));
            assert_eq!(content.keys().collect::<Vec<_>>(), ["application/problem+json"], "{method} {path} {status}");
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
            let retry_after = &response["headers"]["Retry-After"];
            assert_eq!(retry_after.is_object(), code == 429, "{method} {path} {status}: Retry-After");
            if code == 429 {
                assert_eq!(retry_after["schema"]["type"], "integer");
            }
        }
    }
}

#[tokio::test]
async fn security_names_the_session_cookie_and_the_anti_forgery_header() {
    let (_t, doc) = document().await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "__Host-usher-session");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
    for (path, method, op) in api_operations(&doc) {
        let security = op["security"].as_array().unwrap_or_else(|| panic!("{method} {path}: no security"));
        let needs_session = op["responses"]["401"].is_object();
        assert_eq!(security.iter().any(|s| s.as_object().unwrap().is_empty()), !needs_session, "{method} {path}");
        for requirement in security.iter().filter_map(Value::as_object).filter(|s| !s.is_empty()) {
            assert!(requirement.contains_key("session"), "{method} {path}");
            assert_eq!(requirement.contains_key("csrf"), method == "post", "{method} {path}");
        }
    }
}

#[tokio::test]
async fn no_documented_path_takes_another_method() {
    // The anti-forgery guard checks POST only, because no route takes PUT, PATCH or DELETE.
    let (t, doc) = document().await;
    let c = t.client();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{id}", &"a".repeat(32)).replace("{token}", &"A".repeat(43));
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(item.get(method.as_str().to_lowercase()).is_none(), "{method} {path} is documented");
            let page = c.request(method.clone(), &concrete, &[], None).await;
            assert_eq!(page.status, 405, "{method} {path}: {}", page.body);
            assert!(page.headers.get("allow").is_some(), "{method} {path}");
        }
    }
}
