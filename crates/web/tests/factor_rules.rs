//! Managing second factors (issue 5): changes need the password again, the last factor stays
//! where one is required, administrators and the operator reset factors without seeing them,
//! enforcement per organisation (tighten, never loosen), and the JSON API. On SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::factors::*;
use common::{ADMIN_PASSWORD, TestApp};
use reqwest::Method;
use serde_json::json;
use usher_domain::duration::Span;

#[tokio::test]
async fn changes_to_factors_and_phones_need_the_password_again() {
    let t = TestApp::start().await;
    let (c, _, _) = user_with_app(&t).await;
    // With only the session cookie, each change is sent to the password page (S24).
    for (path, fields) in [
        ("/account/security/recovery-codes", vec![]),
        ("/account/security/recovery-phone", vec![("phone", "07700 900555")]),
        ("/account/security/recovery-phone/remove", vec![]),
    ] {
        let page = c.post_form(path, &fields).await;
        assert!(
            page.location().is_some_and(|l| l.starts_with("/account/confirm-password")) || page.status == 404,
            "{path}: {} {:?}",
            page.status,
            page.location()
        );
    }
    let api = c.api(Method::POST, "/api/v1/factors/set-up/app", None).await;
    assert_eq!(api.status, 403, "{}", api.body);
    assert_eq!(api.json()["code"], "reauthentication_required");
    // A wrong password counts like any wrong password.
    let wrong =
        c.post_form("/account/confirm-password", &[("password", "Not-my-pass-1"), ("next", "/account/security")]).await;
    assert_eq!(wrong.status, 400);
    // The right one replaces the session (S21) and opens the door for 10 minutes.
    let before = c.cookie("__Host-usher-session").unwrap();
    confirm_password(&c, "/account/security").await;
    assert_ne!(c.cookie("__Host-usher-session").unwrap(), before);
    let codes = c.post_form("/account/security/recovery-codes", &[]).await;
    assert_eq!(codes.h1(), "Your new recovery codes", "{}", codes.body);
    t.advance(Span::minutes(11)).await;
    let late = c.post_form("/account/security/recovery-codes", &[]).await;
    assert!(late.location().is_some_and(|l| l.starts_with("/account/confirm-password")), "{:?}", late.location());
}

#[tokio::test]
async fn the_last_factor_cannot_be_removed_where_one_is_required() {
    let t = TestApp::start().await;
    let (c, _, _) = user_with_app(&t).await;
    confirm_password(&c, "/account/security").await;
    let page = c.get("/account/security").await;
    assert!(page.body.contains("cannot remove your only one"), "{}", page.body);
    let id = {
        let mut db = db(&t).await;
        sqlx::query_scalar::<_, String>(
            "SELECT id FROM factors WHERE confirmed_at IS NOT NULL AND removed_at IS NULL AND kind = 'app'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap()
    };
    let refused = c.post_form(&format!("/account/security/factors/{id}/remove"), &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
}

#[tokio::test]
async fn an_administrator_resets_factors_without_seeing_them_and_the_user_sets_up_again() {
    let t = TestApp::start().await;
    let (user, _, admin) = user_with_app(&t).await;
    let id = {
        let mut db = db(&t).await;
        sqlx::query_scalar::<_, String>("SELECT id FROM users WHERE email = $1")
            .bind(USER_EMAIL)
            .fetch_one(&mut db)
            .await
            .unwrap()
    };
    let listing = admin.api(Method::GET, &format!("/api/v1/users/{id}"), None).await.body;
    assert!(!listing.contains("secret") && !listing.contains("otpauth"), "{listing}");
    let page = admin.get(&format!("/admin/users/{id}")).await;
    assert!(page.body.contains("Reset second factors"), "{}", page.body);
    let reset = admin.post_form(&format!("/admin/users/{id}/reset-factors"), &[]).await;
    assert_eq!(reset.location().as_deref(), Some(format!("/admin/users/{id}?done=factors").as_str()), "{}", reset.body);
    assert_eq!(user.get("/home").await.location().as_deref(), Some("/sign-in"), "signed out everywhere");
    let mail = t.messages_to(USER_EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "factors_reset"));
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/set-up"));
}

#[tokio::test]
async fn an_organisation_that_makes_second_factors_optional_signs_in_with_the_password() {
    // Only where the deployment itself leaves second factors optional (an organisation may
    // tighten the deployment's rules, never loosen them).
    let t = TestApp::start_with(|c| c.mfa.required = false).await;
    let operator = t.operator().await;
    let made = operator
        .api(
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "Open Chambers", "kind": "chambers", "second_factor": "optional", "email_codes": "not_allowed"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.json()["second_factor_required"], false);
    let org = made.json()["id"].as_str().unwrap().to_owned();
    let invited = operator
        .api(
            Method::POST,
            &format!("/api/v1/organisations/{org}/administrators"),
            Some(json!({"full_name": "Oona Admin", "email": "oona@chambers.example", "mobile": "07700 900777"})),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let path = t.activation_path("oona@chambers.example").await;
    t.activate(&path, "+447700900777", ADMIN_PASSWORD).await;
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", "oona@chambers.example"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/home"), "no second factor needed");
    // Email codes are switched off for this organisation: only the app is offered.
    confirm_password_as(&c, ADMIN_PASSWORD, "/set-up").await;
    let setup = c.get("/set-up").await;
    assert!(!setup.body.contains("/set-up/email"), "{}", setup.body);
    let refused = c.post_form("/set-up/email/send", &[]).await;
    assert_eq!(refused.status, 403);

    // The operator tightens the rule: the next sign-in must set up a factor first.
    let page = operator.get(&format!("/operator/organisations/{org}")).await;
    assert!(page.body.contains("Save second factor rules"), "{}", page.body);
    let saved = operator
        .post_form(
            &format!("/operator/organisations/{org}/second-factors"),
            &[("second_factor", "required"), ("email_codes", "default")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", "oona@chambers.example"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/set-up"));
    assert!(c.get("/set-up").await.body.contains("/set-up/email"), "email codes back to the default: allowed");
}

