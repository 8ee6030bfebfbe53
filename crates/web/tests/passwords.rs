//! Signing in, passwords and sessions (issue 4): expiry, change, reset, rate limits,
//! the sessions page and the API, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp, reset_link, try_sign_in, user};
use reqwest::Method;
use serde_json::json;
use usher_domain::duration::Span;

const EMAIL: &str = "olive@example.org";

#[tokio::test]
async fn passwords_expire_after_90_days_and_must_be_changed_first() {
    let t = TestApp::start().await;
    t.operator().await;
    t.advance(Span::days(89)).await;
    let c = t.sign_in(EMAIL, PASSWORD).await;
    let home = c.get("/home").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Expires on 5 April 2026"), "the account page shows the expiry date");
    t.advance(Span::days(1)).await;
    let c = t.sign_in(EMAIL, PASSWORD).await;
    let home = c.get("/home").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.location().as_deref(), Some("/account/password"));
    let api = c.get("/api/v1/session").await;
    assert_eq!(api.json()["code"], "password_expired");
    let page = c.get("/account/password").await;
    assert_eq!(page.h1(), "Your password has expired");
    let same = c
        .post_form(
            "/account/password",
            &[("current_password", PASSWORD), ("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    assert!(same.body.contains("Choose a password you have not used before"));
    let done = c
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", "Fresh-Horse-Staple-3"),
                ("confirm_password", "Fresh-Horse-Staple-3"),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(c.get("/home").await.status, 200);
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_refuses_the_last_five() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.sign_in(EMAIL, PASSWORD).await;
    let other = t.sign_in(EMAIL, PASSWORD).await;
    let before = c.cookie("__Host-usher-session").unwrap();
    let wrong = c
        .post_form(
            "/account/password",
            &[
                ("current_password", "nope"),
                ("password", "Fresh-Horse-Staple-3"),
                ("confirm_password", "Fresh-Horse-Staple-3"),
            ],
        )
        .await;
    assert!(wrong.body.contains("Your current password is not right"));
    assert_eq!(user(&t, EMAIL).await.failed_sign_ins, 1, "guessing the current password counts towards the lock");
    let mut passwords = vec![PASSWORD.to_owned()];
    t.advance(Span::seconds_(1)).await; // each password set at its own second
    for i in 1..=5 {
        let next = format!("Fresh-Horse-Staple-{i}");
        let page = c
            .post_form(
                "/account/password",
                &[("current_password", passwords.last().unwrap()), ("password", &next), ("confirm_password", &next)],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        passwords.push(next);
        t.advance(Span::seconds_(1)).await;
    }
    assert_ne!(before, c.cookie("__Host-usher-session").unwrap(), "the session ID changes");
    let old = t.client();
    old.set_cookie("__Host-usher-session", &before);
    assert_eq!(old.get("/api/v1/session").await.status, 401, "the old cookie is dead");
    assert_eq!(other.get("/api/v1/session").await.status, 401, "other sessions ended");
    assert_eq!(c.get("/api/v1/session").await.status, 200, "this one carries on");
    // The last 5 (Fresh-Horse-Staple-1..5) cannot be reused; the original one now can.
    let reuse = c
        .post_form(
            "/account/password",
            &[
                ("current_password", "Fresh-Horse-Staple-5"),
                ("password", "Fresh-Horse-Staple-1"),
                ("confirm_password", "Fresh-Horse-Staple-1"),
            ],
        )
        .await;
    assert!(reuse.body.contains("your last 5 cannot be used again"));
    let back = c
        .post_form(
            "/account/password",
            &[("current_password", "Fresh-Horse-Staple-5"), ("password", PASSWORD), ("confirm_password", PASSWORD)],
        )
        .await;
    assert_eq!(back.status, 303);
    assert!(t.messages_to(EMAIL).await.iter().filter(|m| m.message.purpose == "password_changed").count() >= 6);
}

#[tokio::test]
async fn reset_links_are_single_use_last_an_hour_die_when_replaced_and_never_sign_in() {
    let t = TestApp::start().await;
    t.operator().await;
    let session = t.sign_in(EMAIL, PASSWORD).await;
    let c = t.client();
    c.get("/reset-password").await;
    let known = c.post_form("/reset-password", &[("email", EMAIL)]).await;
    let unknown = c.post_form("/reset-password", &[("email", "nobody@example.org")]).await;
    assert_eq!(known.status, 200);
    assert_eq!(
        common::masked(&known.body).replace(EMAIL, "X"),
        common::masked(&unknown.body).replace("nobody@example.org", "X"),
        "the same answer"
    );
    let first = reset_link(&t, EMAIL).await;
    t.advance(Span::minutes(1)).await;
    c.post_form("/reset-password", &[("email", EMAIL)]).await;
    let second = reset_link(&t, EMAIL).await;
    assert_ne!(first, second);
    assert_eq!(c.get(&first).await.status, 410, "a newer link kills the older");
    assert_eq!(c.get(&second).await.h1(), "Enter the code we emailed you", "the second factor comes first (S15)");
    t.advance(Span::hours(1)).await;
    assert_eq!(c.get(&second).await.status, 200, "still valid at exactly an hour");
    t.advance(Span::seconds_(1)).await;
    assert_eq!(c.get(&second).await.h1(), "This link has expired");

    t.advance(Span::minutes(1)).await;
    c.post_form("/reset-password", &[("email", EMAIL)]).await;
    let third = reset_link(&t, EMAIL).await;
    t.prove_reset(&c, &third, EMAIL).await;
    let weak = c.post_form(&third, &[("password", "weak"), ("confirm_password", "weak")]).await;
    assert_eq!(weak.status, 400);
    let done = c
        .post_form(&third, &[("password", "Reset-Horse-Staple-8"), ("confirm_password", "Reset-Horse-Staple-8")])
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location().as_deref(), Some("/sign-in?done=reset"), "sent to sign in, not signed in");
    assert!(!done.set_cookies().iter().any(|s| s.starts_with("__Host-usher-session=") && !s.contains("Max-Age=0")));
    assert!(c.get("/sign-in?done=reset").await.body.contains("Your password has been changed"));
    assert_eq!(session.get("/api/v1/session").await.status, 401, "every session ended");
    assert_eq!(c.get(&third).await.status, 410, "single use");
    assert!(t.messages_to(EMAIL).await.iter().any(|m| m.message.purpose == "password_changed"));
}

#[tokio::test]
async fn sign_in_and_reset_requests_are_rate_limited_and_change_nothing() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    c.get("/reset-password").await;
    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(c.post_form("/reset-password", &[("email", EMAIL)]).await.status);
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 20, "20 requests per IP per hour");
    let limited = c.post_form("/reset-password", &[("email", EMAIL)]).await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.h1(), "Too many attempts");
    let emails = t.messages_to(EMAIL).await.iter().filter(|m| m.message.purpose == "password_reset").count();
    assert_eq!(emails, 3, "at most 3 reset emails an hour to one address");
    let u = user(&t, EMAIL).await;
    assert_eq!((u.status.as_str(), u.failed_sign_ins), ("active", 0), "requests never change the account");

    let s = t.client();
    let mut last = 0;
    for i in 0..21 {
        last = try_sign_in(&s, &format!("someone{}@example.org", i % 2), "Wrong-pass-1").await.status;
    }
    assert_eq!(last, 400);
    for _ in 0..40 {
        last = try_sign_in(&s, "x@example.org", "Wrong-pass-1").await.status;
    }
    assert_eq!(last, 429, "60 sign-in attempts per IP per 15 minutes");
    t.advance(Span::minutes(15)).await;
    assert_eq!(try_sign_in(&s, EMAIL, PASSWORD).await.status, 303, "allowed again in the next window");
}

