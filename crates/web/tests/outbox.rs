//! The outbox and its worker: messages leave only when their transaction commits, expired codes
//! are dropped, failures are retried with backoff, and two workers never send one message twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::TestApp;
use usher_delivery::{Channels, DeliveryPolicy, Provider, SendError, SendFuture, deliver_due};
use usher_domain::Timestamp;
use usher_domain::duration::Span;
use usher_domain::ids::MessageId;
use usher_domain::message::{Channel, OutgoingMessage};

/// A provider that records what it was given and answers as told.
#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<String>>,
    bodies: Mutex<Vec<String>>,
    answer: Mutex<Option<SendError>>,
    slow: bool,
    /// Never answers, like a worker killed during the send.
    hang: bool,
}

impl Provider for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn send<'a>(&'a self, _id: &'a MessageId, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            if self.slow {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            self.sent.lock().unwrap().push(message.recipient.clone());
            self.bodies.lock().unwrap().push(message.body.clone());
            if self.hang {
                std::future::pending::<()>().await;
            }
            match self.answer.lock().unwrap().clone() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })
    }
}

fn message(to: &str, expires_at: Option<Timestamp>) -> OutgoingMessage {
    OutgoingMessage {
        channel: Channel::Sms,
        purpose: "test_code".into(),
        recipient: to.into(),
        subject: String::new(),
        body: "Your code is 123456".into(),
        expires_at,
    }
}

async fn enqueue(t: &TestApp, m: &OutgoingMessage, commit: bool) {
    let now = t.now().await;
    let mut tx = t.app.store.begin().await.unwrap();
    tx.enqueue(m, &t.app.secret_key, now).await.unwrap();
    if commit {
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn only_committed_messages_are_sent_and_expired_codes_are_dropped() {
    let t = TestApp::start().await;
    let now = t.now().await;
    enqueue(&t, &message("+447700900001", None), false).await; // rolled back
    enqueue(&t, &message("+447700900002", Some(now.plus(Span::minutes(5)))), true).await;
    enqueue(&t, &message("+447700900003", Some(now.plus(Span::minutes(5)))), true).await;
    let p = Recorder::default();
    let policy = DeliveryPolicy { batch: 20, ..DeliveryPolicy::default() };

    // The provider is down: both are retried, not lost.
    *p.answer.lock().unwrap() = Some(SendError::Transient("connection refused".into()));
    let out = deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, now)
        .await
        .unwrap();
    assert_eq!(out.retried, 2);
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, now)
            .await
            .unwrap()
            .retried,
        0,
        "not due again before the backoff"
    );

    // The provider recovers after the codes have expired: nothing is sent late.
    *p.answer.lock().unwrap() = None;
    let later = now.plus(Span::minutes(5)).plus(Span::seconds_(1));
    let out = deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, later)
        .await
        .unwrap();
    assert_eq!(out.dropped, 2);
    assert_eq!(p.sent.lock().unwrap().len(), 2, "only the two failed attempts reached the provider");
    let stored = t.app.store.recent_messages(10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|m| m.status.as_str() == "dropped" && m.message.body.is_empty()), "code text erased");
}

#[tokio::test]
async fn retries_back_off_and_give_up_and_permanent_failures_stop_at_once() {
    let t = TestApp::start().await;
    let now = t.now().await;
    enqueue(&t, &message("+447700900010", None), true).await;
    let p = Recorder::default();
    *p.answer.lock().unwrap() = Some(SendError::Transient("busy".into()));
    let policy = DeliveryPolicy { max_attempts: 3, ..DeliveryPolicy::default() };
    let mut at = now;
    let first = deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, at)
        .await
        .unwrap();
    assert_eq!(first.retried, 1);
    at = at.plus(Span::seconds_(29));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, at)
            .await
            .unwrap()
            .retried,
        0,
        "first retry after 30s"
    );
    at = at.plus(Span::seconds_(1));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, at)
            .await
            .unwrap()
            .retried,
        1
    );
    at = at.plus(Span::seconds_(59));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, at)
            .await
            .unwrap(),
        Default::default(),
        "second retry after 60s more"
    );
    at = at.plus(Span::seconds_(1));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, at)
            .await
            .unwrap()
            .failed,
        1,
        "third attempt is the last"
    );
    let stored = t.app.store.recent_messages(1).await.unwrap();
    assert_eq!(stored[0].status.as_str(), "failed");
    assert_eq!(stored[0].attempts, 3);

    enqueue(&t, &message("+447700900011", None), true).await;
    *p.answer.lock().unwrap() = Some(SendError::Permanent("invalid number".into()));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, at)
            .await
            .unwrap()
            .failed,
        1
    );
}

