//! Second factors (issue 5): authenticator apps checked by an independent TOTP implementation
//! (Python's pyotp) from the secret the set-up page shows, the drift window and replays (also
//! across two servers), sealed secrets and key rotation, and emailed codes. On SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use common::factors::*;
use reqwest::Method;
use usher_domain::duration::Span;

#[tokio::test]
async fn an_app_set_up_from_the_page_works_with_codes_from_an_independent_implementation() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    // At the set-up stage nothing else can be reached.
    assert_eq!(c.get("/home").await.location().as_deref(), Some("/set-up"));
    assert_eq!(c.get("/account/sessions").await.location().as_deref(), Some("/set-up"));
    let session = c.api(Method::GET, "/api/v1/session", None).await;
    assert_eq!(session.status, 403, "not signed in yet: {}", session.body);
    assert_eq!(session.json()["code"], "second_factor_required");
    let api = c.api(Method::GET, "/api/v1/sessions", None).await;
    assert_eq!(api.json()["code"], "second_factor_required", "{}", api.body);

    let page = scan_page(&t, &c).await;
    let uri = otpauth_uri(&page);
    assert!(uri.starts_with("otpauth://totp/Usher:una%40lawfirm.example?secret="), "{uri}");
    assert!(uri.contains("issuer=Usher"), "{uri}");
    let key = between(&page.body, "<strong id=\"secret-key\">", "</strong>").to_owned();
    assert_eq!(key.replace(' ', "").len(), 32, "20 bytes in base32: {key}");

    // The key typed by hand and the URI give the same codes.
    let now = t.now().await.unix();
    assert_eq!(pyotp_code_from_key(&key, now), pyotp_code(&uri, now));

    // A wrong code is refused with the reason, and the same QR code is shown again.
    let wrong = c.post_form("/set-up/app", &[("code", "000000")]).await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("The code is not right"), "{}", wrong.body);
    assert_eq!(otpauth_uri(&wrong), uri, "a wrong code does not make a new secret");

    let done = c.post_form("/set-up/app", &[("code", &pyotp_code_from_key(&key, now))]).await;
    assert_eq!(done.h1(), "Authenticator app added", "{}", done.body);
    let codes: Vec<&str> = done.body.split("<li><code>").skip(1).map(|s| s.split('<').next().unwrap()).collect();
    assert_eq!(codes.len(), 10, "ten recovery codes, shown once: {}", done.body);
    // Set-up signs the person out: the new factor takes effect at the next sign-in.
    assert!(done.set_cookies().iter().any(|c| c.starts_with("__Host-usher-session=;")), "{:?}", done.set_cookies());
    assert_eq!(c.get("/home").await.location().as_deref(), Some("/sign-in"));
    let mail = t.messages_to(USER_EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "factor_added"), "the person is emailed (S18)");

    // The next sign-in asks for the app's code after the password.
    t.advance(Span::seconds_(30)).await;
    let c = sign_in_with_app(&t, &uri).await;
    assert_eq!(c.get("/home").await.status, 200);
}

#[tokio::test]
async fn a_load_never_makes_a_secret_and_only_the_newest_can_be_confirmed() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let first = scan_page(&t, &c).await;
    let old_uri = otpauth_uri(&first);
    // Defect 8: a GET made a new secret. Loads of any kind (ours, another site's, a prefetch,
    // a client that does not say) show the current one and change nothing.
    for headers in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-origin"), ("sec-purpose", "prefetch")],
        vec![],
    ] {
        let again = c.request(Method::GET, "/set-up/app", &headers, None).await;
        assert_eq!(otpauth_uri(&again), old_uri, "{headers:?}");
    }
    // "Make a new QR code" (a POST) replaces it.
    let second = c.post_form("/set-up/app/new", &[]).await;
    assert_eq!(second.h1(), "Scan the QR code", "{}", second.body);
    let new_uri = otpauth_uri(&second);
    assert_ne!(old_uri, new_uri, "a new secret");
    assert_eq!(otpauth_uri(&load_qr_page(&c).await), new_uri);
    let now = t.now().await.unix();
    let stale = c.post_form("/set-up/app", &[("code", &pyotp_code(&old_uri, now))]).await;
    assert_eq!(stale.status, 400);
    assert!(stale.body.contains("older QR code") && stale.body.contains("Delete every entry"), "{}", stale.body);
    let done = c.post_form("/set-up/app", &[("code", &pyotp_code(&new_uri, now))]).await;
    assert_eq!(done.h1(), "Authenticator app added", "{}", done.body);
}

