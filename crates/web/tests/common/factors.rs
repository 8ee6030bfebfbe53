//! Helpers of the second-factor journeys: a person at set-up, an app set up from the page with
//! codes from an independent implementation (Python's pyotp), emailed codes, the password asked
//! again, a recovery phone.

use reqwest::Method;
use sqlx::Connection as _;
use usher_domain::duration::Span;

use super::{Client, Page, TestApp};

pub const USER_EMAIL: &str = "una@lawfirm.example";

pub const USER_PHONE: &str = "+447700900321";

pub const USER_PASSWORD: &str = "Tidy-Horse-Staple-7";

/// A code computed by pyotp from an `otpauth://` URI, at a Unix time.
pub fn pyotp_code(uri: &str, at: i64) -> String {
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
pub fn pyotp_code_from_key(key: &str, at: i64) -> String {
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

pub fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).unwrap_or_else(|| panic!("{start:?} not in {body}")) + start.len();
    let to = body[from..].find(end).unwrap() + from;
    &body[from..to]
}

/// The set-up page's otpauth URI, read from its link the way a phone would follow it.
pub fn otpauth_uri(page: &Page) -> String {
    let raw = between(&page.body, "href=\"otpauth://", "\"");
    format!("otpauth://{}", raw.replace("&amp;", "&").replace("&#x3D;", "="))
}

/// An organisation whose administrator is signed in, and a user of it who has activated and
/// has signed in with the password: at the set-up stage.
pub async fn user_at_setup(t: &TestApp) -> (Client, Client) {
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
pub async fn scan_page(t: &TestApp, c: &Client) -> Page {
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
pub async fn load_qr_page(c: &Client) -> Page {
    c.request(Method::GET, "/set-up/app", &[("sec-fetch-site", "same-origin")], None).await
}

/// Sets up an app and signs in with it; returns the signed-in client and the otpauth URI.
pub async fn user_with_app(t: &TestApp) -> (Client, String, Client) {
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

pub async fn password_step(t: &TestApp) -> Client {
    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"), "{}", page.body);
    c
}

pub async fn sign_in_with_app(t: &TestApp, uri: &str) -> Client {
    let c = password_step(t).await;
    let now = t.now().await.unix();
    let done = c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(uri, now))]).await;
    assert_eq!(done.location().as_deref(), Some("/home"), "{}", done.body);
    c
}

pub async fn db(t: &TestApp) -> sqlx::AnyConnection {
    sqlx::AnyConnection::connect(&t.database_url).await.unwrap()
}

/// A user who has set up emailed codes, at the second-factor step of a new sign-in.
pub async fn user_with_email_codes(t: &TestApp) -> Client {
    let (c, _) = user_at_setup(t).await;
    t.enrol_email(&c, USER_EMAIL).await;
    password_step(t).await
}

/// Re-enters the password on the confirm page, as the security page asks.
pub async fn confirm_password(c: &Client, next: &str) {
    let page = c.post_form("/account/confirm-password", &[("password", USER_PASSWORD), ("next", next)]).await;
    assert_eq!(page.location().as_deref(), Some(next), "{}", page.body);
}

/// Adds a proven recovery phone from the security page.
pub async fn add_recovery_phone(t: &TestApp, c: &Client, number: &str) {
    confirm_password(c, "/account/security/recovery-phone").await;
    let sent = c.post_form("/account/security/recovery-phone", &[("phone", number)]).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let e164 = usher_domain::phone::MobileNumber::parse(number).unwrap().to_string();
    let code = t.sms_code(&e164).await;
    let saved = c.post_form("/account/security/recovery-phone/confirm", &[("phone", &e164), ("code", &code)]).await;
    assert_eq!(saved.location().as_deref(), Some("/account/security?done=recovery_phone"), "{}", saved.body);
}

pub async fn confirm_password_as(c: &Client, password: &str, next: &str) {
    let page = c.post_form("/account/confirm-password", &[("password", password), ("next", next)]).await;
    assert_eq!(page.location().as_deref(), Some(next), "{}", page.body);
}

pub async fn reset_path(t: &TestApp, c: &Client) -> String {
    c.get("/reset-password").await;
    c.post_form("/reset-password", &[("email", USER_EMAIL)]).await;
    let mail = t.messages_to(USER_EMAIL).await;
    let body = &mail.iter().find(|m| m.message.purpose == "password_reset").unwrap().message.body;
    let link = body.split_whitespace().find(|w| w.contains("/reset-password/")).unwrap();
    link.strip_prefix(&t.base).unwrap().to_owned()
}
