//! The in-process test server: the whole app on a random port with the test clock, against
//! SQLite or PostgreSQL (`USHER_TEST_DATABASE=sqlite` or a postgres:// URL), with a
//! cookie-aware client that drives the real HTML forms.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod factors;
pub mod logout;
pub mod oidc;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use reqwest::header::{HeaderMap, SET_COOKIE};
use usher_app::config::Config;
use usher_app::delivery::Providers;
use usher_app::{App, Clock, RequestContext, SecretKey};
use usher_delivery::DeliveryPolicy;
use usher_domain::Timestamp;
use usher_domain::duration::Span;
use usher_store::{OutboxMessage, Store};

/// A fixed start for the test clock: 2026-01-05T09:00:00Z.
pub const T0: i64 = 1_767_603_600;

pub struct TestApp {
    pub base: String,
    pub app: App,
    pub database_url: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

static CLEANED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The database URL for one test: a fresh SQLite file or a fresh PostgreSQL database.
pub async fn fresh_database_url() -> String {
    let choice = std::env::var("USHER_TEST_DATABASE").unwrap_or_else(|_| "sqlite".into());
    let unique = format!(
        "usher_t_{}_{}",
        std::process::id(),
        usher_domain::ids::UserId::generate().as_str().get(..12).unwrap_or("x")
    );
    if choice == "sqlite" {
        let dir = std::env::temp_dir().join("usher-tests");
        std::fs::create_dir_all(&dir).expect("temp dir");
        return format!("sqlite://{}?mode=rwc", dir.join(format!("{unique}.db")).display());
    }
    assert!(choice.starts_with("postgres"), "USHER_TEST_DATABASE must be `sqlite` or a postgres:// URL, not {choice}");
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut admin = sqlx::AnyConnection::connect(&choice).await.unwrap_or_else(|e| {
        panic!("PostgreSQL at {choice} is not reachable ({e}). The suite runs on PostgreSQL too; start it, or run with USHER_TEST_DATABASE=sqlite for a local SQLite-only run.")
    });
    if !CLEANED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // Databases left by earlier test processes (test binaries run one after another).
        let mine = format!("usher_t_{}_%", std::process::id());
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'usher\\_t\\_%' AND datname NOT LIKE $1",
        )
        .bind(mine)
        .fetch_all(&mut admin)
        .await
        .unwrap_or_default();
        for name in old {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await;
        }
    }
    sqlx::query(&format!("CREATE DATABASE {unique}")).execute(&mut admin).await.expect("create test database");
    let (server, _) = choice.rsplit_once('/').expect("postgres URL with a database name");
    format!("{server}/{unique}")
}

pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        secret_key: Some(usher_domain::secret::SecretString::new("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
        hashing_threads: 2,
        ..Config::default()
    }
}

impl TestApp {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let database_url = fresh_database_url().await;
        Self::start_on(&database_url, adjust).await
    }

    /// Starts another server on an existing database (a second node).
    pub async fn start_on(database_url: &str, adjust: impl FnOnce(&mut Config)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let mut config = test_config(database_url);
        config.public_base_url = format!("http://{addr}");
        config.listen = addr.to_string();
        adjust(&mut config);
        let store = Store::connect(database_url, 5).await.expect("connect");
        store.migrate(T0).await.expect("migrate");
        let mut tx = store.begin().await.expect("begin");
        tx.start_test_clock(T0).await.expect("clock");
        tx.commit().await.expect("commit");
        let key = SecretKey::load(&config).expect("key");
        let app = App::new(store.clone(), Clock::Test(store), config, key);
        app.prepare_provider(usher_domain::Timestamp::from_unix(T0)).await.expect("provider keys");
        let state = usher_web::AppState::new(app.clone(), true);
        let server = tokio::spawn(async move {
            let _ = usher_web::serve(listener, state, std::future::pending()).await;
        });
        Self { base: format!("http://{addr}"), app, database_url: database_url.to_owned(), server }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.base)
    }

    pub async fn now(&self) -> Timestamp {
        self.app.clock.now().await.expect("now")
    }

    pub async fn advance(&self, span: Span) {
        usher_app::test_clock::advance_in_store(&self.app.store, span).await.expect("advance").expect("clock running");
    }

    /// Runs a delivery pass with the dev mailbox (not printing) and returns every message, newest first.
    pub async fn deliver(&self) -> Vec<OutboxMessage> {
        let providers =
            Providers::from_config(&self.app.config, false).expect("providers").with_logout(&self.app).expect("logout");
        while self.app.deliver_outbox(&providers, &DeliveryPolicy::default()).await.expect("deliver")
            != usher_delivery::Outcome::default()
        {}
        self.app.outbox_messages(1000).await.expect("messages")
    }

    /// The first operator's set-up link, as `usher serve` would print it.
    pub async fn setup_link(&self) -> String {
        let now = self.now().await;
        let link = self.app.operator_setup_link(now).await.expect("link").expect("no operator yet");
        link.strip_prefix(&self.base).expect("link on base URL").to_owned()
    }

    /// Sets up the first operator and returns a client signed in as them.
    pub async fn operator(&self) -> Client {
        let link = self.setup_link().await;
        let c = self.client();
        c.get(&link).await;
        let page = c
            .post_form(
                &link,
                &[
                    ("full_name", "Olive Operator"),
                    ("email", "olive@example.org"),
                    ("password", PASSWORD),
                    ("confirm_password", PASSWORD),
                ],
            )
            .await;
        assert_eq!(page.status, 303, "{}", page.body);
        self.second_step(&c, page, "olive@example.org", PASSWORD).await;
        c
    }

    pub fn system() -> RequestContext {
        RequestContext::system("test")
    }
}