/// Defect 8: the operator could make an organisation's second factor optional while the
/// deployment requires one. An organisation may only tighten the deployment's rules.
#[tokio::test]
async fn an_organisation_cannot_loosen_the_deployments_second_factor_rules() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let made = operator
        .api(
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "Lax Chambers", "kind": "chambers", "second_factor": "optional"})),
        )
        .await;
    assert_eq!(made.status, 400, "{}", made.body);
    assert!(made.body.contains("cannot be made optional"), "{}", made.body);
    let made = operator
        .api(Method::POST, "/api/v1/organisations", Some(json!({"name": "Strict Chambers", "kind": "chambers"})))
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let org = made.json()["id"].as_str().unwrap().to_owned();
    operator.get(&format!("/operator/organisations/{org}")).await;
    // (Emailed codes switched off for the deployment cannot be allowed either: the domain's
    // policy tests prove it; this operator signs in with emailed codes.)
    let page = operator
        .post_form(
            &format!("/operator/organisations/{org}/second-factors"),
            &[("second_factor", "optional"), ("email_codes", "default")],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("cannot be made optional"), "{}", page.body);
    let saved = operator.api(Method::GET, &format!("/api/v1/organisations/{org}"), None).await.json();
    assert_ne!(saved["second_factor_required"], false, "nothing changed: {saved}");
}

#[tokio::test]
async fn the_api_signs_in_with_a_second_factor() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    t.advance(Span::seconds_(30)).await;
    let c = t.client();
    let signed =
        c.api(Method::POST, "/api/v1/sign-in", Some(json!({"email": USER_EMAIL, "password": USER_PASSWORD}))).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    assert_eq!(signed.json()["stage"], "second_factor");
    assert_eq!(c.api(Method::GET, "/api/v1/factors", None).await.json()["code"], "second_factor_required");
    let code = pyotp_code(&uri, t.now().await.unix());
    let done = c.api(Method::POST, "/api/v1/sign-in/second-factor", Some(json!({"method": "app", "code": code}))).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let factors = c.api(Method::GET, "/api/v1/factors", None).await;
    assert_eq!(factors.status, 200, "{}", factors.body);
    assert_eq!(factors.json()["factors"][0]["kind"], "app");
    assert!(!factors.body.contains("otpauth"));
}

