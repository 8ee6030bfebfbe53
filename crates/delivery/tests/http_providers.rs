//! The Notify and Twilio providers against a local mock of each API: the exact requests they
//! make, and how each kind of answer is classified.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use usher_delivery::notify::{NotifyConfig, NotifyProvider};
use usher_delivery::twilio::{TwilioConfig, TwilioProvider};
use usher_delivery::{Provider, SendError};
use usher_domain::message::{Channel, OutgoingMessage};
use usher_domain::secret::SecretString;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const BODY: &str = "Your Usher code is 481 516. It expires in 10 minutes & works once + only here.";

/// An outbox message's ID, as the worker hands it over.
fn outbox_id() -> usher_domain::ids::MessageId {
    usher_domain::ids::MessageId::from_trusted("0000019b8c3f00000001a1b2c3d4e5f6".to_owned())
}

fn email() -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Email,
        purpose: "sign_in_code".to_owned(),
        recipient: "person@example.org".to_owned(),
        subject: "Your sign-in code".to_owned(),
        body: BODY.to_owned(),
        expires_at: None,
    }
}

fn sms() -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Sms,
        purpose: "sign_in_code".to_owned(),
        recipient: "+447700900123".to_owned(),
        subject: String::new(),
        body: BODY.to_owned(),
        expires_at: None,
    }
}

/// Mounts a mock answering every POST with `status` and `body`.
async fn answer(server: &MockServer, status: u16, body: serde_json::Value) {
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(status).set_body_json(body)).mount(server).await;
}

async fn only_request(server: &MockServer) -> Request {
    let mut requests = server.received_requests().await.expect("request recording is on");
    assert_eq!(requests.len(), 1, "exactly one request: {requests:?}");
    requests.remove(0)
}

fn header(request: &Request, name: &str) -> String {
    let values: Vec<_> = request.headers.get_all(name).iter().collect();
    assert_eq!(values.len(), 1, "exactly one {name} header");
    values[0].to_str().unwrap().to_owned()
}

/// A local URL where nothing listens (the port was free a moment ago).
fn nothing_listening() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

// ── GOV.UK Notify ────────────────────────────────────────────────────────────────────────────

const SERVICE_ID: &str = "26785a09-ab16-4eb0-8407-a37497a57506";
const SECRET_KEY: &str = "3d844edf-8d35-48ac-975b-e847b4f122b0";
const EMAIL_TEMPLATE: &str = "f33517ff-2a88-4f6e-b855-c550268ce08a";
const SMS_TEMPLATE: &str = "8f4b1c9e-5d2a-4e7b-9c3f-1a2b3c4d5e6f";
const NOW: i64 = 1_767_225_600;

fn notify(server: &MockServer, clock: Arc<AtomicI64>) -> NotifyProvider {
    // A trailing slash is allowed and not doubled.
    notify_at(&format!("{}/", server.uri()), clock)
}

fn notify_at(base_url: &str, clock: Arc<AtomicI64>) -> NotifyProvider {
    let config = NotifyConfig {
        api_key: SecretString::new(format!("usher_live-{SERVICE_ID}-{SECRET_KEY}")),
        base_url: base_url.to_owned(),
        email_template_id: EMAIL_TEMPLATE.to_owned(),
        sms_template_id: SMS_TEMPLATE.to_owned(),
    };
    NotifyProvider::new(config, reqwest::Client::new(), Arc::new(move || clock.load(Ordering::SeqCst))).unwrap()
}

fn fixed_clock() -> Arc<AtomicI64> {
    Arc::new(AtomicI64::new(NOW))
}

/// Checks the bearer token the way Notify does and returns its claims.
fn verified_claims(request: &Request) -> serde_json::Value {
    let auth = header(request, "authorization");
    let token = auth.strip_prefix("Bearer ").unwrap_or_else(|| panic!("a bearer token: {auth}"));
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT has three parts: {token}");
    let decode = |part: &str| -> serde_json::Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url without padding")).expect("JSON")
    };
    assert_eq!(decode(parts[0]), serde_json::json!({"typ": "JWT", "alg": "HS256"}));
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET_KEY.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()).expect("signed with the secret key (HS256)");
    decode(parts[1])
}

