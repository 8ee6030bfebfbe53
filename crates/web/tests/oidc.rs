//! The OpenID Connect provider through its real endpoints and pages: discovery, the code flow
//! with PKCE, tokens, refresh rotation, userinfo, revocation and introspection, and the rules
//! that keep redirects and codes safe (S38–S45). Independent client libraries check the same
//! flows in tests/oidc (Python authlib) and tests/browser (npm openid-client).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::oidc::*;
use common::{Client, Page, TestApp};
use serde_json::{Value, json};
use usher_app::oidc::clients::{ClientForm, Registrar};
use usher_domain::duration::Span;

#[tokio::test]
async fn discovery_names_the_configured_issuer_whatever_the_host_header_says() {
    let t = TestApp::start().await;
    let c = t.client();
    let doc = c
        .request(
            reqwest::Method::GET,
            "/.well-known/openid-configuration",
            &[("host", "evil.example"), ("x-forwarded-host", "evil.example")],
            None,
        )
        .await;
    assert_eq!(doc.status, 200);
    let d = doc.json();
    assert_eq!(d["issuer"], t.base.as_str());
    assert_eq!(d["token_endpoint"], format!("{}/oidc/token", t.base));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["authorization_response_iss_parameter_supported"], json!(true));
    let jwks = c.get("/oidc/jwks").await;
    assert!(jwks.headers["cache-control"].to_str().unwrap().contains("max-age=3600"));
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    assert_eq!(keys.len(), 2, "the signing key and the next one: {keys:?}");
    assert!(
        keys.iter().all(|k| k["kty"] == "EC" && k["crv"] == "P-256" && k["kid"].is_string() && k.get("d").is_none())
    );
}

