//! Second factors (issue 5): authenticator apps checked by an independent TOTP implementation
//! (Python's pyotp) from the secret the set-up page shows, the drift window and replays (also
//! across two servers), emailed codes, recovery codes, the recovery phone, recovery by text,
//! reset links that ask for the second factor, enforcement per organisation, and the caps on
//! text messages. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_PASSWORD, Client, Page, TestApp};
use reqwest::Method;
use serde_json::json;
use sqlx::Connection as _;
use usher_domain::duration::Span;

const USER_EMAIL: &str = "una@lawfirm.example";
const USER_PHONE: &str = "+447700900321";
const USER_PASSWORD: &str = "Tidy-Horse-Staple-7";

/// A code computed by pyotp from an `otpauth://` URI, at a Unix time.
fn pyotp_code(uri: &str, at: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.parse_uri(sys.argv[1]).at(int(sys.argv[2])))",
            uri,
            &at.to_string(),
        ])
        .output()
        .expect("python3 runs (scripts/test installs pyotp from tests/helpers/requirements.txt)");
    assert!(out.status.success(), "pyotp failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The same, from the base32 key as a person would type it (spaces and all).
fn pyotp_code_from_key(key: &str, at: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import pyotp, sys; print(pyotp.TOTP(sys.argv[1].replace(' ', '')).at(int(sys.argv[2])))",
            key,
            &at.to_string(),
        ])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "pyotp failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).unwrap_or_else(|| panic!("{start:?} not in {body}")) + start.len();
    let to = body[from..].find(end).unwrap() + from;
    &body[from..to]
}

/// The set-up page's otpauth URI, read from its link the way a phone would follow it.
fn otpauth_uri(page: &Page) -> String {
    let raw = between(&page.body, "href=\"otpauth://", "\"");
    format!("otpauth://{}", raw.replace("&amp;", "&").replace("&#x3D;", "="))
}

/// An organisation whose administrator is signed in, and a user of it who has activated and
/// has signed in with the password: at the set-up stage.
async fn user_at_setup(t: &TestApp) -> (Client, Client) {
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    admin.get("/admin/users/new").await;
    let added = admin
        .post_form("/admin/users/new", &[("full_name", "Una User"), ("email", USER_EMAIL), ("mobile", USER_PHONE)])
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let path = t.activation_path(USER_EMAIL).await;
    let done = t.activate(&path, USER_PHONE, USER_PASSWORD).await;
    assert_eq!(done.h1(), "Your account is activated", "{}", done.body);
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/set-up"), "no factor yet: straight to set-up");
    (c, admin)
}

/// Walks the app set-up from the set-up stage: the texted check, the QR page. Returns the QR
/// page.
async fn scan_page(t: &TestApp, c: &Client) -> Page {
    let overview = c.get("/set-up").await;
    assert!(overview.body.contains("ending <strong>0321</strong>"), "only the last 4 digits: {}", overview.body);
    assert!(!overview.body.contains("900321"));
    let sent = c.post_form("/set-up/app/send-code", &[]).await;
    assert_eq!(sent.location().as_deref(), Some("/set-up/app/check?sent=text"));
    let code = t.sms_code(USER_PHONE).await;
    let checked = c.post_form("/set-up/app/check", &[("code", &code)]).await;
    assert_eq!(checked.location().as_deref(), Some("/set-up/app"), "{}", checked.body);
    let page = load_qr_page(c).await;
    assert_eq!(page.h1(), "Scan the QR code", "{}", page.body);
    assert!(page.body.contains("<svg role=\"img\""), "an inline SVG QR code");
    page
}

/// Loads the QR page as a browser does after our own redirect (`Sec-Fetch-Site: same-origin`).
async fn load_qr_page(c: &Client) -> Page {
    c.request(Method::GET, "/set-up/app", &[("sec-fetch-site", "same-origin")], None).await
}

/// Sets up an app and signs in with it; returns the signed-in client and the otpauth URI.
async fn user_with_app(t: &TestApp) -> (Client, String, Client) {
    let (c, admin) = user_at_setup(t).await;
    let page = scan_page(t, &c).await;
    let uri = otpauth_uri(&page);
    let now = t.now().await.unix();
    let done = c.post_form("/set-up/app", &[("code", &pyotp_code(&uri, now))]).await;
    assert_eq!(done.h1(), "Authenticator app added", "{}", done.body);
    t.advance(Span::seconds_(30)).await;
    let c = sign_in_with_app(t, &uri).await;
    (c, uri, admin)
}

async fn password_step(t: &TestApp) -> Client {
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"), "{}", page.body);
    c
}

async fn sign_in_with_app(t: &TestApp, uri: &str) -> Client {
    let c = password_step(t).await;
    let now = t.now().await.unix();
    let done = c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(uri, now))]).await;
    assert_eq!(done.location().as_deref(), Some("/home"), "{}", done.body);
    c
}

async fn db(t: &TestApp) -> sqlx::AnyConnection {
    sqlx::AnyConnection::connect(&t.database_url).await.unwrap()
}

#[tokio::test]
async fn an_app_set_up_from_the_page_works_with_codes_from_an_independent_implementation() {
    let t = TestApp::start().await;
    let (c, _) = user_at_setup(&t).await;
    // At the set-up stage nothing else can be reached.
    assert_eq!(c.get("/home").await.location().as_deref(), Some("/set-up"));
    assert_eq!(c.get("/account/sessions").await.location().as_deref(), Some("/set-up"));
    assert_eq!(c.api(Method::GET, "/api/v1/session", None).await.status, 401, "not signed in yet");
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

/// A user who has set up emailed codes, at the second-factor step of a new sign-in.
async fn user_with_email_codes(t: &TestApp) -> Client {
    let (c, _) = user_at_setup(t).await;
    t.enrol_email(&c, USER_EMAIL).await;
    password_step(t).await
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

/// Re-enters the password on the confirm page, as the security page asks.
async fn confirm_password(c: &Client, next: &str) {
    let page = c.post_form("/account/confirm-password", &[("password", USER_PASSWORD), ("next", next)]).await;
    assert_eq!(page.location().as_deref(), Some(next), "{}", page.body);
}

/// Adds a proven recovery phone from the security page.
async fn add_recovery_phone(t: &TestApp, c: &Client, number: &str) {
    confirm_password(c, "/account/security/recovery-phone").await;
    let sent = c.post_form("/account/security/recovery-phone", &[("phone", number)]).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let e164 = usher_domain::phone::MobileNumber::parse(number).unwrap().to_string();
    let code = t.sms_code(&e164).await;
    let saved = c.post_form("/account/security/recovery-phone/confirm", &[("phone", &e164), ("code", &code)]).await;
    assert_eq!(saved.location().as_deref(), Some("/account/security?done=recovery_phone"), "{}", saved.body);
}

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

async fn confirm_password_as(c: &Client, password: &str, next: &str) {
    let page = c.post_form("/account/confirm-password", &[("password", password), ("next", next)]).await;
    assert_eq!(page.location().as_deref(), Some(next), "{}", page.body);
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

async fn reset_path(t: &TestApp, c: &Client) -> String {
    c.get("/reset-password").await;
    c.post_form("/reset-password", &[("email", USER_EMAIL)]).await;
    let mail = t.messages_to(USER_EMAIL).await;
    let body = &mail.iter().find(|m| m.message.purpose == "password_reset").unwrap().message.body;
    let link = body.split_whitespace().find(|w| w.contains("/reset-password/")).unwrap();
    link.strip_prefix(&t.base).unwrap().to_owned()
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
