//! Registering the services that sign in with Usher, by the operator's pages and the JSON API:
//! a secret shown once and working at the token endpoints, bad input named field by field and
//! changing nothing, a new secret with an overlap, disabling at once, and only the operator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestApp};
use reqwest::Method;
use serde_json::json;

/// Whether `id` and `secret` prove the client at the introspection endpoint.
async fn secret_works(t: &TestApp, id: &str, secret: &str) -> bool {
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{id}:{secret}"));
    let answer = t
        .client()
        .request(
            Method::POST,
            "/oidc/introspect",
            &[("authorization", &format!("Basic {basic}"))],
            Some(("token=nothing".to_owned(), "application/x-www-form-urlencoded")),
        )
        .await;
    match answer.status {
        200 => true,
        401 => false,
        other => panic!("introspection answered {other}: {}", answer.body),
    }
}

async fn count(op: &Client) -> usize {
    op.api(Method::GET, "/api/v1/clients", None).await.json().as_array().unwrap().len()
}

#[tokio::test]
async fn the_api_registers_a_client_whose_secret_is_shown_once_and_works() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let made = op
        .api(
            Method::POST,
            "/api/v1/clients",
            Some(json!({
                "name": "Court platform",
                "redirect_uris": ["https://court.example/callback"],
                "organisation_kinds": ["law_firm", "chambers"],
                "scopes": ["openid", "email"],
            })),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let body = made.json();
    let id = body["client"]["client_id"].as_str().unwrap().to_owned();
    let secret = body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(body["issuer"], t.base.as_str());
    assert_eq!(body["client"]["organisation_kinds"], json!(["law_firm", "chambers"]));
    assert_eq!(body["client"]["token_endpoint_auth_method"], "client_secret_basic");
    assert_eq!(body["client"]["second_factor_required"], true);
    assert!(secret_works(&t, &id, &secret).await);
    assert!(!secret_works(&t, &id, "not-the-secret").await);
    let shown = op.api(Method::GET, &format!("/api/v1/clients/{id}"), None).await;
    assert_eq!(shown.status, 200);
    assert!(!shown.body.contains(&secret), "the secret is never shown again");
    let listed = op.api(Method::GET, "/api/v1/clients", None).await;
    assert!(!listed.body.contains(&secret));
    assert_eq!(count(&op).await, 1);
}