#[tokio::test]
async fn the_code_flow_gives_signed_tokens_once_and_userinfo_three_ways() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    let answer = exchange(&t, &rp, &code).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let set = answer.json();
    assert_eq!(set["token_type"], "Bearer");
    let id = claims(set["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], t.base.as_str());
    assert_eq!(id["aud"], rp.id.as_str());
    assert_eq!(id["nonce"], "nonce-1");
    assert_eq!(id["name"], "Olive Operator");
    assert_eq!(id["email"], "olive@example.org");
    assert_eq!(id["role"], "operator");
    assert_eq!(id["acr"], "urn:usher:acr:mfa");
    assert_eq!(id["amr"], json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["usher_methods"], json!(["password", "email_code"]), "which methods, by name");
    assert!(id["sub"].as_str().unwrap().len() == 43, "pairwise by default: {id}");
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(set["id_token"].as_str().unwrap().split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert!(header["kid"].is_string());

    // The code works once; a replay revokes what it issued.
    let again = exchange(&t, &rp, &code).await;
    assert_eq!(again.status, 400);
    assert_eq!(again.json()["error"], "invalid_grant");
    let access = set["access_token"].as_str().unwrap();
    let c = t.client();
    let info = c
        .request(reqwest::Method::GET, "/oidc/userinfo", &[("authorization", &format!("Bearer {access}"))], None)
        .await;
    assert_eq!(info.status, 401, "revoked by the replay: {}", info.body);
    let refresh =
        token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", set["refresh_token"].as_str().unwrap())])
            .await;
    assert_eq!(refresh.json()["error"], "invalid_grant");

    // A fresh flow: userinfo by header (GET and POST) and in the body.
    let code = code_for(&op, &rp, &[]).await;
    let set = exchange(&t, &rp, &code).await.json();
    let access = set["access_token"].as_str().unwrap();
    let bearer = format!("Bearer {access}");
    let by_get = c.request(reqwest::Method::GET, "/oidc/userinfo", &[("authorization", &bearer)], None).await;
    assert_eq!(by_get.status, 200, "{}", by_get.body);
    assert_eq!(by_get.json()["sub"], claims(set["id_token"].as_str().unwrap())["sub"]);
    assert_eq!(by_get.json()["email"], "olive@example.org");
    let by_post = c.post_raw("/oidc/userinfo", &[], &[("authorization", &bearer)]).await;
    assert_eq!(by_post.status, 200, "{}", by_post.body);
    let in_body = c.post_raw("/oidc/userinfo", &[("access_token", access)], &[]).await;
    assert_eq!(in_body.status, 200, "{}", in_body.body);
    // One bit of the signature changed (in its middle, not in base64 padding bits).
    let (signed, signature) = access.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    raw[10] ^= 0x01;
    let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(raw));
    let bad = c
        .request(reqwest::Method::GET, "/oidc/userinfo", &[("authorization", &format!("Bearer {forged}"))], None)
        .await;
    assert_eq!(bad.status, 401);
    assert!(bad.headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn a_bad_client_or_redirect_uri_gets_a_page_and_never_a_redirect() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    for extra in [
        vec![("redirect_uri", "https://court.example/callbacK")],
        vec![("redirect_uri", "https://court.example/callback/")],
        vec![("redirect_uri", "")],
        vec![("client_id", "0123456789abcdef0123456789abcdef")],
        vec![("client_id", "")],
    ] {
        let page = op.get(&authorize_path(&rp, &extra)).await;
        assert_eq!(page.status, 400, "{extra:?}: {}", page.body);
        assert!(page.location().is_none());
        assert!(page.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    }
    // With the client and redirect URI good, errors go back to the client.
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("prompt", "none login")], "invalid_request"),
        (vec![("max_age", "soon")], "invalid_request"),
    ] {
        let page = op.get(&authorize_path(&rp, &extra)).await;
        assert_eq!(page.status, 303, "{extra:?}: {}", page.body);
        let back = page.location().unwrap();
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(param(&back, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(param(&back, "state").as_deref(), Some("state-1"));
        assert_eq!(param(&back, "iss").as_deref(), Some(t.base.as_str()));
    }
}

#[tokio::test]
async fn codes_are_bound_to_their_client_verifier_redirect_and_minute() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let other = register(&t, "Probation service", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    let wrong = token(
        &t,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &VERIFIER.replace('d', "e")),
        ],
    )
    .await;
    assert_eq!(wrong.json()["error"], "invalid_grant");
    let code = code_for(&op, &rp, &[]).await;
    let missing =
        token(&t, &rp, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(missing.json()["error"], "invalid_grant");
    let code = code_for(&op, &rp, &[]).await;
    let stolen = exchange(&t, &other, &code).await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    let code = code_for(&op, &rp, &[]).await;
    let elsewhere = token(
        &t,
        &rp,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://court.example/callbacks"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(elsewhere.json()["error"], "invalid_grant");
    let code = code_for(&op, &rp, &[]).await;
    t.advance(Span::seconds_(61)).await;
    let late = exchange(&t, &rp, &code).await;
    assert_eq!(late.json()["error"], "invalid_grant", "{}", late.body);
    let code = code_for(&op, &rp, &[]).await;
    t.advance(Span::seconds_(59)).await;
    assert_eq!(exchange(&t, &rp, &code).await.status, 200);
}

#[tokio::test]
async fn two_requests_racing_one_code_get_tokens_once() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    for _ in 0..3 {
        let code = code_for(&op, &rp, &[]).await;
        let (a, b) = tokio::join!(exchange(&t, &rp, &code), exchange(&t, &rp, &code));
        let ok = [a.status, b.status].iter().filter(|s| **s == 200).count();
        assert_eq!(ok, 1, "{} / {}", a.body, b.body);
    }
}

#[tokio::test]
async fn client_authentication_is_checked_and_a_disabled_client_gets_nothing() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    let wrong = Rp { id: rp.id.clone(), secret: Some("A".repeat(43)) };
    let refused = exchange(&t, &wrong, &code).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json()["error"], "invalid_client");
    // Posting the secret in the body is another method than the one registered.
    let post = t
        .client()
        .post_raw(
            "/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &rp.id),
                ("client_secret", rp.secret.as_deref().unwrap()),
            ],
            &[],
        )
        .await;
    assert_eq!(post.json()["error"], "invalid_client");
    let now = t.now().await;
    t.app.disable_client(Registrar::Console, &rp.id, &TestApp::system(), now).await.unwrap();
    assert_eq!(exchange(&t, &rp, &code).await.json()["error"], "invalid_client");
    let page = op.get(&authorize_path(&rp, &[])).await;
    assert_eq!(page.status, 400, "a disabled client is not redirected to");
}

