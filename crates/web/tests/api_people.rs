//! Organisations, people and activation through the JSON API.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn the_whole_journey_through_the_json_api() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    operator.get("/home").await;
    let org = operator
        .api(
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "API Chambers", "kind": "chambers", "email_domains": ["api.example"]})),
        )
        .await;
    assert_eq!(org.status, 201, "{}", org.body);
    let org = org.json();
    assert_eq!(org["email_domains"], json!(["api.example"]));
    let id = org["id"].as_str().unwrap().to_owned();
    let bad = operator.api(Method::POST, "/api/v1/organisations", Some(json!({"name": "", "kind": "bank"}))).await;
    assert_eq!(bad.status, 400);
    let p = bad.json();
    assert_eq!(p["code"], "invalid_input");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "kind"]);
    assert_eq!(
        operator.api(Method::POST, "/api/v1/organisations", Some(json!({"name": 5}))).await.json()["code"],
        "invalid_input"
    );

    let admin = operator
        .api(
            Method::POST,
            &format!("/api/v1/organisations/{id}/administrators"),
            Some(json!({"full_name": "Api Admin", "email": "admin@api.example", "mobile": "07700 900060"})),
        )
        .await;
    assert_eq!(admin.status, 201, "{}", admin.body);
    assert_eq!(admin.json()["status"], "invited");
    assert_eq!(admin.json()["mobile_last_four"], "0060");
    let detail = operator.get(&format!("/api/v1/organisations/{id}")).await.json();
    assert_eq!(detail["administrators"][0]["email"], "admin@api.example");

    // The administrator activates through the API.
    let path = t.activation_path("admin@api.example").await;
    let token = path.rsplit('/').next().unwrap().to_owned();
    let anyone = t.client();
    let a = anyone.get(&format!("/api/v1/activations/{token}")).await.json();
    assert_eq!(a["step"], "terms");
    assert_eq!(a["administrator"], "Olive Operator, who runs Usher");
    let version = a["terms"]["version"].as_i64().unwrap();
    let a = anyone
        .api(
            Method::POST,
            &format!("/api/v1/activations/{token}/terms"),
            Some(json!({"agree": true, "version": version})),
        )
        .await;
    assert_eq!(a.json()["step"], "confirm_mobile");
    let a = anyone.api(Method::POST, &format!("/api/v1/activations/{token}/code-requests"), None).await;
    assert_eq!(a.json()["step"], "enter_code");
    let too_soon = anyone.api(Method::POST, &format!("/api/v1/activations/{token}/code-requests"), None).await;
    assert_eq!(too_soon.status, 429);
    assert_eq!(too_soon.headers.get("retry-after").unwrap(), "60", "a text code can be sent again after a minute");
    let code = t.sms_code("+447700900060").await;
    let a = anyone.api(Method::POST, &format!("/api/v1/activations/{token}/code"), Some(json!({"code": code}))).await;
    assert_eq!(a.json()["step"], "password");
    let weak = anyone
        .api(
            Method::POST,
            &format!("/api/v1/activations/{token}/password"),
            Some(json!({"password": "short", "confirm_password": "short"})),
        )
        .await;
    assert_eq!(weak.status, 400);
    let errors = weak.json()["errors"].as_array().unwrap().clone();
    assert_eq!(errors.len(), 1, "one message for the field, naming every rule it breaks: {errors:?}");
    assert_eq!(
        errors[0]["message"],
        "Password must be 8 characters or more and include an uppercase letter, a number and a special character, such as ! ? # or %"
    );
    let done = anyone
        .api(
            Method::POST,
            &format!("/api/v1/activations/{token}/password"),
            Some(json!({"password": common::ADMIN_PASSWORD, "confirm_password": common::ADMIN_PASSWORD})),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.json()["email"], "admin@api.example");
    assert_eq!(anyone.get(&format!("/api/v1/activations/{token}")).await.json()["code"], "link_used");

    let admin = t.sign_in("admin@api.example", common::ADMIN_PASSWORD).await;
    let added = admin
        .api(
            Method::POST,
            "/api/v1/users",
            Some(json!({"full_name": "Jo User", "email": "jo@api.example", "mobile": "+44 7700 900061"})),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let jo = added.json()["id"].as_str().unwrap().to_owned();
    let listed = admin.get("/api/v1/users?q=jo").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let moved =
        admin.api(Method::POST, &format!("/api/v1/users/{jo}/mobile"), Some(json!({"mobile": "07700 900062"}))).await;
    assert_eq!(moved.json()["mobile_last_four"], "0062");
    let resent = admin.api(Method::POST, &format!("/api/v1/users/{jo}/activation-email"), None).await;
    assert_eq!(resent.status, 200);
    assert_eq!(admin.get("/api/v1/users/00000000000000000000000000000000").await.json()["code"], "not_found");
    assert_eq!(operator.get("/api/v1/users").await.status, 403);
    assert_eq!(t.client().get("/api/v1/users").await.status, 401);
    assert_eq!(t.client().get("/api/v1/nothing-here").await.json()["code"], "not_found");

    let doc = t.client().get("/api/v1/openapi.json").await.json();
    for path in ["/api/v1/organisations", "/api/v1/users/{id}/mobile", "/api/v1/activations/{token}/password"] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}