pub const PASSWORD: &str = "Tr1cky-Horse-42";

/// A response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn h1(&self) -> String {
        let start = self.body.find("<h1").and_then(|i| self.body[i..].find('>').map(|j| i + j + 1));
        let Some(start) = start else {
            return String::new();
        };
        let end = self.body[start..].find("</h1>").map_or(self.body.len(), |e| start + e);
        self.body[start..end].trim().to_owned()
    }

    pub fn location(&self) -> Option<String> {
        self.headers.get("location").and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A browser stand-in: keeps cookies (whatever their Secure flag, as browsers do on localhost)
/// and sends the anti-forgery token with every form.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    pub cookies: Arc<Mutex<HashMap<String, String>>>,
}

impl Client {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { base: base.to_owned(), http, cookies: Arc::default() }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.lock().expect("cookies").get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies.lock().expect("cookies").insert(name.to_owned(), value.to_owned());
    }

    fn cookie_header(&self) -> String {
        self.cookies.lock().expect("cookies").iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn read(&self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        for c in headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let first = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = first.split_once('=') {
                let mut jar = self.cookies.lock().expect("cookies");
                if c.contains("Max-Age=0") {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let body = response.text().await.unwrap_or_default();
        Page { status, headers, body }
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        extra: &[(&str, &str)],
        body: Option<(String, &str)>,
    ) -> Page {
        let mut rb = self.http.request(method, format!("{}{path}", self.base)).header("cookie", self.cookie_header());
        for (k, v) in extra {
            rb = rb.header(*k, *v);
        }
        if let Some((text, content_type)) = body {
            rb = rb.header("content-type", content_type).body(text);
        }
        let response = rb.send().await.expect("request");
        self.read(response).await
    }

    pub async fn get(&self, path: &str) -> Page {
        self.request(reqwest::Method::GET, path, &[], None).await
    }

    /// Submits a form as a browser would: same-origin, with the anti-forgery token.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let token = self.cookie("__Host-usher-csrf").unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all, &[("sec-fetch-site", "same-origin")]).await
    }

    pub async fn post_raw(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let body = fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        self.request(reqwest::Method::POST, path, headers, Some((body, "application/x-www-form-urlencoded"))).await
    }

    pub async fn post_json(&self, path: &str, json: serde_json::Value) -> Page {
        self.request(reqwest::Method::POST, path, &[], Some((json.to_string(), "application/json"))).await
    }
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A page with its per-request values (anti-forgery token, CSP nonce, typed-back email) blanked,
/// so two answers can be compared for sameness.
pub fn masked(body: &str) -> String {
    masked_after(body, &["value=\"", "nonce=\""])
}

/// Blanks the quoted value that follows each of `markers`.
pub fn masked_after(body: &str, markers: &[&str]) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let next = markers.iter().filter_map(|m| rest.find(m).map(|i| (i, m.len()))).min();
        let Some((i, len)) = next else { break };
        out.push_str(&rest[..i + len]);
        rest = &rest[i + len..];
        let end = rest.find('"').unwrap_or(rest.len());
        out.push_str("MASKED");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

impl TestApp {
    /// Delivers the outbox and returns the messages to one recipient, newest first.
    pub async fn messages_to(&self, recipient: &str) -> Vec<OutboxMessage> {
        self.deliver().await.into_iter().filter(|m| m.message.recipient == recipient).collect()
    }

    /// The path of the newest activation link emailed to `email`.
    pub async fn activation_path(&self, email: &str) -> String {
        let mail = self.messages_to(email).await;
        let body = &mail.iter().find(|m| m.message.purpose == "activation").expect("an activation email").message.body;
        let start = body.find(&format!("{}/activate/", self.base)).expect("a link") + self.base.len();
        body[start..].split_whitespace().next().unwrap().to_owned()
    }

    /// The code in the newest text message to `phone` (E.164).
    pub async fn sms_code(&self, phone: &str) -> String {
        let sms = self.messages_to(phone).await;
        let body = &sms.first().expect("a text message").message.body;
        body.split_whitespace().next().unwrap().to_owned()
    }

    /// Walks an activation from its link to the end; returns the last page.
    pub async fn activate(&self, path: &str, phone: &str, password: &str) -> Page {
        let c = self.client();
        let page = c.get(path).await;
        assert_eq!(page.h1(), "Terms and conditions", "{}", page.body);
        let version =
            page.body.split("name=\"version\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let page = c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", &version)]).await;
        assert_eq!(page.h1(), "Check your mobile number");
        let page = c.post_form(&format!("{path}/send-code"), &[]).await;
        assert_eq!(page.h1(), "Enter the code we texted you");
        let code = self.sms_code(phone).await;
        let page = c.post_form(&format!("{path}/code"), &[("code", &code)]).await;
        assert_eq!(page.h1(), "Create your password", "{}", page.body);
        c.post_form(&format!("{path}/password"), &[("password", password), ("confirm_password", password)]).await
    }

    /// A client signed in with an email address and password. The second step is done with
    /// emailed codes: set up at the first sign-in (which signs out), then used.
    pub async fn sign_in(&self, email: &str, password: &str) -> Client {
        let c = self.client();
        c.get("/sign-in").await;
        let page = c.post_form("/sign-in", &[("email", email), ("password", password)]).await;
        assert_eq!(page.status, 303, "sign-in as {email} failed: {}", page.body);
        self.second_step(&c, page, email, password).await;
        c
    }

    /// Finishes a sign-in whose password step answered `page`: sets up emailed codes if asked
    /// (then signs in again), and gives an emailed code.
    pub async fn second_step(&self, c: &Client, page: Page, email: &str, password: &str) {
        let mut location = page.location().unwrap_or_default();
        if location == "/set-up" {
            self.enrol_email(c, email).await;
            let again = c.post_form("/sign-in", &[("email", email), ("password", password)]).await;
            location = again.location().unwrap_or_default();
        }
        if location == "/sign-in/second-factor" {
            let sent = c.post_form("/sign-in/second-factor/email-code", &[]).await;
            assert_eq!(sent.status, 303, "{}", sent.body);
            let code = self.email_code(email).await;
            let done = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &code)]).await;
            assert_eq!(done.status, 303, "second factor for {email}: {}", done.body);
            location = done.location().unwrap_or_default();
        }
        assert!(location == "/home" || location == "/account/password", "{email} ended at {location}");
    }

    /// Gives the emailed second factor of a sign-in whose password step answered `page`, and
    /// checks that it then goes to `expected` (a remembered page).
    pub async fn second_step_to(&self, c: &Client, page: Page, email: &str, expected: &str) {
        assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"), "{}", page.body);
        let sent = c.post_form("/sign-in/second-factor/email-code", &[]).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        let code = self.email_code(email).await;
        let done = c.post_form("/sign-in/second-factor", &[("method", "email"), ("code", &code)]).await;
        assert_eq!(done.location().as_deref(), Some(expected), "{}", done.body);
    }

    /// Proves the second factor on a reset link's page with an emailed code, as a person whose
    /// factor is emailed codes would.
    pub async fn prove_reset(&self, c: &Client, link: &str, email: &str) {
        if c.cookie("__Host-usher-csrf").is_none() {
            c.get("/sign-in").await;
        }
        let sent = c.post_form(&format!("{link}/second-factor/email-code"), &[]).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        let code = self.email_code(email).await;
        let proven = c.post_form(&format!("{link}/second-factor"), &[("method", "email"), ("code", &code)]).await;
        assert_eq!(proven.location().as_deref(), Some(link), "{}", proven.body);
    }

    /// The second step of a JSON API sign-in, with an emailed code.
    pub async fn api_second_factor(&self, c: &Client, email: &str) {
        assert_eq!(c.api(reqwest::Method::POST, "/api/v1/sign-in/email-code", None).await.status, 204);
        let code = self.email_code(email).await;
        let done = c
            .api(
                reqwest::Method::POST,
                "/api/v1/sign-in/second-factor",
                Some(serde_json::json!({"method": "email", "code": code})),
            )
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
    }

    /// Sets up emailed codes in a session at the set-up stage; the session then ends.
    pub async fn enrol_email(&self, c: &Client, email: &str) -> Page {
        let sent = c.post_form("/set-up/email/send", &[]).await;
        assert_eq!(sent.status, 303, "{}", sent.body);
        let code = self.email_code(email).await;
        let done = c.post_form("/set-up/email", &[("code", &code)]).await;
        assert_eq!(done.h1(), "Email codes set up", "{}", done.body);
        c.get("/sign-in").await;
        done
    }

    /// The code in the newest code email to `email`.
    pub async fn email_code(&self, email: &str) -> String {
        let mail = self.messages_to(email).await;
        let body = &mail.iter().find(|m| m.message.purpose == "email_code").expect("a code email").message.body;
        body.split("code is ").nth(1).expect("a code")[..6].to_owned()
    }

    /// Registers an organisation and activates its administrator; returns the organisation's
    /// ID and a client signed in as the administrator.
    pub async fn organisation_with_admin(
        &self,
        operator: &Client,
        name: &str,
        domain: &str,
        admin_phone: &str,
    ) -> (String, Client) {
        operator.get("/operator/organisations/new").await;
        let made = operator
            .post_form(
                "/operator/organisations/new",
                &[("name", name), ("kind", "law_firm"), ("email_domains", domain)],
            )
            .await;
        assert_eq!(made.status, 303, "{}", made.body);
        let org_path = made.location().unwrap().split('?').next().unwrap().to_owned();
        let org_id = org_path.rsplit('/').next().unwrap().to_owned();
        let admin_email = format!("admin@{domain}");
        let invited = operator
            .post_form(
                &format!("{org_path}/administrators/new"),
                &[("full_name", &format!("Ada Admin of {name}")), ("email", &admin_email), ("mobile", admin_phone)],
            )
            .await;
        assert_eq!(invited.status, 303, "{}", invited.body);
        let path = self.activation_path(&admin_email).await;
        let e164 = usher_domain::phone::MobileNumber::parse(admin_phone).unwrap().to_string();
        let done = self.activate(&path, &e164, ADMIN_PASSWORD).await;
        assert_eq!(done.h1(), "Your account is activated");
        (org_id, self.sign_in(&admin_email, ADMIN_PASSWORD).await)
    }
}