#[tokio::test]
async fn one_step_of_drift_is_accepted_two_are_not_and_no_step_is_accepted_twice() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    let now = t.now().await.unix();

    let c = password_step(&t).await;
    for offset in [-60, 60] {
        let page = c
            .post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, now + offset))])
            .await;
        assert_eq!(page.status, 400, "T{offset:+}s is two steps away: refused");
    }
    let ok = c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, now + 30))]).await;
    assert_eq!(ok.location().as_deref(), Some("/home"), "T+30s is one step away: accepted");

    // The same code again, in a new sign-in: refused, and so is the step before it.
    let c = password_step(&t).await;
    let replay =
        c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, now + 30))]).await;
    assert_eq!(replay.status, 400);
    assert!(replay.body.contains("already been used"), "{}", replay.body);
    let older =
        c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, now - 30))]).await;
    assert_eq!(older.status, 400);
    // The next step works.
    t.advance(Span::seconds_(60)).await;
    let later = t.now().await.unix();
    let ok = c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, later))]).await;
    assert_eq!(ok.location().as_deref(), Some("/home"), "{}", ok.body);
}

#[tokio::test]
async fn a_code_sent_to_two_servers_at_once_signs_in_exactly_once() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    let other = TestApp::start_on(&t.database_url, |_| {}).await;
    for round in 0..3 {
        t.advance(Span::seconds_(30)).await;
        let a = password_step(&t).await;
        let b = other.client();
        b.get("/sign-in").await;
        let page = b.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
        assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"));
        let code = pyotp_code(&uri, t.now().await.unix());
        let fields = [("method", "app"), ("code", code.as_str())];
        let (ra, rb) = tokio::join!(
            a.post_form("/sign-in/second-factor", &fields),
            b.post_form("/sign-in/second-factor", &fields)
        );
        let wins = [&ra, &rb].iter().filter(|p| p.location().as_deref() == Some("/home")).count();
        assert_eq!(wins, 1, "round {round}: exactly one node accepts the step ({} / {})", ra.status, rb.status);
    }
}

#[tokio::test]
async fn secrets_are_sealed_in_the_database_and_a_changed_ciphertext_fails_closed() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    let page = scan_page(&t, &c).await;
    let uri = otpauth_uri(&page);
    let key = between(&page.body, "<strong id=\"secret-key\">", "</strong>").replace(' ', "");
    let now = t.now().await.unix();
    c.post_form("/set-up/app", &[("code", &pyotp_code(&uri, now))]).await;

    let mut db = db(&t).await;
    let sealed: Vec<String> =
        sqlx::query_scalar("SELECT secret FROM factors WHERE secret IS NOT NULL").fetch_all(&mut db).await.unwrap();
    assert!(!sealed.is_empty());
    for s in &sealed {
        assert!(!s.contains(&key) && !s.to_uppercase().contains(&key), "no base32 secret in the database");
        assert!(s.starts_with("v1:"), "{s}");
    }
    // Flip one bit of the ciphertext: the right code no longer works.
    let confirmed: String =
        sqlx::query_scalar("SELECT secret FROM factors WHERE confirmed_at IS NOT NULL AND kind = 'app'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let (head, body) = confirmed.rsplit_once(':').unwrap();
    let mut bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap();
    bytes[20] ^= 0x01;
    let flipped = format!("{head}:{}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes));
    sqlx::query("UPDATE factors SET secret = $1 WHERE secret = $2")
        .bind(&flipped)
        .bind(&confirmed)
        .execute(&mut db)
        .await
        .unwrap();
    t.advance(Span::seconds_(30)).await;
    let c = password_step(&t).await;
    let refused = c
        .post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(&uri, t.now().await.unix()))])
        .await;
    assert_eq!(refused.status, 400, "fails closed");
}

