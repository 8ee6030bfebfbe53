//! The SMTP provider against a real SMTP server: `tests/helpers/smtp_sink.py` (aiosmtpd), run
//! as a child process for each test.

// Helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use usher_delivery::smtp::{SmtpConfig, SmtpProvider, SmtpTls};
use usher_delivery::{Provider, SendError, Sender};
use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};
use usher_testkit::SmtpSink;

fn sender() -> Sender {
    Sender { name: "Usher Sign-in".to_owned(), address: "no-reply@usher.test".to_owned() }
}

fn local(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(port),
        tls: SmtpTls::None,
        username: None,
        password: None,
        timeout_seconds: 10,
        max_connections: 2,
    }
}

fn email(to: &str) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Email,
        purpose: "activation".to_owned(),
        recipient: to.to_owned(),
        subject: "Activate your account".to_owned(),
        body: "Hello,\n\nUse this link to activate your account:\nhttps://usher.test/activate/abc123\n\nIt expires in 24 hours.".to_owned(),
        expires_at: None,
    }
}

/// The headers (unfolded) and the body of a message as received.
fn split_message(data: &str) -> (Vec<(String, String)>, String) {
    let data = data.replace("\r\n", "\n");
    let (head, body) = data.split_once("\n\n").expect("a blank line after the headers");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("a folded line follows a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    (headers, body.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    let found: Vec<&str> = headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect();
    assert_eq!(found.len(), 1, "exactly one {name} header in {headers:?}");
    found[0]
}

#[tokio::test]
async fn an_email_reaches_a_real_smtp_server() {
    let sink = SmtpSink::start("delivers");
    let provider = SmtpProvider::new(local(sink.port), sender()).unwrap();
    let message = email("person@example.org");

    let id = MessageId::generate();
    provider.send(&id, &message).await.unwrap();

    let received = sink.received(1);
    assert_eq!(received.len(), 1);
    let m = &received[0];
    assert_eq!(m["mail_from"], "no-reply@usher.test");
    assert_eq!(m["rcpt_tos"], serde_json::json!(["person@example.org"]));
    let (headers, body) = split_message(m["data"].as_str().unwrap());
    // The configured sender, with the display name quoted as RFC 5322 allows.
    assert_eq!(header(&headers, "from"), "\"Usher Sign-in\" <no-reply@usher.test>");
    assert_eq!(header(&headers, "from").replace('"', ""), sender().to_string());
    assert_eq!(header(&headers, "to"), "person@example.org");
    assert_eq!(header(&headers, "subject"), "Activate your account");
    assert!(header(&headers, "content-type").starts_with("text/plain"), "{headers:?}");
    assert_eq!(header(&headers, "message-id"), format!("<{id}@usher.test>"));
    assert!(!header(&headers, "date").is_empty());
    assert_eq!(body.trim_end(), message.body);
}

fn message_ids(received: &[serde_json::Value]) -> Vec<String> {
    received.iter().map(|m| header(&split_message(m["data"].as_str().unwrap()).0, "message-id").to_owned()).collect()
}

#[tokio::test]
async fn each_outbox_message_gets_its_own_message_id() {
    let sink = SmtpSink::start("ids");
    let provider = SmtpProvider::new(local(sink.port), sender()).unwrap();
    provider.send(&MessageId::generate(), &email("one@example.org")).await.unwrap();
    provider.send(&MessageId::generate(), &email("two@example.org")).await.unwrap();
    let received = sink.received(2);
    let ids = message_ids(&received);
    assert_eq!(received[1]["rcpt_tos"], serde_json::json!(["two@example.org"]));
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn a_retry_carries_the_message_id_of_the_first_attempt() {
    let sink = SmtpSink::start("retry");
    let provider = SmtpProvider::new(local(sink.port), sender()).unwrap();
    let id = MessageId::generate();
    let message = email("flaky-person@example.org");
    // The server takes the message and its answer is lost: a failure, to be tried again.
    let err = provider.send(&id, &message).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(text) if text.contains("451")), "{err:?}");
    provider.send(&id, &message).await.unwrap();
    let received = sink.received(2);
    assert_eq!(received.len(), 2);
    let ids = message_ids(&received);
    assert_eq!(ids[0], ids[1], "the receiver sees one message twice, not two messages");
    assert_eq!(ids[0], format!("<{id}@usher.test>"));
}

#[tokio::test]
async fn one_connection_carries_many_emails() {
    let sink = SmtpSink::start("reuse");
    let provider = SmtpProvider::new(local(sink.port), sender()).unwrap();
    for i in 0..5 {
        provider.send(&MessageId::generate(), &email(&format!("person{i}@example.org"))).await.unwrap();
    }
    let received = sink.received(5);
    assert_eq!(received.len(), 5);
    let peers: std::collections::HashSet<&str> = received.iter().filter_map(|m| m["peer"].as_str()).collect();
    assert_eq!(peers.len(), 1, "one after another, the emails share one connection: {peers:?}");
}

#[tokio::test]
async fn a_5xx_answer_is_permanent_and_a_4xx_answer_is_transient() {
    let sink = SmtpSink::start("refusals");
    let provider = SmtpProvider::new(local(sink.port), sender()).unwrap();

    let err = provider.send(&MessageId::generate(), &email("reject-me@example.org")).await.unwrap_err();
    assert!(matches!(&err, SendError::Permanent(text) if text.contains("550")), "{err:?}");
    let err = provider.send(&MessageId::generate(), &email("defer-me@example.org")).await.unwrap_err();
    assert!(matches!(&err, SendError::Transient(text) if text.contains("451")), "{err:?}");

    // The server still works, and took nothing else.
    provider.send(&MessageId::generate(), &email("person@example.org")).await.unwrap();
    let received = sink.received(1);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["rcpt_tos"], serde_json::json!(["person@example.org"]));
}

#[tokio::test]
async fn a_server_that_refuses_the_connection_is_a_transient_failure() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let provider = SmtpProvider::new(local(port), sender()).unwrap();
    let err = provider.send(&MessageId::generate(), &email("person@example.org")).await.unwrap_err();
    assert!(matches!(err, SendError::Transient(_)), "{err:?}");
    assert!(!err.to_string().contains("activate"), "the error never quotes the message: {err}");
}