#[tokio::test]
async fn unknown_and_known_accounts_get_identical_answers() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    let unknown = try_sign_in(&c, "nobody@example.org", "Wrong-pass-1").await;
    let wrong = try_sign_in(&c, EMAIL, "Wrong-pass-1").await;
    let mask = |p: &common::Page, email: &str| common::masked(&p.body).replace(email, "EMAIL");
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(mask(&unknown, "nobody@example.org"), mask(&wrong, EMAIL));
    let api_unknown = c
        .api(Method::POST, "/api/v1/sign-in", Some(json!({"email": "nobody@example.org", "password": "x"})))
        .await
        .json();
    let api_wrong = c.api(Method::POST, "/api/v1/sign-in", Some(json!({"email": EMAIL, "password": "x"}))).await.json();
    assert_eq!(api_unknown["detail"], api_wrong["detail"]);
    assert_eq!(api_unknown["errors"], api_wrong["errors"]);
    let r1 = c.api(Method::POST, "/api/v1/password-resets", Some(json!({"email": "nobody@example.org"}))).await;
    let r2 = c.api(Method::POST, "/api/v1/password-resets", Some(json!({"email": EMAIL}))).await;
    assert_eq!((r1.status, r1.body), (r2.status, r2.body));
}

#[tokio::test]
async fn the_sessions_page_lists_and_ends_sessions() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.sign_in(EMAIL, PASSWORD).await;
    let phone = t.client();
    phone.get("/sign-in").await;
    phone
        .request(
            Method::POST,
            "/sign-in",
            &[
                ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
                ("sec-fetch-site", "same-origin"),
            ],
            Some((
                format!(
                    "csrf_token={}&email=olive%40example.org&password={PASSWORD}",
                    phone.cookie("__Host-usher-csrf").unwrap()
                ),
                "application/x-www-form-urlencoded",
            )),
        )
        .await;
    // The session that counts starts at the second step, from the same phone.
    phone.post_form("/sign-in/second-factor/email-code", &[]).await;
    let code = t.email_code(EMAIL).await;
    let second = phone
        .request(
            Method::POST,
            "/sign-in/second-factor",
            &[
                ("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"),
                ("sec-fetch-site", "same-origin"),
            ],
            Some((
                format!("csrf_token={}&method=email&code={code}", phone.cookie("__Host-usher-csrf").unwrap()),
                "application/x-www-form-urlencoded",
            )),
        )
        .await;
    assert_eq!(second.location().as_deref(), Some("/home"), "{}", second.body);
    let page = c.get("/account/sessions").await;
    assert_eq!(page.h1(), "Your sessions");
    assert!(page.body.contains("Safari on iOS"));
    assert!(page.body.contains("This session"));
    let list = c.get("/api/v1/sessions").await.json();
    let theirs = list.as_array().unwrap().iter().find(|s| s["browser"] == "Safari on iOS").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ended = c.post_form(&format!("/account/sessions/{theirs}/end"), &[]).await;
    assert_eq!(ended.status, 303);
    assert_eq!(phone.get("/api/v1/session").await.status, 401);
    let third = t.sign_in(EMAIL, PASSWORD).await;
    c.post_form("/account/sessions/end-others", &[]).await;
    assert_eq!(third.get("/api/v1/session").await.status, 401);
    assert_eq!(c.get("/api/v1/session").await.status, 200);
    let mine = c.get("/api/v1/sessions").await.json()[0]["id"].as_str().unwrap().to_owned();
    let out = c.post_form(&format!("/account/sessions/{mine}/end"), &[]).await;
    // Ending the session in use is signing out: the signed-out page (which names any services told).
    assert_eq!(out.location().as_deref(), Some("/signed-out"));
    assert_eq!(c.get("/api/v1/session").await.status, 401);
}

