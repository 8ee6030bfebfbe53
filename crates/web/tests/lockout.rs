//! The lock on wrong passwords (S13): four in a row lock the account wherever they are typed
//! (the sign-in form, the change-password form, a password asked for again), counted exactly on
//! two servers, shared across addresses behind a proxy, and unlocked by an administrator or a
//! reset. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, PASSWORD, TestApp, reset_link, try_sign_in, user};
use reqwest::Method;
use usher_domain::duration::Span;

const EMAIL: &str = "olive@example.org";

#[tokio::test]
async fn four_wrong_passwords_lock_the_account_which_says_how_to_unlock() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    for _ in 0..3 {
        assert_eq!(try_sign_in(&c, EMAIL, "Wrong-pass-1").await.status, 400);
    }
    assert_eq!(try_sign_in(&c, EMAIL, PASSWORD).await.status, 303, "a success resets the count");
    assert_eq!(user(&t, EMAIL).await.failed_sign_ins, 0);
    let c = t.client();
    for _ in 0..4 {
        try_sign_in(&c, EMAIL, "Wrong-pass-1").await;
    }
    let fifth = try_sign_in(&c, EMAIL, PASSWORD).await;
    assert_eq!(fifth.status, 400, "the right password is refused once locked");
    assert!(fifth.body.contains("reset your password or ask your organisation administrator"));
    // One way to get help, which leads to the reset.
    assert!(fifth.body.contains("href=\"/recover\""), "the page links to getting help");
    assert!(c.get("/recover").await.body.contains("href=\"/reset-password\""), "help leads to the reset");
    let mail = t.messages_to(EMAIL).await;
    assert!(mail.iter().any(|m| m.message.purpose == "account_locked"), "the user is emailed when the account locks");
    let events = t.app.store.audit_events_after(0, 10_000).await.unwrap();
    assert!(events.iter().any(|e| e.event.action == "account.locked"));
    assert_eq!(
        events.iter().filter(|e| e.event.action == "sign_in" && e.event.outcome == "failure").count(),
        3 + 4 + 1
    );

    // A reset unlocks it.
    c.get("/reset-password").await;
    c.post_form("/reset-password", &[("email", EMAIL)]).await;
    let link = reset_link(&t, EMAIL).await;
    t.prove_reset(&c, &link, EMAIL).await;
    let done = c.post_form(&link, &[("password", "Brand-New-Pass-1"), ("confirm_password", "Brand-New-Pass-1")]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(user(&t, EMAIL).await.status.as_str(), "active");
    assert_eq!(try_sign_in(&t.client(), EMAIL, "Brand-New-Pass-1").await.status, 303);
}