#[tokio::test]
async fn rotated_secrets_overlap_and_then_the_old_one_stops() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let now = t.now().await;
    let new =
        t.app.rotate_client_secret(Registrar::Console, &rp.id, Span::hours(1), &TestApp::system(), now).await.unwrap();
    let renewed = Rp { id: rp.id.clone(), secret: Some(new.expose().to_owned()) };
    let code = code_for(&op, &rp, &[]).await;
    assert_eq!(exchange(&t, &rp, &code).await.status, 200, "the old secret still works");
    t.advance(Span::hours(1)).await;
    let op = t.sign_in("olive@example.org", common::PASSWORD).await;
    let code = code_for(&op, &rp, &[]).await;
    assert_eq!(exchange(&t, &rp, &code).await.status, 401, "the overlap is over");
    let code = code_for(&op, &rp, &[]).await;
    assert_eq!(exchange(&t, &renewed, &code).await.status, 200);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_ends_the_family() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let public = register(&t, "Court app", |f| f.auth_method = Some("none".into())).await;
    assert!(public.secret.is_none());
    let code = code_for(&op, &public, &[]).await;
    let first = exchange(&t, &public, &code).await.json();
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let second = token(&t, &public, &[("grant_type", "refresh_token"), ("refresh_token", &r1)]).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let second = second.json();
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    let id = claims(second["id_token"].as_str().unwrap());
    assert_eq!(id["auth_time"], claims(first["id_token"].as_str().unwrap())["auth_time"], "auth_time is kept");
    assert!(id.get("nonce").is_none());
    // A public client: the spent token again ends the family, the newer one too.
    let reuse = token(&t, &public, &[("grant_type", "refresh_token"), ("refresh_token", &r1)]).await;
    assert_eq!(reuse.json()["error"], "invalid_grant");
    let after = token(&t, &public, &[("grant_type", "refresh_token"), ("refresh_token", &r2)]).await;
    assert_eq!(after.json()["error"], "invalid_grant", "the family is revoked");

    // A confidential client may retry within the window (its answer was lost), not after.
    let rp = register(&t, "Court platform", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    let r1 = exchange(&t, &rp, &code).await.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &r1)]).await.status, 200);
    t.advance(Span::seconds_(10)).await;
    let retry = token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &r1)]).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    let r3 = retry.json()["refresh_token"].as_str().unwrap().to_owned();
    t.advance(Span::seconds_(31)).await;
    let late = token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &r1)]).await;
    assert_eq!(late.json()["error"], "invalid_grant");
    let gone = token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &r3)]).await;
    assert_eq!(gone.json()["error"], "invalid_grant", "reuse after the window revokes the family");
}

#[tokio::test]
async fn revocation_and_introspection_for_a_confidential_client() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let other = register(&t, "Probation service", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    let set = exchange(&t, &rp, &code).await.json();
    let access = set["access_token"].as_str().unwrap();
    let refresh = set["refresh_token"].as_str().unwrap();
    let ask = |rp: &Rp, path: &'static str, tok: String| {
        let basic = format!("Basic {}", STANDARD.encode(format!("{}:{}", rp.id, rp.secret.clone().unwrap())));
        let c = t.client();
        async move { c.post_raw(path, &[("token", &tok)], &[("authorization", &basic)]).await }
    };
    let live = ask(&rp, "/oidc/introspect", access.to_owned()).await.json();
    assert_eq!(live["active"], true);
    assert_eq!(live["client_id"], rp.id.as_str());
    assert_eq!(ask(&rp, "/oidc/introspect", refresh.to_owned()).await.json()["active"], true);
    assert_eq!(ask(&other, "/oidc/introspect", access.to_owned()).await.json()["active"], false);
    assert_eq!(ask(&other, "/oidc/revoke", refresh.to_owned()).await.status, 200, "another client's: same answer");
    assert_eq!(ask(&rp, "/oidc/introspect", refresh.to_owned()).await.json()["active"], true, "and nothing done");
    assert_eq!(ask(&rp, "/oidc/revoke", refresh.to_owned()).await.status, 200);
    assert_eq!(ask(&rp, "/oidc/introspect", access.to_owned()).await.json()["active"], false, "the grant is revoked");
    assert_eq!(ask(&rp, "/oidc/introspect", refresh.to_owned()).await.json()["active"], false);
    assert_eq!(ask(&rp, "/oidc/revoke", "nonsense".into()).await.status, 200);
}

