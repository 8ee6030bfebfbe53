//! Recovery (issue 5): recovery codes, the recovery phone and recovery by text, reset links that
//! ask for the second factor, the operator's way back from the command line, and the caps on
//! text messages. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use common::factors::*;
use usher_domain::duration::Span;

#[tokio::test]
async fn recovery_codes_work_once_and_each_use_is_emailed() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let page = scan_page(&t, &c).await;
    let uri = otpauth_uri(&page);
    let done = c.post_form("/set-up/app", &[("code", &pyotp_code(&uri, t.now().await.unix()))]).await;
    let codes: Vec<String> =
        done.body.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap().to_owned()).collect();
    let c = password_step(&t).await;
    let used =
        c.post_form("/sign-in/second-factor", &[("method", "recovery_code"), ("code", &codes[0].to_uppercase())]).await;
    assert_eq!(used.location().as_deref(), Some("/account/security?done=recovery_code_used"), "{}", used.body);
    let security = c.get("/account/security").await;
    assert!(security.body.contains("You have 9 unused recovery codes"), "{}", security.body);
    let mail = t.messages_to(USER_EMAIL).await;
    let notice = mail.iter().find(|m| m.message.purpose == "recovery_code_used").expect("a notice (S17)");
    assert!(notice.message.body.contains("9 recovery codes left"), "{}", notice.message.body);
    let c = password_step(&t).await;
    let again = c.post_form("/sign-in/second-factor", &[("method", "recovery_code"), ("code", &codes[0])]).await;
    assert_eq!(again.status, 400, "a used code fails");
    let other = c.post_form("/sign-in/second-factor", &[("method", "recovery_code"), ("code", &codes[1])]).await;
    assert_eq!(other.location().as_deref(), Some("/account/security?done=recovery_code_used"));
}

#[tokio::test]
async fn a_lost_device_is_recovered_with_a_text_to_the_recovery_phone() {
    let t = TestApp::start().await;
    let (c, _, _) = user_with_app(&t).await;
    add_recovery_phone(&t, &c, "07700 900654").await;
    let mail = t.messages_to(USER_EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "recovery_phone_set"), "emailed (S18)");
    let security = c.get("/account/security").await;
    assert!(security.body.contains("ending <strong>0654</strong>"), "{}", security.body);

    // Lost device: password, then the recovery text. Its code lasts 5 minutes.
    let c = password_step(&t).await;
    let lost = c.get("/sign-in/lost-device").await;
    assert!(lost.body.contains("ending 0654"), "{}", lost.body);
    assert_eq!(c.post_form("/sign-in/lost-device/text", &[]).await.status, 303);
    let first = t.sms_code("+447700900654").await;
    t.advance(Span::seconds_(5 * 60 + 1)).await;
    let expired = c.post_form("/sign-in/lost-device", &[("code", &first)]).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("expired"), "{}", expired.body);
    assert_eq!(c.post_form("/sign-in/lost-device/text", &[]).await.status, 303);
    let second = t.sms_code("+447700900654").await;
    // A code from another flow is no good here (S12): the second factor form refuses it too.
    let elsewhere = c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &second)]).await;
    assert_eq!(elsewhere.status, 400);
    let recovered = c.post_form("/sign-in/lost-device", &[("code", &second)]).await;
    assert_eq!(recovered.location().as_deref(), Some("/set-up?done=recovered"), "{}", recovered.body);
    let mail = t.messages_to(USER_EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "factors_recovered"), "recovery is emailed");
    // The old app is gone: a new one is set up, and the next sign-in uses it.
    let page = scan_page(&t, &c).await;
    let uri = otpauth_uri(&page);
    let done = c.post_form("/set-up/app", &[("code", &pyotp_code(&uri, t.now().await.unix()))]).await;
    assert_eq!(done.h1(), "Authenticator app added", "{}", done.body);
    assert!(done.body.contains("Your recovery codes"), "the old codes went with the old factors");
    t.advance(Span::seconds_(30)).await;
    sign_in_with_app(&t, &uri).await;
    let mut db = db(&t).await;
    let events: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE action LIKE 'mfa.%' ORDER BY seq")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert!(events.contains(&"mfa.recovered".to_owned()), "{events:?}");
}

#[tokio::test]
async fn a_reset_link_asks_for_the_second_factor_and_never_signs_in() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    t.advance(Span::seconds_(30)).await;
    let c = t.client();
    c.get("/reset-password").await;
    c.post_form("/reset-password", &[("email", USER_EMAIL)]).await;
    let mail = t.messages_to(USER_EMAIL).await;
    let body = &mail.iter().find(|m| m.message.purpose == "password_reset").unwrap().message.body;
    let link = body.split_whitespace().find(|w| w.contains("/reset-password/")).unwrap();
    let path = link.strip_prefix(&t.base).unwrap().to_owned();
    let page = c.get(&path).await;
    assert_eq!(page.h1(), "Enter the code from your authenticator app", "{}", page.body);
    // Skipping the step is refused (S15).
    let skipped =
        c.post_form(&path, &[("password", "Brand-New-Horse-9"), ("confirm_password", "Brand-New-Horse-9")]).await;
    assert_eq!(skipped.location().as_deref(), Some(path.as_str()));
    let code = pyotp_code(&uri, t.now().await.unix());
    let proven = c.post_form(&format!("{path}/second-factor"), &[("method", "app"), ("code", &code)]).await;
    assert_eq!(proven.location().as_deref(), Some(path.as_str()), "{}", proven.body);
    assert_eq!(c.get(&path).await.h1(), "Choose a new password");
    let saved =
        c.post_form(&path, &[("password", "Brand-New-Horse-9"), ("confirm_password", "Brand-New-Horse-9")]).await;
    assert_eq!(saved.location().as_deref(), Some("/sign-in?done=reset"), "{}", saved.body);
    // Sign-in still asks for the second factor.
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", "Brand-New-Horse-9")]).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"));
}