#[tokio::test]
async fn concurrent_wrong_passwords_on_two_servers_count_exactly_four() {
    let a = TestApp::start().await;
    let b = TestApp::start_on(&a.database_url, |_| {}).await;
    a.operator().await;
    let (ca, cb) = (a.client(), b.client());
    ca.get("/sign-in").await;
    cb.get("/sign-in").await;
    let attempts = (0..20).map(|i| {
        let c = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        async move { c.post_form("/sign-in", &[("email", EMAIL), ("password", "Wrong-pass-1")]).await.status }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert!(statuses.iter().all(|s| *s == 400), "{statuses:?}");
    let u = user(&a, EMAIL).await;
    assert_eq!(u.failed_sign_ins, 4);
    assert_eq!(u.status.as_str(), "locked");
    b.advance(Span::minutes(15)).await; // past the per-account rate limit's window
    assert_eq!(try_sign_in(&b.client(), EMAIL, PASSWORD).await.status, 400, "locked on every node");
}

#[tokio::test]
async fn an_administrator_unlocks_and_it_is_audited() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Unlock Ltd", "unlock.example", "07700 900100").await;
    admin.get("/admin/users/new").await;
    let added = admin
        .post_form(
            "/admin/users/new",
            &[("full_name", "Lou Locked"), ("email", "lou@unlock.example"), ("mobile", "07700 900101")],
        )
        .await;
    let lou = added.location().unwrap().split('?').next().unwrap().to_owned();
    let path = t.activation_path("lou@unlock.example").await;
    t.activate(&path, "+447700900101", "Grey-Heron-Phrase-9").await;
    let c = t.client();
    for _ in 0..4 {
        try_sign_in(&c, "lou@unlock.example", "Wrong-pass-1").await;
    }
    let page = admin.get(&lou).await;
    assert!(page.body.contains(">Locked<") && page.body.contains("Unlock account"));
    let unlocked = admin.post_form(&format!("{lou}/unlock"), &[]).await;
    assert_eq!(unlocked.status, 303);
    assert!(admin.get(&unlocked.location().unwrap()).await.body.contains("Account unlocked"));
    assert_eq!(try_sign_in(&t.client(), "lou@unlock.example", "Grey-Heron-Phrase-9").await.status, 303);
    assert_eq!(admin.post_form(&format!("{lou}/unlock"), &[]).await.status, 409, "not locked any more");
    let events = t.app.store.audit_events_after(0, 10_000).await.unwrap();
    assert!(events.iter().any(|e| e.event.action == "account.unlocked" && e.event.actor_id.is_some()));
}

#[tokio::test]
async fn someone_elses_guessing_never_keeps_the_owner_out_after_a_reset() {
    let t = TestApp::start().await;
    t.operator().await;
    let attacker = t.client();
    for _ in 0..20 {
        try_sign_in(&attacker, EMAIL, "Wrong-pass-1").await;
    }
    let limited = try_sign_in(&attacker, EMAIL, "Wrong-pass-1").await;
    assert_eq!(limited.status, 429, "too many attempts for the account");
    let owner = t.client();
    owner.get("/reset-password").await;
    owner.post_form("/reset-password", &[("email", EMAIL)]).await;
    let link = reset_link(&t, EMAIL).await;
    t.prove_reset(&owner, &link, EMAIL).await;
    owner.post_form(&link, &[("password", "Owner-Horse-Staple-5"), ("confirm_password", "Owner-Horse-Staple-5")]).await;
    let signed = try_sign_in(&owner, EMAIL, "Owner-Horse-Staple-5").await;
    assert_eq!(
        signed.location().as_deref(),
        Some("/sign-in/second-factor"),
        "the reset lets them straight in, to the second step"
    );
}

async fn sign_in_from(c: &Client, ip: &str, email: &str, password: &str) -> common::Page {
    if c.cookie("__Host-usher-csrf").is_none() {
        c.get("/sign-in").await;
    }
    let token = c.cookie("__Host-usher-csrf").unwrap();
    let body = format!("csrf_token={token}&email={}&password={password}", email.replace('@', "%40"));
    c.request(
        Method::POST,
        "/sign-in",
        &[("x-forwarded-for", ip), ("sec-fetch-site", "same-origin")],
        Some((body, "application/x-www-form-urlencoded")),
    )
    .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_lock_is_shared_across_addresses_and_nodes() {
    let a = TestApp::start_with(|c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    let b = TestApp::start_on(&a.database_url, |c| c.trusted_proxies = vec!["127.0.0.1".into()]).await;
    a.operator().await;
    // 4 wrong passwords from 4 addresses over two nodes, then the right one: refused (S3).
    for (i, ip) in ["198.51.100.1", "198.51.100.2", "203.0.113.3", "2001:db8::4"].iter().enumerate() {
        let node = if i % 2 == 0 { &a } else { &b };
        assert_eq!(sign_in_from(&node.client(), ip, EMAIL, "Wrong-pass-1").await.status, 400);
    }
    assert_eq!(sign_in_from(&b.client(), "192.0.2.9", EMAIL, PASSWORD).await.status, 400);
    assert_eq!(user(&a, EMAIL).await.status.as_str(), "locked");
    let events = a.app.store.audit_events_after(0, 10_000).await.unwrap();
    assert!(events.iter().any(|e| e.event.ip.as_deref() == Some("2001:db8::4")), "the client's address is audited");

    // Per-IP limits count clients, not the proxy: 70 attempts from two clients are all answered.
    let c = a.client();
    for i in 0..70 {
        let ip = if i % 2 == 0 { "198.51.100.7" } else { "198.51.100.8" };
        let page = sign_in_from(&c, ip, &format!("u{i}@example.org"), "Wrong-pass-1").await;
        assert_eq!(page.status, 400, "attempt {i}");
    }
    // Without trusting the proxy, X-Forwarded-For is ignored.
    let plain = TestApp::start().await;
    let c = plain.client();
    let mut last = 0;
    for i in 0..61 {
        let ip = format!("198.51.100.{}", i % 50);
        last = sign_in_from(&c, &ip, &format!("u{i}@example.org"), "Wrong-pass-1").await.status;
    }
    assert_eq!(last, 429);
}

/// Defect 8: four wrong current passwords on the change-password form locked the account but
/// wrote no `account.locked` event. Every way of typing a wrong password counts alike now.
#[tokio::test]
async fn wrong_current_passwords_on_the_change_form_lock_and_are_audited() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    c.get("/account/password").await;
    for _ in 0..4 {
        let page = c
            .post_form(
                "/account/password",
                &[
                    ("current_password", "Wrong-pass-1"),
                    ("password", "Brand-New-Pass-1"),
                    ("confirm_password", "Brand-New-Pass-1"),
                ],
            )
            .await;
        assert_eq!(page.status, 400, "{}", page.body);
    }
    let u = user(&t, EMAIL).await;
    assert_eq!(u.status.as_str(), "locked");
    let events = t.app.store.audit_events_after(0, 1000).await.unwrap();
    let locked: Vec<_> = events.iter().filter(|e| e.event.action == "account.locked").collect();
    assert_eq!(locked.len(), 1, "one account.locked event");
    assert_eq!(locked[0].event.subject_id.as_deref(), Some(u.id.as_str()));
    let wrong = events.iter().filter(|e| e.event.action == "password.change" && e.event.outcome == "failure").count();
    assert_eq!(wrong, 4);
    assert!(t.messages_to(EMAIL).await.iter().any(|m| m.message.purpose == "account_locked"), "and emailed");
    assert_ne!(c.get("/home").await.status, 200, "every session ended");
}