#[tokio::test]
async fn bad_registrations_name_each_field_and_change_nothing() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let refused = op
        .api(
            Method::POST,
            "/api/v1/clients",
            Some(json!({
                "name": "",
                "redirect_uris": ["http://court.example/callback"],
                "token_endpoint_auth_method": "magic",
                "organisation_kinds": ["bakery"],
                "access_token_seconds": 999_999,
            })),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    let fields: Vec<String> =
        refused.json()["errors"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap().to_owned()).collect();
    for f in ["name", "redirect_uris", "auth_method", "organisation_kinds", "access_token_seconds"] {
        assert!(fields.iter().any(|g| g == f), "{f} in {fields:?}");
    }
    let private = op
        .api(
            Method::POST,
            "/api/v1/clients",
            Some(json!({"name": "Keyed", "redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "private_key_jwt"})),
        )
        .await;
    assert_eq!(private.status, 400, "a private_key_jwt client needs its keys: {}", private.body);
    let unknown =
        op.api(Method::POST, "/api/v1/clients", Some(json!({"name": "X", "redirect_uris": [], "colour": 1}))).await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert_eq!(count(&op).await, 0, "nothing was registered");
}

#[tokio::test]
async fn a_new_secret_overlaps_the_old_and_disabling_stops_the_client_at_once() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let made = op
        .api(Method::POST, "/api/v1/clients", Some(json!({"name": "Court", "redirect_uris": ["https://c.example/cb"]})))
        .await
        .json();
    let id = made["client"]["client_id"].as_str().unwrap().to_owned();
    let old = made["client_secret"].as_str().unwrap().to_owned();
    let rotated =
        op.api(Method::POST, &format!("/api/v1/clients/{id}/secret"), Some(json!({"overlap_seconds": 120}))).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.json()["client_secret"].as_str().unwrap().to_owned();
    assert!(secret_works(&t, &id, &new).await && secret_works(&t, &id, &old).await, "both during the overlap");
    t.advance(usher_domain::duration::Span::minutes(3)).await;
    assert!(secret_works(&t, &id, &new).await);
    assert!(!secret_works(&t, &id, &old).await, "the old one stops after the overlap");
    let out_of_range =
        op.api(Method::POST, &format!("/api/v1/clients/{id}/secret"), Some(json!({"overlap_seconds": -1}))).await;
    assert_eq!(out_of_range.status, 400, "{}", out_of_range.body);
    assert!(secret_works(&t, &id, &new).await, "a refused rotation changes nothing");

    let disabled = op.api(Method::POST, &format!("/api/v1/clients/{id}/disable"), None).await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert!(disabled.json()["disabled_at"].is_string());
    assert!(!secret_works(&t, &id, &new).await, "a disabled client is refused at once");
    let again = op.api(Method::POST, &format!("/api/v1/clients/{id}/disable"), None).await;
    assert_eq!(again.status, 409);
    let missing = op.api(Method::GET, "/api/v1/clients/00000000000000000000000000000000", None).await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn only_the_operator_manages_clients() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&op, "Hale & Co", "hale.example", "07700 900123").await;
    assert_eq!(admin.api(Method::GET, "/api/v1/clients", None).await.status, 403);
    let tried = admin
        .api(Method::POST, "/api/v1/clients", Some(json!({"name": "Mine", "redirect_uris": ["https://m.example/cb"]})))
        .await;
    assert_eq!(tried.status, 403);
    assert_eq!(admin.get("/operator/clients").await.status, 403);
    assert_eq!(t.client().api(Method::GET, "/api/v1/clients", None).await.status, 401);
    assert_eq!(count(&op).await, 0);
}

#[tokio::test]
async fn the_operator_registers_rotates_and_disables_on_the_pages() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let list = op.get("/operator/clients").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains("No services are registered yet"));
    let form = op.get("/operator/clients/new").await;
    assert_eq!(form.h1(), "Register a service");

    let wrong = op
        .post_form("/operator/clients/new", &[("name", "Court platform"), ("redirect_uris", "ftp://court.example/cb")])
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("govuk-error-summary"), "{}", wrong.body);
    assert!(wrong.body.contains("ftp://court.example/cb"), "what was typed is kept");

    let made = op
        .post_form(
            "/operator/clients/new",
            &[
                ("name", "Court platform"),
                ("redirect_uris", "https://court.example/callback\nhttps://court.example/other"),
                ("auth_method", "client_secret_basic"),
                ("scopes", "email"),
                ("scopes", "organisation"),
                ("organisation_kinds", "law_firm"),
                ("organisation_kinds", "chambers"),
                ("second_factor", "yes"),
                ("subject_type", "pairwise"),
                ("access_token_seconds", ""),
            ],
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.h1(), "Service registered");
    let grab = |body: &str, id: &str| {
        let start = body.find(&format!("id=\"{id}\"")).unwrap();
        let rest = &body[start..];
        rest[rest.find('>').unwrap() + 1..rest.find("</code>").unwrap()].to_owned()
    };
    let id = grab(&made.body, "client-id");
    let secret = grab(&made.body, "client-secret");
    assert!(secret_works(&t, &id, &secret).await);
    let api = op.api(Method::GET, &format!("/api/v1/clients/{id}"), None).await.json();
    assert_eq!(api["scopes"], json!(["openid", "email", "organisation"]));
    assert_eq!(api["organisation_kinds"], json!(["law_firm", "chambers"]));
    assert_eq!(api["redirect_uris"].as_array().unwrap().len(), 2);

    let page = op.get(&format!("/operator/clients/{id}")).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.h1(), "Court platform");
    assert!(!page.body.contains(&secret), "the secret is shown once only");

    let bad_overlap = op.post_form(&format!("/operator/clients/{id}/secret"), &[("overlap_days", "soon")]).await;
    assert_eq!(bad_overlap.status, 400);
    assert!(bad_overlap.body.contains("govuk-error-summary"));
    let rotated = op.post_form(&format!("/operator/clients/{id}/secret"), &[("overlap_days", "0")]).await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = grab(&rotated.body, "client-secret");
    assert!(secret_works(&t, &id, &new).await);
    assert!(!secret_works(&t, &id, &secret).await, "no overlap: the old secret stops at once");

    let disabled = op.post_form(&format!("/operator/clients/{id}/disable"), &[]).await;
    assert_eq!(disabled.status, 303);
    assert_eq!(disabled.location().unwrap(), format!("/operator/clients/{id}?done=disabled"));
    let page = op.get(&disabled.location().unwrap()).await;
    assert!(page.body.contains("Service disabled"));
    assert!(!page.body.contains("Make a new secret"), "nothing more to do with it");
    assert!(!secret_works(&t, &id, &new).await);
    let list = op.get("/operator/clients").await;
    assert!(list.body.contains("Disabled"));
}