#[tokio::test]
async fn two_workers_on_one_database_send_each_message_once() {
    let a = TestApp::start().await;
    let b = TestApp::start_on(&a.database_url, |_| {}).await;
    for i in 0..30 {
        enqueue(&a, &message(&format!("+4477009{i:05}"), None), true).await;
    }
    let p = Arc::new(Recorder { slow: true, ..Recorder::default() });
    let now = a.now().await;
    let policy = DeliveryPolicy { batch: 10, ..DeliveryPolicy::default() };
    let keys = &**a.app.secret_key;
    let run = |store: usher_store::Store, p: Arc<Recorder>| async move {
        let mut total = 0;
        loop {
            let out = deliver_due(
                &store,
                keys,
                Channels { email: p.as_ref(), sms: p.as_ref(), logout: p.as_ref() },
                &policy,
                now,
            )
            .await
            .unwrap();
            if out.sent == 0 {
                break total;
            }
            total += out.sent;
        }
    };
    let (x, y) = tokio::join!(run(a.app.store.clone(), p.clone()), run(b.app.store.clone(), p.clone()));
    assert_eq!(x + y, 30);
    let mut sent = p.sent.lock().unwrap().clone();
    sent.sort();
    sent.dedup();
    assert_eq!(sent.len(), 30, "no message reached the provider twice");
    assert_eq!(p.sent.lock().unwrap().len(), 30);
}

#[tokio::test]
async fn the_dev_mailbox_keeps_messages_for_the_mailbox_page() {
    let t = TestApp::start().await;
    enqueue(&t, &message("+447700900123", None), true).await;
    let all = t.deliver().await;
    assert_eq!(all[0].provider.as_deref(), Some("dev"));
    assert_eq!(all[0].message.body, "Your code is 123456");
    let page = t.client().get("/dev/mailbox").await;
    assert_eq!(page.h1(), "Dev mailbox");
    assert!(page.body.contains("Your code is 123456"));
}

#[tokio::test]
async fn a_send_cut_short_by_a_crash_is_retried_within_a_minute_but_not_while_it_may_still_be_going() {
    let t = TestApp::start().await;
    enqueue(&t, &message("+447700900200", None), true).await;
    let now = t.now().await;
    let policy = DeliveryPolicy::default();
    // A worker claims the message and dies in the middle of sending it (kill -9).
    let dying = Arc::new(Recorder { hang: true, ..Recorder::default() });
    let store = t.app.store.clone();
    let keys = (**t.app.secret_key).clone();
    let worker = {
        let dying = dying.clone();
        tokio::spawn(async move {
            deliver_due(
                &store,
                &keys,
                Channels { email: dying.as_ref(), sms: dying.as_ref(), logout: dying.as_ref() },
                &policy,
                now,
            )
            .await
        })
    };
    while dying.sent.lock().unwrap().is_empty() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    worker.abort();

    let p = Recorder::default();
    // While the first send could still be running, nobody else takes the message.
    let during = now.plus(Span::seconds_(30));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, during)
            .await
            .unwrap(),
        Default::default()
    );
    // Its claim lapses soon after: the message goes out about a minute later, not five.
    let after = now.plus(Span::seconds_(61));
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, after)
            .await
            .unwrap()
            .sent,
        1
    );
    assert_eq!(p.sent.lock().unwrap().as_slice(), ["+447700900200"]);
}