#[tokio::test]
async fn the_json_api_signs_in_changes_passwords_and_ends_sessions() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    let signed = c.api(Method::POST, "/api/v1/sign-in", Some(json!({"email": EMAIL, "password": PASSWORD}))).await;
    assert_eq!(signed.status, 200, "{}", signed.body);
    let body = signed.json();
    assert_eq!(body["session"]["email"], EMAIL);
    assert_eq!(body["password_expired"], false);
    assert_eq!(body["stage"], "second_factor");
    assert_eq!(c.cookie("__Host-usher-csrf").as_deref(), body["csrf_token"].as_str());
    t.api_second_factor(&c, EMAIL).await;
    let weak = c
        .api(
            Method::POST,
            "/api/v1/password",
            Some(json!({"current_password": PASSWORD, "password": "short", "confirm_password": "short"})),
        )
        .await;
    assert_eq!(weak.status, 400);
    assert_eq!(weak.json()["code"], "invalid_input");
    let changed = c
        .api(Method::POST, "/api/v1/password", Some(json!({"current_password": PASSWORD, "password": "Api-Horse-Staple-4", "confirm_password": "Api-Horse-Staple-4"})))
        .await;
    assert_eq!(changed.status, 204, "{}", changed.body);
    assert_eq!(c.get("/api/v1/session").await.status, 200);
    let out = c.api(Method::POST, "/api/v1/sign-out", None).await;
    assert_eq!(out.status, 204);
    assert_eq!(c.get("/api/v1/session").await.status, 401);
    let doc = t.client().get("/api/v1/openapi.json").await.json();
    for path in ["/api/v1/sign-in", "/api/v1/password", "/api/v1/password-resets", "/api/v1/sessions"] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[tokio::test]