#[tokio::test]
async fn an_operator_who_lost_their_device_is_recovered_from_the_command_line() {
    let t = TestApp::start().await;
    t.operator().await;
    let (_, link) = t.app.operator_recovery_link(None, true, t.now().await).await.unwrap();
    let path = link.strip_prefix(&t.base).unwrap().to_owned();
    let c = t.client();
    c.get(&path).await;
    let done =
        c.post_form(&path, &[("password", "Fresh-Horse-Staple-3"), ("confirm_password", "Fresh-Horse-Staple-3")]).await;
    assert_eq!(done.location().as_deref(), Some("/set-up"), "no factor left: a new one is set up first");
    let mail = t.messages_to("olive@example.org").await;
    assert!(mail.iter().any(|m| m.message.purpose == "factors_reset"), "the operator is told");
}

#[tokio::test]
async fn guesses_on_reset_links_count_against_the_account_and_stop_for_good() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    let c = t.client();
    let mut statuses = Vec::new();
    // Each new link does not bring new guesses.
    for _ in 0..3 {
        t.advance(Span::minutes(1)).await;
        let path = reset_path(&t, &c).await;
        for _ in 0..2 {
            statuses.push(
                c.post_form(&format!("{path}/second-factor"), &[("method", "app"), ("code", "000000")]).await.status,
            );
        }
    }
    assert_eq!(statuses[..5], [400; 5], "{statuses:?}");
    assert_ne!(statuses[5], 400, "the sixth guess is refused before any check: {statuses:?}");
    let mail = t.messages_to(USER_EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "account_locked"), "the person is told");
    t.advance(Span::minutes(1)).await;
    let path = reset_path(&t, &c).await;
    let right = c
        .post_form(
            &format!("{path}/second-factor"),
            &[("method", "app"), ("code", &pyotp_code(&uri, t.now().await.unix()))],
        )
        .await;
    assert_eq!(right.status, 403, "even the right code is refused until an administrator unlocks: {}", right.body);
}

#[tokio::test]
async fn a_recovery_code_used_on_a_reset_link_is_emailed() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let page = scan_page(&t, &c).await;
    let uri = otpauth_uri(&page);
    let done = c.post_form("/set-up/app", &[("code", &pyotp_code(&uri, t.now().await.unix()))]).await;
    let code = done.body.split("<li><code>").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let c = t.client();
    let path = reset_path(&t, &c).await;
    let proven = c.post_form(&format!("{path}/second-factor"), &[("method", "recovery_code"), ("code", &code)]).await;
    assert_eq!(proven.location().as_deref(), Some(path.as_str()), "{}", proven.body);
    let mail = t.messages_to(USER_EMAIL).await;
    let notice = mail.iter().find(|m| m.message.purpose == "recovery_used").expect("emailed (S17)");
    assert!(notice.message.body.contains("9 recovery codes left"), "{}", notice.message.body);
}

#[tokio::test]
async fn texts_stop_at_the_caps_and_foreign_numbers_are_refused() {
    let t = TestApp::start().await;
    let (c, _, _) = user_with_app(&t).await;
    confirm_password(&c, "/account/security/recovery-phone").await;
    let foreign = c.post_form("/account/security/recovery-phone", &[("phone", "+33 6 12 34 56 78")]).await;
    assert_eq!(foreign.status, 400);
    assert!(foreign.body.contains("Texts can only be sent to numbers in: the United Kingdom"), "{}", foreign.body);
    // A sweep over 100 numbers stops at the cap (S29).
    let mut sent = 0;
    for n in 0..100 {
        let number = format!("07700 900{:03}", 400 + n);
        let page = c.post_form("/account/security/recovery-phone", &[("phone", &number)]).await;
        if page.status == 200 {
            sent += 1;
        } else {
            assert_eq!(page.status, 429, "{}", page.body);
        }
    }
    assert!(sent <= 10, "at most the cap was sent: {sent}");
    let texts: Vec<_> =
        t.deliver().await.into_iter().filter(|m| m.message.recipient.starts_with("+4477009004")).collect();
    assert!(texts.len() <= 10, "{}", texts.len());
    let mut db = db(&t).await;
    let refusals: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE action = 'code.sent' AND outcome = 'refused' AND detail LIKE '%cap%'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(refusals >= 90, "each refusal is logged: {refusals}");
}