fn smtp_to(sink: &usher_testkit::SmtpSink) -> usher_delivery::smtp::SmtpProvider {
    let config = usher_delivery::smtp::SmtpConfig {
        host: "127.0.0.1".into(),
        port: Some(sink.port),
        tls: usher_delivery::smtp::SmtpTls::None,
        username: None,
        password: None,
        timeout_seconds: 10,
        max_connections: 4,
    };
    let sender = usher_delivery::Sender { name: "Usher".into(), address: "no-reply@usher.test".into() };
    usher_delivery::smtp::SmtpProvider::new(config, sender).unwrap()
}

fn message_id_of(data: &str) -> String {
    data.lines()
        .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("message-id")))
        .map(|(_, v)| v.trim().to_owned())
        .expect("a Message-ID header")
}

#[tokio::test]
async fn an_email_sent_twice_after_a_lost_answer_carries_one_message_id() {
    let t = TestApp::start().await;
    let sink = usher_testkit::SmtpSink::start("outbox-retry");
    let smtp = smtp_to(&sink);
    let mail = OutgoingMessage {
        channel: Channel::Email,
        purpose: "test_link".into(),
        recipient: "flaky-person@example.org".into(),
        subject: "A link".into(),
        body: "Your link".into(),
        expires_at: None,
    };
    enqueue(&t, &mail, true).await;
    let now = t.now().await;
    let policy = DeliveryPolicy::default();
    // The server takes the message but the answer is lost: the worker must try again.
    let first = deliver_due(
        &t.app.store,
        &t.app.secret_key,
        Channels { email: &smtp, sms: &smtp, logout: &smtp },
        &policy,
        now,
    )
    .await
    .unwrap();
    assert_eq!(first.retried, 1, "{first:?}");
    let later = now.plus(Span::seconds_(policy.backoff(1)));
    let second = deliver_due(
        &t.app.store,
        &t.app.secret_key,
        Channels { email: &smtp, sms: &smtp, logout: &smtp },
        &policy,
        later,
    )
    .await
    .unwrap();
    assert_eq!(second.sent, 1, "{second:?}");

    let received = sink.received(2);
    assert_eq!(received.len(), 2, "the receiver got two copies");
    let ids: Vec<String> = received.iter().map(|m| message_id_of(m["data"].as_str().unwrap())).collect();
    assert_eq!(ids[0], ids[1], "both copies carry one Message-ID, so the receiver can drop the second");
    let stored = t.app.store.recent_messages(1).await.unwrap();
    assert_eq!(ids[0], format!("<{}@usher.test>", stored[0].id), "the outbox message's ID at the sender's domain");
}

/// Every byte the database holds for the outbox and everything else: the SQLite file and its
/// write-ahead log after a checkpoint, or every row of every table in PostgreSQL, as text.
async fn database_bytes(t: &TestApp) -> Vec<u8> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    if t.app.store.engine() == usher_store::Engine::Sqlite {
        sqlx::query("PRAGMA wal_checkpoint(FULL)").execute(&mut conn).await.unwrap();
        let path = t.database_url.trim_start_matches("sqlite://").split('?').next().unwrap().to_owned();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        return bytes;
    }
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let mut bytes = Vec::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {table} t")).fetch_all(&mut conn).await.unwrap();
        for row in rows {
            bytes.extend(row.into_bytes());
            bytes.push(b'\n');
        }
    }
    bytes
}

