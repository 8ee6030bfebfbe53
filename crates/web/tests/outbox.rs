//! The outbox and its worker: messages leave only when their transaction commits, expired codes
//! are dropped, failures are retried with backoff, and two workers never send one message twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::TestApp;
use usher_delivery::{DeliveryPolicy, Provider, SendError, SendFuture, deliver_due};
use usher_domain::Timestamp;
use usher_domain::duration::Span;
use usher_domain::message::{Channel, OutgoingMessage};

/// A provider that records what it was given and answers as told.
#[derive(Debug, Default)]
struct Recorder {
    sent: Mutex<Vec<String>>,
    answer: Mutex<Option<SendError>>,
    slow: bool,
}

impl Provider for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn send<'a>(&'a self, message: &'a OutgoingMessage) -> SendFuture<'a> {
        Box::pin(async move {
            if self.slow {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            self.sent.lock().unwrap().push(message.recipient.clone());
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
    tx.enqueue(m, now).await.unwrap();
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
    let out = deliver_due(&t.app.store, &p, &p, &policy, now).await.unwrap();
    assert_eq!(out.retried, 2);
    assert_eq!(
        deliver_due(&t.app.store, &p, &p, &policy, now).await.unwrap().retried,
        0,
        "not due again before the backoff"
    );

    // The provider recovers after the codes have expired: nothing is sent late.
    *p.answer.lock().unwrap() = None;
    let later = now.plus(Span::minutes(5)).plus(Span::seconds_(1));
    let out = deliver_due(&t.app.store, &p, &p, &policy, later).await.unwrap();
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
    let first = deliver_due(&t.app.store, &p, &p, &policy, at).await.unwrap();
    assert_eq!(first.retried, 1);
    at = at.plus(Span::seconds_(29));
    assert_eq!(deliver_due(&t.app.store, &p, &p, &policy, at).await.unwrap().retried, 0, "first retry after 30s");
    at = at.plus(Span::seconds_(1));
    assert_eq!(deliver_due(&t.app.store, &p, &p, &policy, at).await.unwrap().retried, 1);
    at = at.plus(Span::seconds_(59));
    assert_eq!(
        deliver_due(&t.app.store, &p, &p, &policy, at).await.unwrap(),
        Default::default(),
        "second retry after 60s more"
    );
    at = at.plus(Span::seconds_(1));
    assert_eq!(deliver_due(&t.app.store, &p, &p, &policy, at).await.unwrap().failed, 1, "third attempt is the last");
    let stored = t.app.store.recent_messages(1).await.unwrap();
    assert_eq!(stored[0].status.as_str(), "failed");
    assert_eq!(stored[0].attempts, 3);

    enqueue(&t, &message("+447700900011", None), true).await;
    *p.answer.lock().unwrap() = Some(SendError::Permanent("invalid number".into()));
    assert_eq!(deliver_due(&t.app.store, &p, &p, &policy, at).await.unwrap().failed, 1);
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
    let run = |store: usher_store::Store, p: Arc<Recorder>| async move {
        let mut total = 0;
        loop {
            let out = deliver_due(&store, p.as_ref(), p.as_ref(), &policy, now).await.unwrap();
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
