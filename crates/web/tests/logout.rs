//! Signing out everywhere (S46): back-channel logout tokens to every service a session signed
//! in to, for every way a session ends, exactly once even with two servers, retried while a
//! service is down; and RP-initiated logout at the end-session endpoint. A service of our own
//! here receives the tokens and checks them against the published key set; the browser suite
//! (tests/browser/logout.test.js) checks them again with npm `jose` and drives openid-client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use common::logout::*;
use common::oidc::*;
use usher_domain::duration::Span;

#[tokio::test]
async fn signing_out_tells_every_service_once_with_the_sid_and_sub_it_knows() {
    let t = TestApp::start().await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let court = signed_in_to(&t, &op, "Court platform", &uri).await;
    let cases = signed_in_to(&t, &op, "Case store", &uri).await;
    assert_ne!(court.id_claims["sid"], cases.id_claims["sid"], "each service has its own sid");
    assert_ne!(court.id_claims["sid"], cases.id_claims["sub"]);
    // The sessions page names the services the session signed in to.
    let sessions = op.get("/account/sessions").await;
    assert!(sessions.body.contains("Court platform") && sessions.body.contains("Case store"), "{}", sessions.body);
    let api = op.get("/api/v1/sessions").await.json();
    assert_eq!(api[0]["services"], serde_json::json!(["Case store", "Court platform"]), "{api}");

    let out = op.post_form("/sign-out", &[]).await;
    let landing = out.location().unwrap();
    assert!(landing.starts_with("/signed-out?told="), "{landing}");
    let page = op.get(&landing).await;
    assert!(page.body.contains("Court platform") && page.body.contains("Case store"), "{}", page.body);
    assert!(page.body.contains("told"), "{}", page.body);

    let tokens = delivered(&t, &r, &[&court, &cases]).await;
    assert_eq!(tokens.len(), 2, "one token per service: {tokens:?}");
    assert_ne!(tokens[0]["jti"], tokens[1]["jti"]);
    assert!(!refresh_works(&t, &court).await && !refresh_works(&t, &cases).await, "refresh tokens died with it");
    // Nothing more, however often the worker runs.
    t.advance(Span::hours(2)).await;
    assert!(delivered(&t, &r, &[&court, &cases]).await.is_empty());
    // A forged link on the signed-out page says nothing.
    let forged = t.client().get("/signed-out?told=v1:k:AAAA").await;
    assert!(!forged.body.contains("Usher told"), "{}", forged.body);
}

#[tokio::test]
async fn each_way_a_session_ends_tells_the_service_exactly_once() {
    let t = TestApp::start().await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let court = signed_in_to(&t, &op, "Court platform", &uri).await;

    // Another browser's session ended from the sessions page.
    let other = t.sign_in("olive@example.org", common::PASSWORD).await;
    let court2 = signed_in_to(&t, &other, "Court platform 2", &uri).await;
    let list = op.get("/api/v1/sessions").await.json();
    let other_id =
        list.as_array().unwrap().iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let ended = op.post_form(&format!("/account/sessions/{other_id}/end"), &[]).await;
    assert!(ended.location().unwrap().contains("told="), "{:?}", ended.location());
    let tokens = delivered(&t, &r, &[&court, &court2]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["aud"], court2.rp.id.as_str());
    assert!(refresh_works(&t, &court).await, "the session still signed in keeps its tokens");

    // "Sign out of all other sessions".
    let third = t.sign_in("olive@example.org", common::PASSWORD).await;
    let court3 = signed_in_to(&t, &third, "Court platform 3", &uri).await;
    op.post_form("/account/sessions/end-others", &[]).await;
    let tokens = delivered(&t, &r, &[&court, &court3]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0]["aud"], court3.rp.id.as_str());

    // Idle timeout, reached by the lifecycle job with nobody coming back.
    t.advance(Span::minutes(31)).await;
    let report = t.app.run_lifecycle(t.now().await).await.unwrap();
    assert_eq!(report.signed_out, 1, "{report:?}");
    let tokens = delivered(&t, &r, &[&court]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(!refresh_works(&t, &court).await);
    assert_eq!(t.app.run_lifecycle(t.now().await).await.unwrap().signed_out, 0, "once");
    assert!(delivered(&t, &r, &[&court]).await.is_empty());
}