#[tokio::test]
async fn single_sign_on_prompt_and_max_age() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let other =
        register(&t, "Probation service", |f| f.redirect_uris = vec!["https://probation.example/cb".into()]).await;
    let first = claims(exchange(&t, &rp, &code_for(&op, &rp, &[]).await).await.json()["id_token"].as_str().unwrap());

    // prompt=none: at once, no page; without a session: login_required.
    let silent = op.get(&authorize_path(&rp, &[("prompt", "none")])).await;
    let back = silent.location().unwrap();
    assert!(param(&back, "code").is_some(), "{back}");
    let stranger = t.client();
    let none = stranger.get(&authorize_path(&rp, &[("prompt", "none")])).await;
    assert_eq!(param(&none.location().unwrap(), "error").as_deref(), Some("login_required"));
    // Silently only to a service the person has continued to before.
    let unseen =
        op.get(&authorize_path(&other, &[("prompt", "none"), ("redirect_uri", "https://probation.example/cb")])).await;
    let back = unseen.location().unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("consent_required"), "{back}");
    assert!(back.starts_with("https://probation.example/cb"));

    // Signed out: the page asks to sign in and remembers where it was.
    let start = stranger.get(&authorize_path(&rp, &[])).await;
    let page = stranger.get(&start.location().unwrap()).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in"));

    // prompt=login: a new sign-in first, and a later auth_time.
    t.advance(Span::minutes(2)).await;
    let start = op.get(&authorize_path(&rp, &[("prompt", "login")])).await;
    let page_path = start.location().unwrap();
    let page = op.get(&page_path).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in?sign_in=again"));
    let form = op.get("/sign-in?sign_in=again").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("asks you to sign in again"));
    let signed = op.post_form("/sign-in", &[("email", "olive@example.org"), ("password", common::PASSWORD)]).await;
    t.second_step_to(&op, signed, "olive@example.org", &page_path).await;
    let done = op.post_form(&page_path, &[("action", "continue")]).await;
    let code = param(&done.location().unwrap(), "code").unwrap();
    let later = claims(exchange(&t, &rp, &code).await.json()["id_token"].as_str().unwrap());
    assert!(later["auth_time"].as_i64() > first["auth_time"].as_i64(), "{later} {first}");

    // max_age: past it, a new sign-in first.
    t.advance(Span::minutes(10)).await;
    let start = op.get(&authorize_path(&rp, &[("max_age", "300")])).await;
    let page = op.get(&start.location().unwrap()).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in?sign_in=again"));

    // Another client: straight to its page, a different pairwise subject.
    let code = {
        let start = op.get(&authorize_path(&other, &[("redirect_uri", "https://probation.example/cb")])).await;
        let path = start.location().unwrap();
        assert_eq!(op.get(&path).await.status, 200);
        let done = op.post_form(&path, &[("action", "continue")]).await;
        param(&done.location().unwrap(), "code").unwrap()
    };
    let set = token(
        &t,
        &other,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://probation.example/cb"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
    .json();
    assert_ne!(claims(set["id_token"].as_str().unwrap())["sub"], first["sub"], "pairwise subjects differ");
}

#[tokio::test]
async fn a_person_whose_organisation_is_not_admitted_is_told_and_the_client_hears_access_denied() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp =
        register(&t, "Court platform", |f| f.organisation_kinds = vec!["law_firm".into(), "chambers".into()]).await;
    let start = op.get(&authorize_path(&rp, &[])).await;
    let path = start.location().unwrap();
    let page = op.get(&path).await;
    assert_eq!(page.status, 403);
    assert_eq!(page.h1(), "Your organisation cannot use Court platform");
    let done = op.post_form(&path, &[("action", "cancel")]).await;
    assert_eq!(param(&done.location().unwrap(), "error").as_deref(), Some("access_denied"));
}

