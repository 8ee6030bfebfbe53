//! The foundation, end to end through HTTP: operator set-up, sessions, CSRF, headers, errors,
//! the test clock API and the OpenAPI document. Runs on SQLite and PostgreSQL
//! (`USHER_TEST_DATABASE`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp};
use usher_domain::duration::Span;
use usher_domain::message::Channel;

#[tokio::test]
async fn operator_sets_up_an_account_and_lands_on_the_home_page() {
    let t = TestApp::start().await;
    let link = t.setup_link().await;
    let c = t.client();

    let form = c.get(&link).await;
    assert_eq!(form.status, 200);
    assert_eq!(form.h1(), "Set up your operator account");

    // Every mistake is reported at once, field by field, and nothing is created.
    let bad = c
        .post_form(
            &link,
            &[("full_name", ""), ("email", "not-an-email"), ("password", "short"), ("confirm_password", "")],
        )
        .await;
    assert_eq!(bad.status, 400);
    for message in [
        "Enter your full name",
        "Enter an email address in the correct format, like name@example.com",
        "Password must be 8 characters or more and include an uppercase letter, a number and a special character, such as ! ? # or %",
    ] {
        assert!(bad.body.contains(message), "missing {message:?}");
    }
    assert!(bad.body.contains("<title>Error: "), "the title says there is an error");
    assert_eq!(t.app.store.recent_messages(10).await.unwrap().len(), 0);

    let mismatch = c
        .post_form(
            &link,
            &[
                ("full_name", "Olive Operator"),
                ("email", "olive@example.org"),
                ("password", PASSWORD),
                ("confirm_password", "Tr1cky-Horse-43"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.body.contains("Passwords do not match"));
    assert!(mismatch.body.contains("value=\"Olive Operator\""), "answers are kept");

    let done = c
        .post_form(
            &link,
            &[
                ("full_name", "Olive Operator"),
                ("email", "Olive@Example.org"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location().as_deref(), Some("/set-up"), "a second factor is set up first");
    let session_cookie =
        done.set_cookies().into_iter().find(|c| c.starts_with("__Host-usher-session=")).expect("session cookie");
    for attribute in ["Path=/", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(session_cookie.contains(attribute), "{session_cookie} lacks {attribute}");
    }
    assert!(!session_cookie.contains("Domain"), "{session_cookie}");
    let value = c.cookie("__Host-usher-session").unwrap();
    assert_eq!(value.len(), 43, "256 bits in URL-safe base64");
    assert_eq!(c.get("/home").await.location().as_deref(), Some("/set-up"), "nothing else until then");
    t.second_step(&c, done, "olive@example.org", PASSWORD).await;

    let home = c.get("/home").await;
    assert_eq!(home.h1(), "Operator home");
    assert!(home.body.contains("Olive Operator"));
    assert!(home.body.contains("olive@example.org"), "email is normalised");
    assert_eq!(home.headers.get("cache-control").unwrap(), "no-store");

    // The link is single use, and no second set-up link is ever made once an operator exists.
    let again = c.get(&link).await;
    assert_eq!(again.status, 410);
    assert_eq!(again.h1(), "This link has already been used");
    assert!(t.app.operator_setup_link(t.now().await).await.unwrap().is_none());

    // The confirmation email went through the outbox, from the one sender, with the footer.
    let messages = t.deliver().await;
    let mail = messages.iter().find(|m| m.message.purpose == "operator_account_created").expect("email");
    assert_eq!(mail.message.channel, Channel::Email);
    assert_eq!(mail.message.recipient, "olive@example.org");
    assert!(mail.message.body.contains("only ever come from noreply@usher.localhost"));
    assert!(mail.message.body.contains(&t.base));
    assert_eq!(mail.status.as_str(), "sent");
    for m in &messages {
        for word in m.message.body.split_whitespace().filter(|w| w.contains("://")) {
            assert!(word.starts_with(&t.base), "emails link only to the base URL: {word}");
        }
    }

    // The stored password is an Argon2id hash with its parameters.
    let mut tx = t.app.store.begin().await.unwrap();
    let user = tx
        .user_by_email(&usher_domain::email::EmailAddress::parse("olive@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(user.password_hash.unwrap().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[tokio::test]
async fn setup_link_expires_after_24_hours_and_a_new_one_replaces_it() {
    let t = TestApp::start().await;
    let first = t.setup_link().await;
    let c = t.client();
    t.advance(Span::hours(24)).await;
    assert_eq!(c.get(&first).await.status, 200, "still valid at exactly 24 hours");
    t.advance(Span::seconds_(1)).await;
    let expired = c.get(&first).await;
    assert_eq!(expired.status, 410);
    assert_eq!(expired.h1(), "This link has expired");

    let second = t.setup_link().await;
    let third = t.setup_link().await;
    assert_eq!(c.get(&second).await.h1(), "This link has already been used", "a newer link kills the older");
    assert_eq!(c.get(&third).await.status, 200);
    // A stored hash is not a link.
    assert_eq!(c.get("/setup/not-a-token").await.status, 404);
}

#[tokio::test]
async fn forms_without_the_token_or_from_another_site_are_refused_and_change_nothing() {
    let t = TestApp::start().await;
    let link = t.setup_link().await;
    let c = t.client();
    c.get(&link).await;
    let fields =
        [("full_name", "Mallory"), ("email", "m@example.org"), ("password", PASSWORD), ("confirm_password", PASSWORD)];

    let no_token = c.post_raw(&link, &fields, &[("sec-fetch-site", "same-origin")]).await;
    assert_eq!(no_token.status, 403);
    assert_eq!(no_token.h1(), "This form has expired");

    let token = c.cookie("__Host-usher-csrf").unwrap();
    let mut with_token = vec![("csrf_token", token.as_str())];
    with_token.extend_from_slice(&fields);
    assert_eq!(c.post_raw(&link, &with_token, &[("sec-fetch-site", "cross-site")]).await.status, 403);
    assert_eq!(c.post_raw(&link, &with_token, &[("origin", "https://evil.example")]).await.status, 403);
    let wrong = [("csrf_token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), ("full_name", "Mallory")];
    assert_eq!(c.post_raw(&link, &wrong, &[("sec-fetch-site", "same-origin")]).await.status, 403);

    // Nothing changed: the link still works.
    assert_eq!(c.get(&link).await.status, 200);
    // The JSON API refuses anything but application/json.
    let form_to_api = c.post_raw("/api/v1/test-clock", &[("advance", "1d")], &[]).await;
    assert_eq!(form_to_api.status, 403);
    assert_eq!(form_to_api.json()["code"], "csrf_rejected");
}

#[tokio::test]
async fn every_route_sends_the_security_headers() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    for path in [
        "/",
        "/home",
        "/sign-in",
        "/dev/mailbox",
        "/no-such-page",
        "/api/v1/session",
        "/api/v1/openapi.json",
        "/healthz",
        "/assets/usher.css",
    ] {
        let page = c.get(path).await;
        let h = &page.headers;
        let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP")).to_str().unwrap();
        for directive in ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "script-src 'self' 'nonce-"]
        {
            assert!(csp.contains(directive), "{path}: CSP lacks {directive}");
        }
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff", "{path}");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer", "{path}");
        assert!(h.get("x-request-id").is_some(), "{path}");
        assert_eq!(h.get("cache-control").unwrap(), "no-store", "{path}: signed in, so nothing is cached");
        assert!(h.get("strict-transport-security").is_none(), "{path}: no HSTS over plain http");
    }
    // Each page gets its own nonce, used by its scripts.
    let a = c.get("/home").await;
    let b = c.get("/home").await;
    let nonce = |p: &common::Page| {
        p.headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .split("'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_owned()
    };
    assert_ne!(nonce(&a), nonce(&b));
    assert!(a.body.contains(&format!("nonce=\"{}\"", nonce(&a))));
}

#[tokio::test]
async fn hsts_is_sent_when_served_over_https() {
    let t = TestApp::start_with(|c| c.public_base_url = "https://signin.example.org".into()).await;
    let page = t.client().get("/").await;
    assert!(page.headers.get("strict-transport-security").unwrap().to_str().unwrap().contains("max-age="));
}

#[tokio::test]
async fn sessions_end_after_idle_and_absolute_timeouts() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    t.advance(Span::minutes(30)).await;
    assert_eq!(c.get("/api/v1/session").await.status, 200, "30 minutes idle is still within the limit");
    // Activity keeps it alive up to the absolute limit of 12 hours.
    for _ in 0..23 {
        t.advance(Span::minutes(29)).await;
        assert_eq!(c.get("/api/v1/session").await.status, 200);
    }
    t.advance(Span::minutes(29)).await; // 12h 17m after sign-in
    let page = c.get("/api/v1/session").await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["code"], "unauthenticated");

    let t = TestApp::start().await;
    let c = t.operator().await;
    t.advance(Span::minutes(30)).await;
    t.advance(Span::seconds_(1)).await;
    assert_eq!(c.get("/api/v1/session").await.status, 401, "30 minutes and a second idle");
    let home = c.get("/home").await;
    assert_eq!(home.status, 303);
    assert_eq!(home.location().as_deref(), Some("/sign-in"));
}

#[tokio::test]
async fn sign_out_ends_the_session_for_good() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    let old = c.cookie("__Host-usher-session").unwrap();
    let out = c.post_form("/sign-out", &[]).await;
    assert_eq!(out.status, 303);
    assert!(out.set_cookies().iter().any(|s| s.starts_with("__Host-usher-session=;") && s.contains("Max-Age=0")));
    let replay = t.client();
    replay.set_cookie("__Host-usher-session", &old);
    assert_eq!(replay.get("/api/v1/session").await.status, 401);
}

#[tokio::test]
async fn sign_in_rotates_the_session_and_four_wrong_passwords_lock_the_account() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    let first = c.cookie("__Host-usher-session").unwrap();
    c.get("/sign-in").await;
    let again = c.post_form("/sign-in", &[("email", "olive@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(again.status, 303);
    let second = c.cookie("__Host-usher-session").unwrap();
    assert_ne!(first, second, "a new session ID at sign-in");
    let old = t.client();
    old.set_cookie("__Host-usher-session", &first);
    assert_eq!(old.get("/api/v1/session").await.status, 401, "the old session is dead");

    let stranger = t.client();
    stranger.get("/sign-in").await;
    let unknown =
        stranger.post_form("/sign-in", &[("email", "nobody@example.org"), ("password", "Wrong-pass-1")]).await;
    for _ in 0..3 {
        let wrong =
            stranger.post_form("/sign-in", &[("email", "olive@example.org"), ("password", "Wrong-pass-1")]).await;
        assert_eq!(wrong.status, 400);
    }
    let right = stranger.post_form("/sign-in", &[("email", "olive@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(right.status, 303, "3 wrong and 1 right: signed in, count reset");
    for _ in 0..4 {
        stranger.post_form("/sign-in", &[("email", "olive@example.org"), ("password", "Wrong-pass-1")]).await;
    }
    let locked = stranger.post_form("/sign-in", &[("email", "olive@example.org"), ("password", PASSWORD)]).await;
    assert_eq!(locked.status, 400, "locked: the right password is refused");
    assert_eq!(
        common::masked(&unknown.body),
        common::masked(&locked.body),
        "the same answer for an unknown and a locked account"
    );
    assert_eq!(c.get("/api/v1/session").await.status, 401, "locking ends every session");
}

#[tokio::test]
async fn concurrent_wrong_passwords_count_exactly_to_the_limit() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    c.get("/sign-in").await;
    let attempts =
        (0..20).map(|_| {
            let c = c.clone();
            async move {
                c.post_form("/sign-in", &[("email", "olive@example.org"), ("password", "Wrong-pass-1")]).await.status
            }
        });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    let mut tx = t.app.store.begin().await.unwrap();
    let user = tx
        .user_by_email(&usher_domain::email::EmailAddress::parse("olive@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.failed_sign_ins, 4);
    assert_eq!(user.status.as_str(), "locked");
}

#[tokio::test]
async fn operator_recovery_link_sets_a_new_password_and_ends_old_sessions() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    let (operator, link) = t.app.operator_recovery_link(None, false, t.now().await).await.unwrap();
    assert_eq!(operator.full_name, "Olive Operator");
    let path = link.strip_prefix(&t.base).unwrap().to_owned();
    let r = t.client();
    assert_eq!(r.get(&path).await.h1(), "Choose a new password");
    let done = r.post_form(&path, &[("password", "New-Pass-word-7"), ("confirm_password", "New-Pass-word-7")]).await;
    assert_eq!(done.status, 303);
    assert_eq!(c.get("/api/v1/session").await.status, 401, "the old session ended");
    assert_eq!(
        r.get("/home").await.location().as_deref(),
        Some("/sign-in/second-factor"),
        "the link proves only the password"
    );
    assert_eq!(t.client().get(&path).await.status, 410, "single use");
    let mail = t.deliver().await;
    assert!(mail.iter().any(|m| m.message.purpose == "password_changed"));
    t.advance(Span::hours(1)).await;
    let (_, link) = t.app.operator_recovery_link(None, false, t.now().await).await.unwrap();
    t.advance(Span::hours(1)).await;
    t.advance(Span::seconds_(1)).await;
    assert_eq!(r.get(link.strip_prefix(&t.base).unwrap()).await.status, 410, "recovery links last an hour");
}

#[tokio::test]
async fn the_test_clock_moves_only_forward_through_the_api() {
    let t = TestApp::start().await;
    let c = t.client();
    let before = c.get("/api/v1/test-clock").await.json();
    assert_eq!(before["unix"], common::T0);
    let moved = c.post_json("/api/v1/test-clock", serde_json::json!({"advance": "28d"})).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.json()["unix"], common::T0 + 28 * 86_400);
    let set = c.post_json("/api/v1/test-clock", serde_json::json!({"to": "2026-03-01T00:00:00Z"})).await;
    assert_eq!(set.json()["now"], "2026-03-01T00:00:00Z");
    for bad in [
        serde_json::json!({"advance": "soon"}),
        serde_json::json!({"to": "2020-01-01T00:00:00Z"}),
        serde_json::json!({}),
        serde_json::json!({"advance": "1d", "to": "2027-01-01T00:00:00Z"}),
    ] {
        let page = c.post_json("/api/v1/test-clock", bad.clone()).await;
        assert_eq!(page.status, 400, "{bad}");
        assert_eq!(page.headers.get("content-type").unwrap(), "application/problem+json");
        let p = page.json();
        assert_eq!(p["code"], "invalid_input");
        assert!(p["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let banner = c.get("/").await;
    assert!(banner.body.contains("usher-test-clock-banner"), "every page warns that the test clock is on");
    assert!(banner.body.contains("1 March 2026"));
}

#[tokio::test]
async fn api_errors_are_problem_details_and_pages_are_friendly() {
    let t = TestApp::start().await;
    let c = t.client();
    let p = c.get("/api/v1/session").await;
    assert_eq!(p.status, 401);
    assert_eq!(p.json()["type"], "urn:usher:problem:unauthenticated");
    let missing = c.get("/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.h1(), "Page not found");
    assert!(missing.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    assert_eq!(c.get("/healthz").await.body, "ok\n");
    assert_eq!(c.get("/metrics").await.status, 404, "metrics are on the management listener only");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let t = TestApp::start().await;
    let doc = t.client().get("/api/v1/openapi.json").await.json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/api/v1/test-clock", "/api/v1/session", "/healthz"] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn the_audit_trail_is_chained_and_an_edited_row_is_found() {
    let t = TestApp::start().await;
    t.operator().await;
    let report = t.app.verify_audit_chain().await.unwrap();
    let usher_app::audit::ChainReport::Intact { events } = report else { panic!("{report:?}") };
    assert!(events >= 3, "{events}");
    use sqlx::Connection as _;
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    sqlx::query("UPDATE audit_events SET outcome = 'failure' WHERE seq = 2").execute(&mut db).await.unwrap();
    assert_eq!(
        t.app.verify_audit_chain().await.unwrap(),
        usher_app::audit::ChainReport::Broken { seq: 2, reason: "its content does not match its hash" }
    );
}

#[tokio::test]
async fn two_servers_on_one_database_share_the_clock_and_the_sessions() {
    let a = TestApp::start().await;
    let b = TestApp::start_on(&a.database_url, |_| {}).await;
    let c = a.operator().await;
    let on_b = b.client();
    on_b.set_cookie("__Host-usher-session", &c.cookie("__Host-usher-session").unwrap());
    assert_eq!(on_b.get("/api/v1/session").await.status, 200);
    a.advance(Span::days(1)).await;
    assert_eq!(b.now().await, a.now().await);
    assert_eq!(on_b.get("/api/v1/session").await.status, 401, "both nodes apply the timeout");
}

#[tokio::test]
async fn deleting_events_from_the_end_of_the_trail_is_found_too() {
    let t = TestApp::start().await;
    t.operator().await;
    use sqlx::Connection as _;
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    let (last, _) = t.app.store.audit_chain_head().await.unwrap();
    sqlx::query("DELETE FROM audit_events WHERE seq = $1").bind(last).execute(&mut db).await.unwrap();
    assert_eq!(
        t.app.verify_audit_chain().await.unwrap(),
        usher_app::audit::ChainReport::Broken { seq: last, reason: "events are missing from the end of the trail" }
    );
}

#[tokio::test]
async fn api_writes_with_a_session_need_the_anti_forgery_header_and_refusals_are_audited() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    c.get("/home").await;
    let without = c.post_json("/api/v1/test-clock", serde_json::json!({"advance": "1h"})).await;
    assert_eq!(without.status, 403);
    let token = c.cookie("__Host-usher-csrf").unwrap();
    let with = c
        .request(
            reqwest::Method::POST,
            "/api/v1/test-clock",
            &[("x-csrf-token", token.as_str())],
            Some((serde_json::json!({"advance": "1h"}).to_string(), "application/json")),
        )
        .await;
    assert_eq!(with.status, 200, "{}", with.body);
    let events = t.app.store.audit_events_after(0, 1000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.event.action == "csrf.rejected" && e.event.outcome == "refused" && e.event.actor_id.is_some())
    );
    let too_far = t.client().post_json("/api/v1/test-clock", serde_json::json!({"advance": "36501d"})).await;
    assert_eq!(too_far.status, 400);
}

#[tokio::test]
async fn a_hash_made_at_a_lower_cost_is_replaced_at_sign_in() {
    let a = TestApp::start().await;
    a.operator().await;
    let b = TestApp::start_on(&a.database_url, |c| c.password_hashing.iterations = 3).await;
    let c = b.client();
    c.get("/sign-in").await;
    assert_eq!(c.post_form("/sign-in", &[("email", "olive@example.org"), ("password", PASSWORD)]).await.status, 303);
    let mut tx = b.app.store.begin().await.unwrap();
    let user = tx
        .user_by_email(&usher_domain::email::EmailAddress::parse("olive@example.org").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(user.password_hash.unwrap().starts_with("$argon2id$v=19$m=19456,t=3,p=1$"));
}
