//! Sessions record what they proved and when (for `amr`, `acr`, `auth_time` and `max_age`):
//! the password step, each second factor, a password entered again, and every replacement of
//! the session carrying the evidence forward. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::factors::{USER_EMAIL, USER_PASSWORD, otpauth_uri, pyotp_code, scan_page, user_at_setup};
use common::{Client, TestApp};
use usher_app::sessions::Authenticated;
use usher_domain::Timestamp;
use usher_domain::duration::Span;
use usher_domain::evidence::AuthMethod;

/// The session behind a client's cookie, as the app sees it.
async fn session(t: &TestApp, c: &Client) -> Authenticated {
    let cookie = c.cookie("__Host-usher-session").expect("a session cookie");
    t.app.authenticate(&cookie, t.now().await).await.unwrap().expect("a live session")
}

/// Sets up an authenticator app; returns its otpauth URI and the recovery codes shown.
async fn set_up_app(t: &TestApp, c: &Client) -> (String, Vec<String>) {
    let uri = otpauth_uri(&scan_page(t, c).await);
    let done = c.post_form("/set-up/app", &[("code", &pyotp_code(&uri, t.now().await.unix()))]).await;
    assert_eq!(done.h1(), "Authenticator app added", "{}", done.body);
    let codes = done.body.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect();
    t.advance(Span::seconds_(30)).await;
    (uri, codes)
}

/// The password step of a sign-in; returns the client and when it happened.
async fn password_step(t: &TestApp) -> (Client, Timestamp) {
    let c = t.client();
    c.get("/sign-in").await;
    let at = t.now().await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"), "{}", page.body);
    (c, at)
}

#[tokio::test]
async fn a_password_and_app_sign_in_records_both_and_a_rotation_carries_them_forward() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let (uri, _) = set_up_app(&t, &c).await;

    let (c, password_at) = password_step(&t).await;
    let pending = session(&t, &c).await;
    assert_eq!(pending.evidence().amr(), ["pwd"], "the password step alone");
    assert_eq!(pending.evidence().proven_at(AuthMethod::Password), Some(password_at));
    assert_eq!(pending.evidence().auth_time(), None, "not yet a full authentication");

    t.advance(Span::seconds_(30)).await;
    let app_at = t.now().await;
    let done =
        c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, app_at.unix()))]).await;
    assert_eq!(done.location().as_deref(), Some("/home"), "{}", done.body);
    let full = session(&t, &c).await;
    assert_ne!(full.session.id, pending.session.id, "a new session");
    let e = full.evidence();
    assert_eq!(e.amr(), ["pwd", "otp", "mfa"]);
    assert_eq!(e.proven_at(AuthMethod::Password), Some(password_at), "carried forward from the password step");
    assert_eq!(e.proven_at(AuthMethod::Totp), Some(app_at));
    assert_eq!(e.auth_time(), Some(app_at));
    assert!(e.authenticated_within(Span::minutes(1), app_at.plus(Span::seconds_(60))));

    // Entering the password again replaces the session: the password's time moves on, the
    // rest (and the time of the full authentication) is carried forward.
    t.advance(Span::minutes(5)).await;
    let again_at = t.now().await;
    let page =
        c.post_form("/account/confirm-password", &[("password", USER_PASSWORD), ("next", "/account/security")]).await;
    assert_eq!(page.location().as_deref(), Some("/account/security"), "{}", page.body);
    let rotated = session(&t, &c).await;
    assert_ne!(rotated.session.id, full.session.id, "a new session (S21)");
    let e = rotated.evidence();
    assert_eq!(e.proven_at(AuthMethod::Password), Some(again_at));
    assert_eq!(e.proven_at(AuthMethod::Totp), Some(app_at));
    assert_eq!(e.auth_time(), Some(app_at), "a password entered again is not a new sign-in");
    assert_eq!(e.amr(), ["pwd", "otp", "mfa"]);
    assert!(!e.authenticated_within(Span::minutes(1), again_at), "max_age of a minute asks for a sign-in");
}

#[tokio::test]
async fn a_recovery_code_sign_in_records_the_recovery_code() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let (_, codes) = set_up_app(&t, &c).await;
    let (c, password_at) = password_step(&t).await;
    t.advance(Span::seconds_(10)).await;
    let used_at = t.now().await;
    let used = c.post_form("/sign-in/second-factor", &[("method", "recovery_code"), ("code", &codes[0])]).await;
    assert_eq!(used.location().as_deref(), Some("/account/security?done=recovery_code_used"), "{}", used.body);
    let e = session(&t, &c).await.session.evidence;
    assert_eq!(e.proven_at(AuthMethod::Password), Some(password_at));
    assert_eq!(e.proven_at(AuthMethod::RecoveryCode), Some(used_at));
    assert_eq!(e.proven_at(AuthMethod::Totp), None);
    assert_eq!(e.amr(), ["pwd", "otp", "mfa"]);
    assert_eq!(e.auth_time(), Some(used_at));
}

#[tokio::test]
async fn a_password_and_email_code_sign_in_records_the_email_code_and_a_password_change_keeps_it() {
    let t = TestApp::start().await;
    // The operator signs in with emailed codes (set up at the first sign-in).
    let c = t.operator().await;
    let e = session(&t, &c).await.session.evidence;
    assert!(e.proven_at(AuthMethod::Password).is_some());
    let code_at = e.proven_at(AuthMethod::EmailCode).expect("the emailed code");
    assert_eq!(e.auth_time(), Some(code_at));
    assert_eq!(e.amr(), ["pwd", "otp", "mfa"]);

    // A password change ends every session and gives this one a successor: the evidence goes
    // with it, with the password proven at the change.
    t.advance(Span::minutes(2)).await;
    let changed_at = t.now().await;
    let new_password = "Brand-New-Horse-88";
    let page = c
        .post_form(
            "/account/password",
            &[("current_password", common::PASSWORD), ("password", new_password), ("confirm_password", new_password)],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let e = session(&t, &c).await.session.evidence;
    assert_eq!(e.proven_at(AuthMethod::Password), Some(changed_at));
    assert_eq!(e.proven_at(AuthMethod::EmailCode), Some(code_at));
    assert_eq!(e.auth_time(), Some(code_at));
}