#[tokio::test]
async fn cancelling_sends_access_denied_and_the_request_cannot_be_used_again() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let start = op.get(&authorize_path(&rp, &[])).await;
    let path = start.location().unwrap();
    let page = op.get(&path).await;
    assert!(page.body.contains("Sign in to Court platform"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' https://court.example;"), "{csp}");
    let done = op.post_form(&path, &[("action", "cancel")]).await;
    assert_eq!(param(&done.location().unwrap(), "error").as_deref(), Some("access_denied"));
    let again = op.post_form(&path, &[("action", "continue")]).await;
    assert_eq!(again.status, 404, "{}", again.body);
}

#[tokio::test]
async fn a_locked_account_loses_its_tokens() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let set = exchange(&t, &rp, &code_for(&op, &rp, &[]).await).await.json();
    let stranger = t.client();
    for _ in 0..4 {
        common::try_sign_in(&stranger, "olive@example.org", "wrong-password").await;
    }
    let refresh =
        token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", set["refresh_token"].as_str().unwrap())])
            .await;
    assert_eq!(refresh.json()["error"], "invalid_grant");
    let bearer = format!("Bearer {}", set["access_token"].as_str().unwrap());
    let info = stranger.request(reqwest::Method::GET, "/oidc/userinfo", &[("authorization", &bearer)], None).await;
    assert_eq!(info.status, 401);
}

#[tokio::test]
async fn two_servers_racing_one_code_and_one_refresh_token_issue_once() {
    let a = TestApp::start().await;
    let b = TestApp::start_on(&a.database_url, |_| {}).await;
    let op = a.operator().await;
    let public = register(&a, "Court app", |f| f.auth_method = Some("none".into())).await;
    for _ in 0..3 {
        let code = code_for(&op, &public, &[]).await;
        let (x, y) = tokio::join!(exchange(&a, &public, &code), exchange(&b, &public, &code));
        assert_eq!([x.status, y.status].iter().filter(|s| **s == 200).count(), 1, "{} / {}", x.body, y.body);
        let won = if x.status == 200 { x } else { y };
        let r = won.json()["refresh_token"].as_str().unwrap().to_owned();
        let fields = [("grant_type", "refresh_token"), ("refresh_token", r.as_str())];
        let (x, y) = tokio::join!(token(&a, &public, &fields), token(&b, &public, &fields));
        let ok: Vec<&Page> = [&x, &y].into_iter().filter(|p| p.status == 200).collect();
        assert!(ok.len() <= 1, "never two new tokens from one: {} / {}", x.body, y.body);
        assert!([&x, &y].iter().all(|p| p.status == 200 || p.json()["error"] == "invalid_grant"));
        // The second use is a reuse of a spent token: the family ends, whatever the first got
        // (on PostgreSQL the revocation can land before the winner's answer, and both fail).
        for won in ok {
            let newer = won.json()["refresh_token"].as_str().unwrap().to_owned();
            let after = token(&a, &public, &[("grant_type", "refresh_token"), ("refresh_token", &newer)]).await;
            assert_eq!(after.json()["error"], "invalid_grant", "the family is ended");
        }
    }
    // A confidential client retrying on the other server inside the window: one live token after.
    let rp = register(&a, "Court platform", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    let r = exchange(&a, &rp, &code).await.json()["refresh_token"].as_str().unwrap().to_owned();
    let fields = [("grant_type", "refresh_token"), ("refresh_token", r.as_str())];
    let (x, y) = tokio::join!(token(&a, &rp, &fields), token(&b, &rp, &fields));
    let issued: Vec<String> = [&x, &y]
        .into_iter()
        .filter(|p| p.status == 200)
        .map(|p| p.json()["refresh_token"].as_str().unwrap().to_owned())
        .collect();
    assert!(!issued.is_empty(), "{} / {}", x.body, y.body);
    // Asked without using them (a spent token may still be retried within the window, and
    // each retry spends the one before): exactly one of the racing answers' tokens is live.
    let basic = format!("Basic {}", STANDARD.encode(format!("{}:{}", rp.id, rp.secret.as_deref().unwrap())));
    let mut live = 0;
    for t in &issued {
        let asked =
            b.client().post_raw("/oidc/introspect", &[("token", t.as_str())], &[("authorization", &basic)]).await;
        if asked.json()["active"] == true {
            live += 1;
        }
    }
    assert_eq!(live, 1, "exactly one live refresh token after the race: {issued:?}");
}

#[tokio::test]
async fn an_administrator_sees_their_people_sign_in_to_other_services_in_the_audit_trail() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&op, "Hale & Co", "hale.example", "07700 900124").await;
    let rp = register(&t, "Court platform", |f| f.second_factor_required = Some(false)).await;
    let code = code_for(&admin, &rp, &[]).await;
    assert_eq!(exchange(&t, &rp, &code).await.status, 200);
    let replay = exchange(&t, &rp, &code).await;
    assert_eq!(replay.json()["error"], "invalid_grant");
    let trail = admin.get("/admin/audit").await;
    assert_eq!(trail.status, 200);
    for words in [
        "Signed in to another service",
        "Another service was given its tokens",
        "A sign-in code was used twice: what it gave was revoked",
    ] {
        assert!(trail.body.contains(words), "{words} in the administrator's trail");
    }
    let operator_trail = op.get("/operator/audit").await;
    assert!(operator_trail.body.contains("Registered a service that signs in with Usher"));
    assert!(operator_trail.body.contains("Signed in to another service"));
}

