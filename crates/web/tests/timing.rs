//! S6: unknown and locked accounts take the same time to be refused. In a test binary of its
//! own, so no other test shares the machine while it measures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, PASSWORD, TestApp};
use usher_domain::duration::Span;

const EMAIL: &str = "olive@example.org";

/// The timing tests measure one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn try_sign_in(c: &Client, email: &str, password: &str) -> common::Page {
    if c.cookie("__Host-usher-csrf").is_none() {
        c.get("/sign-in").await;
    }
    c.post_form("/sign-in", &[("email", email), ("password", password)]).await
}

#[tokio::test]
async fn unknown_and_locked_accounts_take_the_same_time() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    for _ in 0..4 {
        try_sign_in(&c, EMAIL, "Wrong-pass-1").await;
    }
    let mut unknown = Vec::new();
    let mut locked = Vec::new();
    for i in 0..200 {
        if i % 10 == 0 {
            t.advance(Span::minutes(16)).await; // stay inside the rate limits
        }
        // Alternate which class goes first, so neither always pays for coming first.
        let mut pair = [("nobody@example.org", &mut unknown), (EMAIL, &mut locked)];
        if i % 2 == 1 {
            pair.reverse();
        }
        for (email, samples) in pair {
            let watch = usher_app::clock::Stopwatch::start();
            let page = try_sign_in(&c, email, PASSWORD).await;
            samples.push(watch.elapsed_seconds());
            assert_eq!(page.status, 400);
        }
    }
    unknown.sort_by(f64::total_cmp);
    locked.sort_by(f64::total_cmp);
    let (mu, ml) = (unknown[100], locked[100]);
    let ratio = mu.max(ml) / mu.min(ml);
    assert!(ratio < 1.10, "median unknown {mu:.4}s vs locked {ml:.4}s");
}

#[tokio::test]
async fn reset_requests_for_known_and_unknown_addresses_take_the_same_time() {
    let _alone = ONE_AT_A_TIME.lock().await;
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    c.get("/reset-password").await;
    let mut unknown = Vec::new();
    let mut known = Vec::new();
    for i in 0..40 {
        if i % 8 == 0 {
            t.advance(Span::hours(1)).await; // stay inside the rate limits
        }
        let mut pair = [("nobody@example.org", &mut unknown), (EMAIL, &mut known)];
        if i % 2 == 1 {
            pair.reverse();
        }
        for (email, samples) in pair {
            let watch = usher_app::clock::Stopwatch::start();
            let page = c.post_form("/reset-password", &[("email", email)]).await;
            samples.push(watch.elapsed_seconds());
            assert_eq!(page.status, 200);
        }
    }
    unknown.sort_by(f64::total_cmp);
    known.sort_by(f64::total_cmp);
    let (mu, mk) = (unknown[20], known[20]);
    assert!(mu.max(mk) / mu.min(mk) < 1.10, "median unknown {mu:.4}s vs known {mk:.4}s");
}