#[tokio::test]
async fn notify_email_is_the_documented_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/notifications/email"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "740e5834-3a29-46b4-9a6f-16142fde533a"})),
        )
        .expect(1)
        .mount(&server)
        .await;

    notify(&server, fixed_clock()).send(&outbox_id(), &email()).await.unwrap();

    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/v2/notifications/email");
    assert_eq!(request.url.query(), None);
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(verified_claims(&request), serde_json::json!({"iss": SERVICE_ID, "iat": NOW}));
    assert_eq!(
        request.body_json::<serde_json::Value>().unwrap(),
        serde_json::json!({
            "email_address": "person@example.org",
            "template_id": EMAIL_TEMPLATE,
            "personalisation": {"subject": "Your sign-in code", "body": BODY},
        })
    );
}

#[tokio::test]
async fn notify_sms_is_the_documented_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/notifications/sms"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"id": "740e5834-3a29-46b4-9a6f-16142fde533a"})),
        )
        .expect(1)
        .mount(&server)
        .await;

    notify(&server, fixed_clock()).send(&outbox_id(), &sms()).await.unwrap();

    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), "/v2/notifications/sms");
    assert_eq!(header(&request, "content-type"), "application/json");
    assert_eq!(verified_claims(&request), serde_json::json!({"iss": SERVICE_ID, "iat": NOW}));
    assert_eq!(
        request.body_json::<serde_json::Value>().unwrap(),
        serde_json::json!({
            "phone_number": "+447700900123",
            "template_id": SMS_TEMPLATE,
            "personalisation": {"body": BODY},
        })
    );
}

#[tokio::test]
async fn notify_reads_the_injected_clock_for_each_request() {
    let server = MockServer::start().await;
    answer(&server, 201, serde_json::json!({})).await;
    let clock = fixed_clock();
    let provider = notify(&server, clock.clone());

    provider.send(&outbox_id(), &sms()).await.unwrap();
    clock.store(NOW + 90, Ordering::SeqCst);
    provider.send(&outbox_id(), &sms()).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let iats: Vec<_> = requests.iter().map(|r| verified_claims(r)["iat"].clone()).collect();
    assert_eq!(iats, [serde_json::json!(NOW), serde_json::json!(NOW + 90)]);
}

fn notify_error(status: u16, error: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"status_code": status, "errors": [{"error": error, "message": message}]})
}

#[tokio::test]
async fn notify_400_is_permanent_and_says_why() {
    let server = MockServer::start().await;
    answer(
        &server,
        400,
        notify_error(400, "BadRequestError", "Can't send to this recipient using a team-only API key"),
    )
    .await;

    let err = notify(&server, fixed_clock()).send(&outbox_id(), &email()).await.unwrap_err();

    let SendError::Permanent(text) = &err else { panic!("expected a permanent failure, got {err:?}") };
    assert!(text.contains("400") && text.contains("Can't send to this recipient using a team-only API key"), "{text}");
    assert!(!text.contains("481 516") && !text.contains("sign-in code"), "never the message: {text}");
    assert!(!text.contains(SECRET_KEY), "{text}");
}

#[tokio::test]
async fn notify_500_is_transient() {
    let server = MockServer::start().await;
    answer(&server, 500, notify_error(500, "Exception", "Internal server error")).await;
    let err = notify(&server, fixed_clock()).send(&outbox_id(), &sms()).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(text) if text.contains("500")), "{err:?}");
}

#[tokio::test]
async fn notify_429_is_transient() {
    let server = MockServer::start().await;
    answer(
        &server,
        429,
        notify_error(429, "RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds"),
    )
    .await;
    let err = notify(&server, fixed_clock()).send(&outbox_id(), &email()).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(text) if text.contains("RateLimitError")), "{err:?}");
}

#[tokio::test]
async fn notify_unreachable_is_transient() {
    let provider = notify_at(&nothing_listening(), fixed_clock());
    let err = provider.send(&outbox_id(), &email()).await.unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
}