async fn the_nist_profile_wants_length_and_never_expires() {
    let t = TestApp::start_with(|c| c.policy.profile = usher_domain::password::Profile::Nist).await;
    let link = t.setup_link().await;
    let c = t.client();
    c.get(&link).await;
    let short = c
        .post_form(
            &link,
            &[
                ("full_name", "Nia Nist"),
                ("email", "nia@example.org"),
                ("password", "Tr1cky-Horse!"),
                ("confirm_password", "Tr1cky-Horse!"),
            ],
        )
        .await;
    assert!(short.body.contains("Password must be 15 characters or more"));
    let ok = c
        .post_form(
            &link,
            &[
                ("full_name", "Nia Nist"),
                ("email", "nia@example.org"),
                ("password", "correct horse battery"),
                ("confirm_password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    t.advance(Span::days(400)).await;
    let c = t.sign_in("nia@example.org", "correct horse battery").await;
    let home = c.get("/home").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Does not expire"));
}

#[tokio::test]
async fn an_organisation_may_ask_for_longer_passwords_never_shorter() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    operator.get("/home").await;
    let short = operator
        .api(
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "Lax", "kind": "other", "min_password_length": 6})),
        )
        .await;
    assert_eq!(short.status, 400, "never looser than the deployment");
    let strict = operator
        .api(
            Method::POST,
            "/api/v1/organisations",
            Some(json!({"name": "Strict", "kind": "court", "min_password_length": 20})),
        )
        .await;
    assert_eq!(strict.status, 201, "{}", strict.body);
    let id = strict.json()["id"].as_str().unwrap().to_owned();
    operator
        .api(
            Method::POST,
            &format!("/api/v1/organisations/{id}/administrators"),
            Some(json!({"full_name": "Sid Strict", "email": "sid@strict.example", "mobile": "07700 900110"})),
        )
        .await;
    let path = t.activation_path("sid@strict.example").await;
    let c = t.client();
    c.get(&path).await;
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    c.post_form(&format!("{path}/send-code"), &[]).await;
    let code = t.sms_code("+447700900110").await;
    let page = c.post_form(&format!("{path}/code"), &[("code", &code)]).await;
    assert!(page.body.contains("20 characters or more"), "the organisation's rule is shown");
    let refused = c
        .post_form(
            &format!("{path}/password"),
            &[("password", "Tr1cky-Horse-42"), ("confirm_password", "Tr1cky-Horse-42")],
        )
        .await;
    assert!(refused.body.contains("Password must be 20 characters or more"));
    let ok = c
        .post_form(
            &format!("{path}/password"),
            &[("password", "Tr1cky-Horse-Battery-42"), ("confirm_password", "Tr1cky-Horse-Battery-42")],
        )
        .await;
    assert_eq!(ok.h1(), "Your account is activated");
}

#[tokio::test]
async fn a_reset_link_dies_when_the_password_changes_and_every_cookie_is_host_only_and_secure() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    c.get("/reset-password").await;
    c.post_form("/reset-password", &[("email", EMAIL)]).await;
    let link = reset_link(&t, EMAIL).await;
    // In the same second (the test clock stands still): the link must die all the same.
    let s = t.sign_in(EMAIL, PASSWORD).await;
    let changed = s
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", "Other-Horse-Staple-2"),
                ("confirm_password", "Other-Horse-Staple-2"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303);
    assert_eq!(c.get(&link).await.status, 410, "a password change kills an older reset link");

    // S20: every Set-Cookie, from pages and the API.
    let fresh = t.client();
    let mut cookies = fresh.get("/sign-in").await.set_cookies();
    cookies.extend(
        fresh.post_form("/sign-in", &[("email", EMAIL), ("password", "Other-Horse-Staple-2")]).await.set_cookies(),
    );
    cookies.extend(fresh.post_form("/sign-out", &[]).await.set_cookies());
    let api = t.client();
    cookies.extend(
        api.api(Method::POST, "/api/v1/sign-in", Some(json!({"email": EMAIL, "password": "Other-Horse-Staple-2"})))
            .await
            .set_cookies(),
    );
    assert!(cookies.len() >= 5, "{cookies:?}");
    for c in cookies {
        assert!(c.starts_with("__Host-"), "{c}");
        for attribute in ["Path=/", "HttpOnly", "Secure"] {
            assert!(c.contains(attribute), "{c} lacks {attribute}");
        }
        assert!(c.contains("SameSite=Lax") || c.contains("SameSite=Strict"), "{c}");
        assert!(!c.contains("Domain="), "{c}");
    }
}

/// Defect 8: a password change gave a fresh session whose 12-hour absolute limit started again.
/// The new session keeps the sign-in's start.
#[tokio::test]
async fn a_password_change_does_not_restart_the_absolute_session_limit() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    // Busy all day: a request every 25 minutes keeps the 30-minute idle limit away.
    let busy = |steps: usize| {
        let (t, c) = (&t, &c);
        async move {
            for _ in 0..steps {
                t.advance(Span::minutes(25)).await;
                assert_eq!(c.get("/home").await.status, 200, "still signed in");
            }
        }
    };
    busy(26).await; // 10 hours 50 minutes after the sign-in
    let changed = c
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("password", "Fresh-Horse-Staple-9"),
                ("confirm_password", "Fresh-Horse-Staple-9"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    busy(2).await; // 11 hours 40 minutes
    t.advance(Span::minutes(25)).await; // 12 hours and 5 minutes after the sign-in
    let late = c.get("/home").await;
    assert_ne!(late.status, 200, "the absolute limit counts from the sign-in, not from the change");
}