#[tokio::test]
async fn a_lock_and_a_disabled_service_tell_the_services() {
    let t = TestApp::start().await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let court = signed_in_to(&t, &op, "Court platform", &uri).await;
    for _ in 0..4 {
        common::try_sign_in(&t.client(), "olive@example.org", "wrong-password").await;
    }
    let tokens = delivered(&t, &r, &[&court]).await;
    assert_eq!(tokens.len(), 1, "the lock told it: {tokens:?}");

    // A disabled service hears that every session signed in to it is over.
    let (t2, r2, uri2) = {
        let t2 = TestApp::start().await;
        let (r2, uri2) = Receiver::start().await;
        (t2, r2, uri2)
    };
    let op2 = t2.operator().await;
    let court2 = signed_in_to(&t2, &op2, "Court platform", &uri2).await;
    let now = t2.now().await;
    t2.app
        .disable_client(usher_app::oidc::clients::Registrar::Console, &court2.rp.id, &TestApp::system(), now)
        .await
        .unwrap();
    let tokens = delivered(&t2, &r2, &[&court2]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    // Ending the session afterwards tells it nothing more.
    op2.post_form("/sign-out", &[]).await;
    assert!(delivered(&t2, &r2, &[&court2]).await.is_empty());
}

#[tokio::test]
async fn a_password_reset_and_an_operator_resetting_factors_tell_the_services() {
    let t = TestApp::start().await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let court = signed_in_to(&t, &op, "Court platform", &uri).await;
    // A reset link used in another browser ends every session.
    let c = t.client();
    c.get("/reset-password").await;
    c.post_form("/reset-password", &[("email", "olive@example.org")]).await;
    let link = common::reset_link(&t, "olive@example.org").await;
    t.prove_reset(&c, &link, "olive@example.org").await;
    let done =
        c.post_form(&link, &[("password", "Reset-Horse-Staple-8"), ("confirm_password", "Reset-Horse-Staple-8")]).await;
    assert_eq!(done.location().as_deref(), Some("/sign-in?done=reset"), "{}", done.body);
    let tokens = delivered(&t, &r, &[&court]).await;
    assert_eq!(tokens.len(), 1, "the reset told it: {tokens:?}");
    assert!(!refresh_works(&t, &court).await);

    // The operator resets an administrator's second factors.
    let op = t.sign_in("olive@example.org", "Reset-Horse-Staple-8").await;
    let (org, admin) = t.organisation_with_admin(&op, "Lamb Law", "lawfirm.example", "07700 900111").await;
    let cases = signed_in_to(&t, &admin, "Case store", &uri).await;
    let page = op.get(&format!("/operator/organisations/{org}")).await;
    let id = page.body.split("/operator/administrators/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let reset = op.post_form(&format!("/operator/administrators/{id}/reset-factors"), &[]).await;
    assert_eq!(reset.status, 303, "{}", reset.body);
    let tokens = delivered(&t, &r, &[&court, &cases]).await;
    assert_eq!(tokens.len(), 1, "the factor reset told it: {tokens:?}");
    assert_eq!(tokens[0]["aud"], cases.rp.id.as_str());
    assert!(!refresh_works(&t, &cases).await);
}

#[tokio::test]
async fn the_absolute_timeout_reached_by_the_job_tells_the_services() {
    let t = TestApp::start_with(|c| c.sessions.absolute_timeout = Span::hours(1)).await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let court = signed_in_to(&t, &op, "Court platform", &uri).await;
    // In use all along, so never idle: only the absolute limit ends it.
    for _ in 0..3 {
        t.advance(Span::minutes(20)).await;
        assert_eq!(op.get("/home").await.status, 200);
    }
    t.advance(Span::minutes(1)).await;
    let report = t.app.run_lifecycle(t.now().await).await.unwrap();
    assert_eq!(report.signed_out, 1, "{report:?}");
    let tokens = delivered(&t, &r, &[&court]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(!refresh_works(&t, &court).await);
}

#[tokio::test]
async fn a_service_that_is_down_hears_once_it_is_back_and_the_operator_sees_what_was_given_up() {
    let t = TestApp::start().await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let court = signed_in_to(&t, &op, "Court platform", &uri).await;
    r.set_down(true);
    let list = op.get("/api/v1/sessions").await.json();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    // Sign out from the API (no redirect): the service is down.
    let out = op.api(reqwest::Method::POST, "/api/v1/sign-out", None).await;
    assert_eq!(out.status, 204, "{} ({id})", out.body);
    assert!(delivered(&t, &r, &[&court]).await.is_empty());
    let admin = t.sign_in("olive@example.org", common::PASSWORD).await;
    let seen = admin.get(&format!("/api/v1/clients/{}/logout-deliveries", court.rp.id)).await.json();
    assert_eq!(seen["retrying"], 1, "{seen}");
    assert_eq!(seen["undelivered"][0]["status"], "retrying", "{seen}");
    // Back up: the retry goes through, signed afresh.
    r.set_down(false);
    t.advance(Span::minutes(1)).await;
    let tokens = delivered(&t, &r, &[&court]).await;
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    let seen = admin.get(&format!("/api/v1/clients/{}/logout-deliveries", court.rp.id)).await.json();
    assert_eq!((seen["delivered"].as_i64(), seen["retrying"].as_i64()), (Some(1), Some(0)), "{seen}");

    // A service that stays down is given up after the last retry, and the page says so.
    let cases = signed_in_to(&t, &admin, "Case store", &uri).await;
    r.set_down(true);
    admin.api(reqwest::Method::POST, "/api/v1/sign-out", None).await;
    for _ in 0..10 {
        t.deliver().await;
        t.advance(Span::hours(1)).await;
    }
    let op = t.sign_in("olive@example.org", common::PASSWORD).await;
    let seen = op.get(&format!("/api/v1/clients/{}/logout-deliveries", cases.rp.id)).await.json();
    assert_eq!(seen["given_up"], 1, "{seen}");
    let page = op.get(&format!("/operator/clients/{}", cases.rp.id)).await;
    assert!(page.body.contains("Given up"), "{}", page.body);
}

#[tokio::test]
async fn two_servers_ending_and_sweeping_one_session_send_one_token() {
    let a = TestApp::start().await;
    // Two servers behind one public address, as in a real deployment: one issuer.
    let b = TestApp::start_on(&a.database_url, |c| c.public_base_url = a.base.clone()).await;
    let (r, uri) = Receiver::start().await;
    let op = a.operator().await;
    let court = signed_in_to(&a, &op, "Court platform", &uri).await;
    // The idle timeout is reached; both servers' jobs and a returning browser race to end it.
    a.advance(Span::minutes(31)).await;
    let now = a.now().await;
    let (x, y, z) = tokio::join!(a.app.run_lifecycle(now), b.app.run_lifecycle(now), op.get("/home"));
    // Whichever of the three gets there first ends it; the others find nothing to do.
    assert!(x.unwrap().signed_out + y.unwrap().signed_out <= 1);
    assert_ne!(z.status, 200);
    let (da, db) = tokio::join!(a.deliver(), b.deliver());
    let _ = (da, db);
    let tokens = r.take();
    assert_eq!(tokens.len(), 1, "one token from two servers");
    verified(&a, &tokens[0], &court.rp.id).await;
}

#[tokio::test]
async fn end_session_signs_out_at_once_with_a_hint_and_asks_without_one() {
    let t = TestApp::start().await;
    let (r, uri) = Receiver::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |f| {
        f.backchannel_logout_uri = Some(uri.clone());
        f.post_logout_redirect_uris = vec!["https://court.example/signed-out".into()];
    })
    .await;
    let set = exchange(&t, &rp, &code_for(&op, &rp, &[]).await).await.json();
    let hint = set["id_token"].as_str().unwrap().to_owned();
    let discovery = t.client().get("/.well-known/openid-configuration").await.json();
    assert_eq!(discovery["end_session_endpoint"], format!("{}/oidc/end_session", t.app.issuer()));
    assert_eq!(discovery["backchannel_logout_supported"], true);

    // Without a hint: a page asks, and nothing has ended.
    let ask = op
        .get(&format!(
            "/oidc/end_session?client_id={}&post_logout_redirect_uri=https%3A%2F%2Fcourt.example%2Fsigned-out&state=s1",
            rp.id
        ))
        .await;
    assert_eq!(ask.status, 200, "{}", ask.body);
    assert!(ask.body.contains("Sign out of"), "{}", ask.body);
    assert_eq!(op.get("/home").await.status, 200, "still signed in");
    // A bad hint is refused with a page, never a redirect.
    let bad = op.get("/oidc/end_session?id_token_hint=e30.e30.sig").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    // An unregistered address: asked, and no redirect there afterwards.
    let elsewhere = op
        .get(&format!("/oidc/end_session?id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F"))
        .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.body);
    assert!(elsewhere.body.contains("not registered"), "{}", elsewhere.body);
    assert!(!elsewhere.body.contains("evil.example"), "{}", elsewhere.body);
    assert_eq!(op.get("/home").await.status, 200, "still signed in");

    // With the person's own ID token: signed out at once, back to the service with state.
    let out = op
        .get(&format!(
            "/oidc/end_session?id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Fcourt.example%2Fsigned-out&state=s2"
        ))
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location().as_deref(), Some("https://court.example/signed-out?state=s2"));
    assert_ne!(op.get("/home").await.status, 200, "signed out");
    t.deliver().await;
    assert_eq!(r.take().len(), 1, "the service was told too");

    // Confirming on the page signs out and goes back.
    let again = t.sign_in("olive@example.org", common::PASSWORD).await;
    again.get(&format!("/oidc/end_session?client_id={}", rp.id)).await;
    let confirmed = again
        .post_form(
            "/oidc/end_session/confirm",
            &[("client_id", &rp.id), ("post_logout_redirect_uri", "https://court.example/signed-out"), ("state", "s3")],
        )
        .await;
    assert_eq!(confirmed.location().as_deref(), Some("https://court.example/signed-out?state=s3"));
    assert_ne!(again.get("/home").await.status, 200, "signed out");
}