#[tokio::test]
async fn wrong_set_up_checks_count_against_the_account_whatever_the_session() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let mut c = c;
    for round in 0..5 {
        if round > 0 {
            c = t.client();
            c.get("/sign-in").await;
            let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
            assert_eq!(page.location().as_deref(), Some("/set-up"), "round {round}");
        }
        t.advance(Span::minutes(1)).await;
        c.post_form("/set-up/app/send-code", &[]).await;
        assert_eq!(c.post_form("/set-up/app/check", &[("code", "000000")]).await.status, 400);
    }
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.status, 400, "five wrong codes in all lock the account");
}

#[tokio::test]
async fn a_password_alone_is_not_a_sign_in_and_an_administrator_cannot_reset_their_own_factors() {
    let t = TestApp::start().await;
    let (_, _, admin) = user_with_app(&t).await;
    let me = admin.api(Method::GET, "/api/v1/session", None).await.json()["user_id"].as_str().unwrap().to_owned();
    let own = admin.api(Method::POST, &format!("/api/v1/users/{me}/factors/reset"), None).await;
    assert_eq!(own.status, 403, "{}", own.body);
    let mut db = db(&t).await;
    let before: Option<i64> = sqlx::query_scalar("SELECT last_sign_in_at FROM users WHERE email = $1")
        .bind(USER_EMAIL)
        .fetch_one(&mut db)
        .await
        .unwrap();
    t.advance(Span::days(1)).await;
    password_step(&t).await;
    let after: Option<i64> = sqlx::query_scalar("SELECT last_sign_in_at FROM users WHERE email = $1")
        .bind(USER_EMAIL)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(before, after, "only a full sign-in counts");
}

#[tokio::test]
async fn the_operator_resets_an_administrators_factors() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (org, _) = t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    let page = operator.get(&format!("/operator/organisations/{org}")).await;
    assert!(page.body.contains("Reset second factors"), "{}", page.body);
    let id = page.body.split("/operator/administrators/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let done = operator.post_form(&format!("/operator/administrators/{id}/reset-factors"), &[]).await;
    assert_eq!(done.location().as_deref(), Some(format!("/operator/organisations/{org}?done=factors").as_str()));
    assert!(t.messages_to("admin@lawfirm.example").await.iter().any(|m| m.message.purpose == "factors_reset"));
    let c = t.client();
    c.get("/sign-in").await;
    let next = c.post_form("/sign-in", &[("email", "admin@lawfirm.example"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(next.location().as_deref(), Some("/set-up"), "they set up a new factor");
    // Only administrators: the operator's own account is not reset this way.
    let me = operator.api(Method::GET, "/api/v1/session", None).await.json()["user_id"].as_str().unwrap().to_owned();
    assert_eq!(operator.post_form(&format!("/operator/administrators/{me}/reset-factors"), &[]).await.status, 404);
}

/// Found in review: switching emailed codes off for an organisation left its people who had only emailed
/// codes signing in with them. Such a person is now led to set up another factor instead.
#[tokio::test]
async fn switching_emailed_codes_off_stops_them_at_sign_in_and_leads_to_set_up() {
    let t = TestApp::start().await;
    let waiting = user_with_email_codes(&t).await;
    let operator = t.sign_in("olive@example.org", common::PASSWORD).await;
    let list = operator.api(Method::GET, "/api/v1/organisations", None).await;
    let org = list.json().as_array().unwrap().iter().find(|o| o["name"] == "Lamb Law").expect("the organisation")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved = operator
        .post_form(
            &format!("/operator/organisations/{org}/second-factors"),
            &[("second_factor", "required"), ("email_codes", "not_allowed")],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);

    // A sign-in already at the second step can no longer have a code emailed.
    let sent_before = t.messages_to(USER_EMAIL).await.len();
    let refused = waiting.post_form("/sign-in/second-factor/email-code", &[]).await;
    assert_ne!(
        refused.location().as_deref(),
        Some("/sign-in/second-factor?method=email&sent=email"),
        "{}",
        refused.body
    );
    assert_eq!(t.messages_to(USER_EMAIL).await.len(), sent_before, "no code is emailed");

    // A new sign-in goes to set-up, which offers the app only.
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/set-up"), "{}", page.body);
    let setup = c.get("/set-up").await;
    assert!(!setup.body.contains("/set-up/email"), "{}", setup.body);
}