#[tokio::test]
async fn a_client_may_have_its_tokens_signed_rs256_or_ps256_with_keys_made_when_first_needed() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let before = t.client().get("/oidc/jwks").await.json()["keys"].as_array().unwrap().len();
    assert_eq!(before, 2, "ES256 only until a client needs RSA");
    for alg in ["RS256", "PS256"] {
        let rp = register(&t, alg, |f| f.id_token_alg = Some(alg.into())).await;
        let code = code_for(&op, &rp, &[]).await;
        let set = exchange(&t, &rp, &code).await.json();
        let id_token = set["id_token"].as_str().unwrap();
        let header = jsonwebtoken::decode_header(id_token).unwrap();
        assert_eq!(format!("{:?}", header.alg), alg);
        let keys: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&t.client().get("/oidc/jwks").await.body).unwrap();
        let jwk = keys.find(header.kid.as_deref().unwrap()).expect("the key is published");
        let mut validation = jsonwebtoken::Validation::new(header.alg);
        validation.set_audience(&[&rp.id]);
        validation.set_issuer(&[&t.base]);
        validation.validate_exp = false;
        let decoded =
            jsonwebtoken::decode::<Value>(id_token, &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(), &validation);
        assert!(decoded.is_ok(), "{alg}: {decoded:?}");
        let info = t
            .client()
            .request(
                reqwest::Method::GET,
                "/oidc/userinfo",
                &[("authorization", &format!("Bearer {}", set["access_token"].as_str().unwrap()))],
                None,
            )
            .await;
        assert_eq!(info.status, 200, "{alg}: the access token, signed the same way, works: {}", info.body);
    }
    let after = t.client().get("/oidc/jwks").await.json()["keys"].as_array().unwrap().len();
    assert_eq!(after, 6, "a signing key and a next key for each algorithm");
    let refused = t
        .app
        .register_client(
            Registrar::Console,
            &ClientForm {
                name: "HS".into(),
                redirect_uris: vec![REDIRECT.into()],
                id_token_alg: Some("HS256".into()),
                ..ClientForm::default()
            },
            &TestApp::system(),
            t.now().await,
        )
        .await;
    assert!(refused.is_err(), "no shared-secret signatures");
}