#[tokio::test]
async fn an_old_hint_asks_first_and_a_sign_in_half_done_is_left_alone() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |f| {
        f.post_logout_redirect_uris = vec!["https://court.example/signed-out".into()];
    })
    .await;
    let old = exchange(&t, &rp, &code_for(&op, &rp, &[]).await).await.json()["id_token"].as_str().unwrap().to_owned();
    op.post_form("/sign-out", &[]).await;
    // A new session, and a leaked ID token of the old one: it does not end the new one silently.
    let now = t.sign_in("olive@example.org", common::PASSWORD).await;
    let asked = now.get(&format!("/oidc/end_session?id_token_hint={old}")).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("Sign out of"), "{}", asked.body);
    assert_eq!(now.get("/home").await.status, 200, "still signed in");

    // A code not yet exchanged when the session ends cannot be exchanged after, on any clock.
    let code = code_for(&now, &rp, &[]).await;
    now.post_form("/sign-out", &[]).await;
    let late = exchange(&t, &rp, &code).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(late.json()["error"], "invalid_grant");

    // Half-way through signing in: another site's end-session link does not interrupt it.
    let c = t.client();
    let page = common::try_sign_in(&c, "olive@example.org", common::PASSWORD).await;
    let link = c.get(&format!("/oidc/end_session?client_id={}", rp.id)).await;
    assert_ne!(link.status, 500, "{}", link.body);
    t.second_step(&c, page, "olive@example.org", common::PASSWORD).await;
    assert_eq!(c.get("/home").await.status, 200, "the sign-in went on");
}