#[tokio::test]
async fn an_emailed_code_works_once_for_15_minutes_and_only_the_newest() {
    let t = TestApp::start().await;
    let c = user_with_email_codes(&t).await;
    let form = c.get("/sign-in/second-factor").await;
    assert_eq!(form.h1(), "Enter the code we emailed you", "{}", form.body);
    assert_eq!(c.post_form("/sign-in/second-factor/email-code", &[]).await.status, 303);
    let a = t.email_code(USER_EMAIL).await;
    let mail = t.messages_to(USER_EMAIL).await;
    let sender = &t.app.config.email.sender_address;
    assert!(mail[0].message.body.contains(sender.as_str()), "every email names the one sender");
    t.advance(Span::seconds_(30)).await;
    assert_eq!(c.post_form("/sign-in/second-factor/email-code", &[]).await.status, 303);
    let b = t.email_code(USER_EMAIL).await;
    let old = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &a)]).await;
    if a != b {
        assert!(old.body.contains("replaced by a newer one"), "{}", old.body);
    }
    // No code is stored in the clear.
    let mut db = db(&t).await;
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM one_time_codes").fetch_all(&mut db).await.unwrap();
    assert!(hashes.iter().all(|h| h.len() == 64 && !h.contains(&b)));
    let ok = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &b)]).await;
    assert_eq!(ok.location().as_deref(), Some("/home"), "{}", ok.body);

    // A new sign-in: its code works at 15:00 and not at 15:01.
    let c = password_step(&t).await;
    c.post_form("/sign-in/second-factor/email-code", &[]).await;
    let late = t.email_code(USER_EMAIL).await;
    t.advance(Span::seconds_(15 * 60 + 1)).await;
    let expired = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &late)]).await;
    assert_eq!(expired.status, 400);
    assert!(expired.body.contains("That code has expired"), "{}", expired.body);
    let c = password_step(&t).await;
    c.post_form("/sign-in/second-factor/email-code", &[]).await;
    let on_time = t.email_code(USER_EMAIL).await;
    t.advance(Span::minutes(15)).await;
    let ok = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &on_time)]).await;
    assert_eq!(ok.location().as_deref(), Some("/home"), "{}", ok.body);
}

#[tokio::test]
async fn guessing_is_limited_and_a_new_code_does_not_reset_the_count() {
    let t = TestApp::start().await;
    let c = user_with_email_codes(&t).await;
    c.post_form("/sign-in/second-factor/email-code", &[]).await;
    for _ in 0..3 {
        assert_eq!(c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", "000000")]).await.status, 400);
    }
    t.advance(Span::seconds_(30)).await;
    c.post_form("/sign-in/second-factor/email-code", &[]).await;
    for _ in 0..2 {
        c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", "000000")]).await;
    }
    let code = t.email_code(USER_EMAIL).await;
    let after = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &code)]).await;
    assert_ne!(after.location().as_deref(), Some("/home"), "the account locked after 5 wrong codes");
    let mail = t.messages_to(USER_EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "account_locked"), "the person is told");
    let c = t.client();
    c.get("/sign-in").await;
    let locked = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(locked.status, 400, "the account is locked");
}

#[tokio::test]
async fn a_rotated_key_still_opens_old_secrets_until_they_are_sealed_again() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    const NEW_KEY: &str = "Ym9ib2JvYm9ib2JvYm9ib2JvYm9ib2JvYm9ib2JvYm8=";
    let old_key = t.app.config.secret_key.clone().unwrap();
    // Rotate: a new current key, the old one kept as previous.
    let rotated = TestApp::start_on(&t.database_url, |c| {
        c.secret_key = Some(usher_domain::secret::SecretString::new(NEW_KEY));
        c.previous_secret_keys = vec![old_key.clone()];
    })
    .await;
    rotated.advance(Span::seconds_(30)).await;
    let c = rotated.client();
    c.get("/sign-in").await;
    c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    let ok = c
        .post_form(
            "/sign-in/second-factor",
            &[("method", "app"), ("code", &pyotp_code(&uri, rotated.now().await.unix()))],
        )
        .await;
    assert_eq!(ok.location().as_deref(), Some("/home"), "the old key still opens the secret: {}", ok.body);
    assert_eq!(rotated.app.reseal_secrets().await.unwrap(), (1, 0));
    // With the old key dropped, the secret still opens.
    let dropped = TestApp::start_on(&t.database_url, |c| {
        c.secret_key = Some(usher_domain::secret::SecretString::new(NEW_KEY));
    })
    .await;
    dropped.advance(Span::seconds_(30)).await;
    let c = dropped.client();
    c.get("/sign-in").await;
    c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    let ok = c
        .post_form(
            "/sign-in/second-factor",
            &[("method", "app"), ("code", &pyotp_code(&uri, dropped.now().await.unix()))],
        )
        .await;
    assert_eq!(ok.location().as_deref(), Some("/home"), "{}", ok.body);
}

#[tokio::test]
async fn emailed_codes_are_capped_per_account() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    t.enrol_email(&c, USER_EMAIL).await;
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let c = password_step(&t).await;
        statuses.push(c.post_form("/sign-in/second-factor/email-code", &[]).await.status);
    }
    // One code went to the set-up, so the tenth sign-in reaches the cap of 10 an hour.
    assert_eq!(statuses.iter().filter(|s| **s == 303).count(), 9, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
}