// ── Twilio ───────────────────────────────────────────────────────────────────────────────────

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const SERVICE_SID: &str = "MG00112233445566778899aabbccddeeff";

fn twilio(server: &MockServer, from: &str) -> TwilioProvider {
    twilio_at(&server.uri(), from)
}

fn twilio_at(base_url: &str, from: &str) -> TwilioProvider {
    let config = TwilioConfig {
        account_sid: ACCOUNT_SID.to_owned(),
        auth_token: SecretString::new(AUTH_TOKEN),
        from: from.to_owned(),
        base_url: base_url.to_owned(),
    };
    TwilioProvider::new(config, reqwest::Client::new()).unwrap()
}

fn messages_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json")
}

/// The form fields in the order they were sent, decoded.
fn form(request: &Request) -> Vec<(String, String)> {
    let body = String::from_utf8(request.body.clone()).unwrap();
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn twilio_sent_request(from: &str) -> Request {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(messages_path()))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(serde_json::json!({"sid": "SM0123", "status": "queued"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    twilio(&server, from).send(&outbox_id(), &sms()).await.unwrap();
    let request = only_request(&server).await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(request.url.path(), messages_path());
    assert_eq!(request.url.query(), None);
    assert_eq!(header(&request, "content-type"), "application/x-www-form-urlencoded");
    let expected = format!("Basic {}", STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}")));
    assert_eq!(header(&request, "authorization"), expected);
    request
}

#[tokio::test]
async fn twilio_sms_from_a_number_is_the_documented_request() {
    let request = twilio_sent_request("+447700900999").await;
    assert_eq!(form(&request), pairs(&[("To", "+447700900123"), ("Body", BODY), ("From", "+447700900999")]));
}

#[tokio::test]
async fn twilio_sms_from_a_messaging_service_is_the_documented_request() {
    let request = twilio_sent_request(SERVICE_SID).await;
    assert_eq!(form(&request), pairs(&[("To", "+447700900123"), ("Body", BODY), ("MessagingServiceSid", SERVICE_SID)]));
}

#[tokio::test]
async fn twilio_refuses_email_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(201)).expect(0).mount(&server).await;
    let err = twilio(&server, "+447700900999").send(&outbox_id(), &email()).await.unwrap_err();
    assert!(matches!(err, SendError::Permanent(_)), "{err:?}");
}

fn twilio_error(status: u16, code: i64, message: &str) -> serde_json::Value {
    serde_json::json!({
        "code": code,
        "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        "status": status,
    })
}

#[tokio::test]
async fn twilio_400_is_permanent_and_says_why() {
    let server = MockServer::start().await;
    answer(&server, 400, twilio_error(400, 21211, "Invalid 'To' Phone Number: +44770090XXXX")).await;

    let err = twilio(&server, "+447700900999").send(&outbox_id(), &sms()).await.unwrap_err();

    let SendError::Permanent(text) = &err else { panic!("expected a permanent failure, got {err:?}") };
    assert!(text.contains("400") && text.contains("21211") && text.contains("Invalid 'To' Phone Number"), "{text}");
    assert!(!text.contains("481 516") && !text.contains(AUTH_TOKEN), "{text}");
}

#[tokio::test]
async fn twilio_500_is_transient() {
    let server = MockServer::start().await;
    answer(&server, 500, twilio_error(500, 20500, "Internal Server Error")).await;
    let err = twilio(&server, "+447700900999").send(&outbox_id(), &sms()).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(text) if text.contains("500")), "{err:?}");
}

#[tokio::test]
async fn twilio_429_is_transient() {
    let server = MockServer::start().await;
    answer(&server, 429, twilio_error(429, 20429, "Too Many Requests")).await;
    let err = twilio(&server, SERVICE_SID).send(&outbox_id(), &sms()).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(text) if text.contains("20429")), "{err:?}");
}

#[tokio::test]
async fn twilio_unreachable_is_transient() {
    let provider = twilio_at(&nothing_listening(), "+447700900999");
    let err = provider.send(&outbox_id(), &sms()).await.unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
}