fn holds(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn reset_links_and_codes_are_never_in_the_clear_in_the_database() {
    let t = TestApp::start().await;
    // Signing the operator in emails codes through the dev mailbox, which keeps what it shows.
    let c = t.operator().await;
    let codes: Vec<String> = t
        .deliver()
        .await
        .iter()
        .filter(|m| m.message.purpose == "email_code")
        .map(|m| m.message.body.split("code is ").nth(1).unwrap().split_whitespace().next().unwrap().to_owned())
        .collect();
    assert!(!codes.is_empty());
    let page = c.get("/dev/mailbox").await;
    assert!(codes.iter().all(|code| page.body.contains(code.as_str())), "the dev mailbox still shows them");

    // A reset link, pending in the outbox and then delivered by a real provider.
    let anyone = t.client();
    anyone.get("/reset-password").await;
    anyone.post_form("/reset-password", &[("email", "olive@example.org")]).await;
    let pending = database_bytes(&t).await;
    let p = Recorder::default();
    let now = t.now().await;
    let policy = DeliveryPolicy { batch: 20, ..DeliveryPolicy::default() };
    assert_eq!(
        deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, now)
            .await
            .unwrap()
            .sent,
        1
    );
    let body = p.bodies.lock().unwrap()[0].clone();
    let token = body.split("/reset-password/").nth(1).unwrap().split_whitespace().next().unwrap().to_owned();
    assert_eq!(token.len(), 43);
    let delivered = database_bytes(&t).await;

    for (when, bytes) in [("pending", &pending), ("delivered", &delivered)] {
        assert!(!holds(bytes, &token), "the live reset link is in the database in the clear ({when})");
        assert!(!holds(bytes, "Someone asked to reset"), "the reset email's text is in the clear ({when})");
        for code in &codes {
            assert!(!holds(bytes, &format!("code is {code}")), "an emailed code is in the clear ({when})");
        }
    }
}

#[tokio::test]
async fn bodies_stored_in_the_clear_by_an_earlier_version_are_sealed_and_still_delivered() {
    let t = TestApp::start().await;
    let now = t.now().await;
    // A row as Usher wrote it before migration 8: body in the clear, body_sealed = 0.
    sqlx::query(
        "INSERT INTO outbox (id, channel, purpose, recipient, subject, body, created_at, status, next_attempt_at) \
         VALUES ('00000000000000000000000000legacy', 'sms', 'test_code', '+447700900300', '', 'Your code is 654321', $1, 'pending', $1)",
    )
    .bind(now.unix())
    .execute(&any_pool(&t).await)
    .await
    .unwrap();
    assert!(holds(&database_bytes(&t).await, "Your code is 654321"));
    assert_eq!(t.app.seal_plain_outbox_bodies().await.unwrap(), 1);
    assert_eq!(t.app.seal_plain_outbox_bodies().await.unwrap(), 0, "once");
    assert!(!holds(&database_bytes(&t).await, "Your code is 654321"), "sealed, and the old text overwritten");
    let p = Recorder::default();
    assert_eq!(
        deliver_due(
            &t.app.store,
            &t.app.secret_key,
            Channels { email: &p, sms: &p, logout: &p },
            &DeliveryPolicy::default(),
            now
        )
        .await
        .unwrap()
        .sent,
        1
    );
    assert_eq!(p.bodies.lock().unwrap().as_slice(), ["Your code is 654321"]);
}

#[tokio::test]
async fn a_sealed_body_moved_to_another_message_or_changed_fails_closed() {
    let t = TestApp::start().await;
    enqueue(&t, &message("+447700900400", None), true).await;
    enqueue(&t, &OutgoingMessage { body: "Another body".into(), ..message("+447700900401", None) }, true).await;
    let pool = any_pool(&t).await;
    // Copy the first body over the second.
    sqlx::query(
        "UPDATE outbox SET body = (SELECT body FROM outbox WHERE recipient = '+447700900400') WHERE recipient = '+447700900401'",
    )
    .execute(&pool)
    .await
    .unwrap();
    let p = Recorder::default();
    let now = t.now().await;
    let policy = DeliveryPolicy::default();
    let out = deliver_due(&t.app.store, &t.app.secret_key, Channels { email: &p, sms: &p, logout: &p }, &policy, now)
        .await
        .unwrap();
    assert_eq!((out.sent, out.failed), (1, 1));
    assert_eq!(p.sent.lock().unwrap().as_slice(), ["+447700900400"], "the moved body is never sent");
}

async fn any_pool(t: &TestApp) -> sqlx::AnyPool {
    sqlx::any::install_default_drivers();
    sqlx::AnyPool::connect(&t.database_url).await.unwrap()
}