/// Signs `c` in again with the password alone (a person with no second factor, where it is
/// optional) and lands on the request's page; returns that page.
async fn password_again(c: &Client, start: &Page, email: &str) -> (String, Page) {
    let location = start.location().unwrap();
    let request = location.split('?').next().unwrap().to_owned();
    let asked = c.get(&location).await;
    let to_sign_in = if asked.status == 303 { asked.location().unwrap() } else { location.clone() };
    assert!(to_sign_in.starts_with("/sign-in"), "{to_sign_in}: {}", asked.body);
    let form = c.get(&to_sign_in).await;
    assert!(form.body.contains("asks you to sign in again"), "{}", form.body);
    let signed = c.post_form("/sign-in", &[("email", email), ("password", common::ADMIN_PASSWORD)]).await;
    assert_eq!(signed.status, 303, "{}", signed.body);
    assert_eq!(signed.location().as_deref(), Some(request.as_str()), "back to the request");
    let page = c.get(&request).await;
    (request, page)
}

#[tokio::test]
async fn acr_comes_from_the_session_and_an_essential_one_it_cannot_meet_is_unmet() {
    let t = TestApp::start_with(|c| c.mfa.required = false).await;
    let op = t.operator().await;
    op.get("/operator/organisations/new").await;
    let made = op
        .post_form(
            "/operator/organisations/new",
            &[
                ("name", "Lone Chambers"),
                ("kind", "chambers"),
                ("email_domains", "lone.example"),
                ("second_factor", "optional"),
            ],
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let org = made.location().unwrap().split('?').next().unwrap().to_owned();
    let invited = op
        .post_form(
            &format!("{org}/administrators/new"),
            &[("full_name", "Pat Password"), ("email", "pat@lone.example"), ("mobile", "07700 900125")],
        )
        .await;
    assert_eq!(invited.status, 303, "{}", invited.body);
    let path = t.activation_path("pat@lone.example").await;
    t.activate(&path, "+447700900125", common::ADMIN_PASSWORD).await;
    let pat = t.client();
    pat.get("/sign-in").await;
    let signed =
        pat.post_form("/sign-in", &[("email", "pat@lone.example"), ("password", common::ADMIN_PASSWORD)]).await;
    assert_eq!(signed.location().as_deref(), Some("/home"), "a password alone: no factor, none required");

    let lenient = register(&t, "Diary", |f| f.second_factor_required = Some(false)).await;
    // Asked for, not essential: the session's own acr, never the request's.
    let code = code_for(&pat, &lenient, &[("acr_values", "urn:usher:acr:mfa")]).await;
    let id = claims(exchange(&t, &lenient, &code).await.json()["id_token"].as_str().unwrap());
    assert_eq!(id["acr"], "urn:usher:acr:password");
    assert_eq!(id["amr"], json!(["pwd"]));

    // Essential: Usher asks for a new sign-in; a password again still cannot meet it.
    let essential = r#"{"id_token":{"acr":{"essential":true,"values":["urn:usher:acr:mfa"]}}}"#;
    // (The test clock stands still: a second later, the earlier sign-in is older than the request.)
    t.advance(Span::seconds_(1)).await;
    let start = pat.get(&authorize_path(&lenient, &[("claims", essential)])).await;
    let (request, page) = password_again(&pat, &start, "pat@lone.example").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = pat.post_form(&request, &[("action", "continue")]).await;
    let back = done.location().unwrap();
    assert_eq!(param(&back, "error").as_deref(), Some("unmet_authentication_requirements"), "{back}");
    assert!(param(&back, "code").is_none());

    // A client that needs a second factor, and the person has none: signing in again cannot
    // help, so the page says what to do, and the client hears access_denied.
    let strict = register(&t, "Court platform", |_| {}).await;
    let start = pat.get(&authorize_path(&strict, &[])).await;
    let request = start.location().unwrap();
    let page = pat.get(&request).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert_eq!(page.h1(), "Court platform needs a second factor");
    assert!(page.body.contains(r#"href="/account/security""#));
    let tried = pat.post_form(&request, &[("action", "continue")]).await;
    assert_eq!(param(&tried.location().unwrap(), "error").as_deref(), Some("access_denied"));
    let silent = pat.get(&authorize_path(&strict, &[("prompt", "none")])).await;
    assert_eq!(param(&silent.location().unwrap(), "error").as_deref(), Some("interaction_required"));
}

#[tokio::test]
async fn login_hint_fills_in_the_email_address_on_the_way_to_a_service() {
    let t = TestApp::start().await;
    let _op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let visitor = t.client();
    let start = visitor.get(&authorize_path(&rp, &[("login_hint", "olive@example.org")])).await;
    let page = visitor.get(&start.location().unwrap()).await;
    assert_eq!(page.status, 303, "not signed in: to the sign-in page first");
    let form = visitor.get(&page.location().unwrap()).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains(r#"value="olive@example.org""#), "{}", form.body);
    // A hint that is not an email address is left out; nothing else is prefilled.
    let other = t.client();
    let start = other.get(&authorize_path(&rp, &[("login_hint", "<b>olive</b>")])).await;
    let page = other.get(&start.location().unwrap()).await;
    let form = other.get(&page.location().unwrap()).await;
    assert!(!form.body.contains("olive"), "{}", form.body);
}

#[tokio::test]
async fn another_clients_refresh_token_is_unknown_and_stays_unspent() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let public = register(&t, "Court app", |f| f.auth_method = Some("none".into())).await;
    let other = register(&t, "Probation", |_| {}).await;
    let code = code_for(&op, &public, &[]).await;
    let r = exchange(&t, &public, &code).await.json()["refresh_token"].as_str().unwrap().to_owned();
    let stolen = token(&t, &other, &[("grant_type", "refresh_token"), ("refresh_token", &r)]).await;
    assert_eq!(stolen.json()["error"], "invalid_grant");
    assert!(!stolen.body.contains("another client"), "nothing said about whose it is: {}", stolen.body);
    let own = token(&t, &public, &[("grant_type", "refresh_token"), ("refresh_token", &r)]).await;
    assert_eq!(own.status, 200, "the owner's refresh is not taken for a reuse: {}", own.body);
}

#[tokio::test]
async fn a_code_not_yet_exchanged_dies_with_the_sessions_it_came_from() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let code = code_for(&op, &rp, &[]).await;
    // Signing out everywhere (as a password reset, a factor reset and a lock do) before the
    // service exchanges the code.
    let user = common::user(&t, "olive@example.org").await;
    let mut tx = t.app.store.begin().await.unwrap();
    let _ = tx.end_all_sessions(&user.id, "test", t.now().await).await.unwrap();
    tx.commit().await.unwrap();
    let late = exchange(&t, &rp, &code).await;
    assert_eq!(late.json()["error"], "invalid_grant", "{}", late.body);
}

#[tokio::test]
async fn a_disabled_client_gets_nothing_from_any_endpoint_with_what_it_holds() {
    let t = TestApp::start().await;
    let op = t.operator().await;
    let rp = register(&t, "Court platform", |_| {}).await;
    let set = exchange(&t, &rp, &code_for(&op, &rp, &[]).await).await.json();
    let access = set["access_token"].as_str().unwrap().to_owned();
    let refresh = set["refresh_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {access}");
    let c = t.client();
    assert_eq!(
        c.request(reqwest::Method::GET, "/oidc/userinfo", &[("authorization", &bearer)], None).await.status,
        200
    );
    let now = t.now().await;
    t.app.disable_client(Registrar::Console, &rp.id, &TestApp::system(), now).await.unwrap();
    let info = c.request(reqwest::Method::GET, "/oidc/userinfo", &[("authorization", &bearer)], None).await;
    assert_eq!(info.status, 401, "userinfo: {}", info.body);
    let renewed = token(&t, &rp, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!(renewed.json()["error"], "invalid_client", "refresh");
    let basic = format!("Basic {}", STANDARD.encode(format!("{}:{}", rp.id, rp.secret.as_deref().unwrap())));
    for endpoint in ["/oidc/revoke", "/oidc/introspect"] {
        let answer = c.post_raw(endpoint, &[("token", &refresh)], &[("authorization", &basic)]).await;
        assert_eq!(answer.status, 401, "{endpoint}: {}", answer.body);
        assert_eq!(answer.json()["error"], "invalid_client", "{endpoint}");
    }
}