pub const ADMIN_PASSWORD: &str = "Adm1n-Horse-Battery";

impl Client {
    /// A JSON API write as our own pages' scripts would make it: with the anti-forgery header.
    pub async fn api(&self, method: reqwest::Method, path: &str, json: Option<serde_json::Value>) -> Page {
        let token = self.cookie("__Host-usher-csrf").unwrap_or_default();
        let body = json.map(|j| (j.to_string(), "application/json"));
        let body = body.or_else(|| (method != reqwest::Method::GET).then(|| ("{}".to_owned(), "application/json")));
        self.request(method, path, &[("x-csrf-token", token.as_str())], body).await
    }
}

/// Submits the sign-in form (fetching it first for the anti-forgery cookie).
pub async fn try_sign_in(c: &Client, email: &str, password: &str) -> Page {
    if c.cookie("__Host-usher-csrf").is_none() {
        c.get("/sign-in").await;
    }
    c.post_form("/sign-in", &[("email", email), ("password", password)]).await
}

/// The stored account of `email`.
pub async fn user(t: &TestApp, email: &str) -> usher_app::User {
    let mut tx = t.app.store.begin().await.unwrap();
    tx.user_by_email(&usher_domain::email::EmailAddress::parse(email).unwrap()).await.unwrap().unwrap()
}

/// The path of the newest reset link emailed to `email`.
pub async fn reset_link(t: &TestApp, email: &str) -> String {
    let mail = t.messages_to(email).await;
    let body = &mail.iter().find(|m| m.message.purpose == "password_reset").expect("a reset email").message.body;
    let start = body.find(&format!("{}/reset-password/", t.base)).unwrap() + t.base.len();
    body[start..].split_whitespace().next().unwrap().to_owned()
}
