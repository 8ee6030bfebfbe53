//! The account lifecycle (issue 6): with the test clock over 120 days, reminders on days 76
//! and 87, deregistration on day 90, deletion on day 118, and a reregistration on day 100 that
//! prevents it; two servers running the jobs at once send each email and event exactly once;
//! deregistration sends back-channel logout tokens and kills refresh tokens (issue 14).
//! On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::logout::{Receiver, delivered, refresh_works, signed_in_to};
use common::{ADMIN_PASSWORD, Client, TestApp};
use reqwest::Method;
use sqlx::Connection as _;
use usher_domain::account::{AccountStatus, Role};
use usher_domain::duration::Span;
use usher_domain::email::EmailAddress;
use usher_domain::ids::UserId;
use usher_store::NewUser;

const ADMIN: &str = "admin@lawfirm.example";
const STAYS: &str = "stella@lawfirm.example";
const GOES: &str = "gordon@lawfirm.example";
const PASSWORD: &str = "Tidy-Horse-Staple-7";

async fn purposes_to(t: &TestApp, email: &str) -> Vec<String> {
    t.messages_to(email).await.into_iter().map(|m| m.message.purpose).collect()
}

async fn count(t: &TestApp, sql: &str) -> i64 {
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    sqlx::query_scalar(sql).fetch_one(&mut db).await.unwrap()
}

/// Moves the test clock to `day` days after T0 and runs the jobs.
async fn day(t: &TestApp, day: i64) -> usher_app::lifecycle::LifecycleReport {
    let now = t.now().await.unix();
    let target = common::T0 + day * 86_400;
    assert!(target >= now, "day {day} is in the past");
    t.advance(Span::seconds_(target - now)).await;
    t.app.run_lifecycle(t.now().await).await.unwrap()
}

async fn add_and_activate(t: &TestApp, admin: &Client, name: &str, email: &str, mobile: &str) {
    admin.get("/admin/users/new").await;
    let added = admin.post_form("/admin/users/new", &[("full_name", name), ("email", email), ("mobile", mobile)]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let path = t.activation_path(email).await;
    let e164 = usher_domain::phone::MobileNumber::parse(mobile).unwrap().to_string();
    assert_eq!(t.activate(&path, &e164, PASSWORD).await.h1(), "Your account is activated");
}

async fn user_id(t: &TestApp, email: &str) -> String {
    let mut tx = t.app.store.begin_read().await.unwrap();
    tx.user_by_email(&EmailAddress::parse(email).unwrap()).await.unwrap().unwrap().id.to_string()
}

#[tokio::test]
async fn reminders_deregistration_reregistration_and_deletion_over_120_days() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, _) = t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    let admin = t.sign_in(ADMIN, ADMIN_PASSWORD).await;
    add_and_activate(&t, &admin, "Stella Stays", STAYS, "07700 900201").await;
    add_and_activate(&t, &admin, "Gordon Goes", GOES, "07700 900202").await;
    let stays = t.sign_in(STAYS, PASSWORD).await;
    let goes_id = user_id(&t, GOES).await;

    assert_eq!(day(&t, 75).await.reminded, 0, "nothing before day 76");
    let r = day(&t, 76).await;
    assert_eq!(r.reminded, 3, "day 76: the administrator and both users (the operator is never deregistered)");
    assert_eq!(day(&t, 76).await.reminded, 0, "a second run sends nothing more");
    let mail = t.messages_to(GOES).await;
    let reminder = mail.iter().find(|m| m.message.purpose == "deregistration_reminder").unwrap();
    assert!(reminder.message.body.contains("Unless you sign in before"), "{}", reminder.message.body);
    // The administrator signs in, which starts their 90 days again.
    let admin = t.sign_in(ADMIN, ADMIN_PASSWORD).await;
    drop(admin);

    assert_eq!(day(&t, 86).await.reminded, 0);
    assert_eq!(day(&t, 87).await.reminded, 2, "day 87: the second reminder, to the two users");
    assert_eq!(day(&t, 89).await, Default::default());
    assert_eq!(purposes_to(&t, STAYS).await.iter().filter(|p| *p == "deregistration_reminder").count(), 2);

    let r = day(&t, 90).await;
    assert_eq!(r.deregistered, 2, "day 90: both users are deregistered");
    assert!(purposes_to(&t, GOES).await.contains(&"deregistered".to_owned()), "and emailed");
    assert_eq!(stays.get("/home").await.location().as_deref(), Some("/sign-in"), "every session ended");
    // The right password now gets a page that says whom to ask; a wrong one the usual answer.
    let c = t.client();
    c.get("/sign-in").await;
    let refused = c.post_form("/sign-in", &[("email", STAYS), ("password", PASSWORD)]).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("Ada Admin of Lamb Law, your organisation administrator"), "{}", refused.body);
    assert!(refused.body.contains("reregister"), "{}", refused.body);
    let wrong = c.post_form("/sign-in", &[("email", STAYS), ("password", "Wrong-pass-1")]).await;
    assert_eq!(wrong.status, 400);
    // Wrong passwords still count: after 4, even the right one gets the usual answer, so the
    // deregistered page is no oracle for guessing.
    for _ in 0..4 {
        c.post_form("/sign-in", &[("email", GOES), ("password", "Wrong-pass-1")]).await;
    }
    let guessed = c.post_form("/sign-in", &[("email", GOES), ("password", PASSWORD)]).await;
    assert_eq!(guessed.status, 400, "{}", guessed.body);
    assert!(!guessed.body.contains("reregister"), "{}", guessed.body);

    // Day 100: the administrator sees both as deregistered and reregisters one.
    day(&t, 100).await;
    let admin = t.sign_in(ADMIN, ADMIN_PASSWORD).await;
    // Their own password is past 90 days too: changed first.
    let changed = admin
        .post_form(
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("password", "Adm1n-Fresh-Staple"),
                ("confirm_password", "Adm1n-Fresh-Staple"),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    let list = admin.get("/admin/users?q=lawfirm").await;
    assert!(list.body.contains("Deregistered"), "{}", list.body);
    let stays_id = user_id(&t, STAYS).await;
    let page = admin.get(&format!("/admin/users/{stays_id}")).await;
    assert!(page.body.contains("Reregister account"), "{}", page.body);
    let done = admin.post_form(&format!("/admin/users/{stays_id}/reregister"), &[]).await;
    assert_eq!(done.location().as_deref(), Some(format!("/admin/users/{stays_id}?done=reregistered").as_str()));
    assert!(purposes_to(&t, STAYS).await.contains(&"reregistered".to_owned()));
    // Same credentials; the password is now past its 90 days and must be changed first.
    let c = t.client();
    c.get("/sign-in").await;
    let back = c.post_form("/sign-in", &[("email", STAYS), ("password", PASSWORD)]).await;
    t.second_step(&c, back, STAYS, PASSWORD).await;
    assert_eq!(c.get("/home").await.location().as_deref(), Some("/account/password"));

    assert_eq!(day(&t, 117).await.deleted, 0, "deletion waits 28 days");
    let r = day(&t, 118).await;
    assert_eq!(r.deleted, 1, "day 118: the account that was not reregistered is deleted");
    assert_eq!(day(&t, 120).await, Default::default());

    // Its personal data is gone; the audit trail keeps its ID.
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    let (name, email, phone, hash): (String, String, Option<String>, Option<String>) =
        sqlx::query_as("SELECT full_name, email, phone, password_hash FROM users WHERE id = $1")
            .bind(&goes_id)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(name, "Deleted account");
    assert!(!email.contains("gordon") && phone.is_none() && hash.is_none(), "{email}");
    let factors: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM factors WHERE user_id = $1 AND removed_at IS NULL")
        .bind(&goes_id)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(factors, 0);
    let outbox: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE recipient LIKE '%gordon%' OR body LIKE '%Gordon%'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(outbox, 0, "no message to them is kept");
    let events: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_events WHERE subject_id = $1 ORDER BY seq")
        .bind(&goes_id)
        .fetch_all(&mut db)
        .await
        .unwrap();
    for action in ["lifecycle.reminded", "lifecycle.deregistered", "lifecycle.deleted"] {
        assert!(events.contains(&action.to_owned()), "{action} in {events:?}");
    }
    // The administrator no longer sees them and must add a new account to bring them back.
    let admin = t.sign_in(ADMIN, "Adm1n-Fresh-Staple").await;
    let list = admin.get("/admin/users").await;
    assert!(list.body.contains("Stella"), "{}", list.body);
    assert!(!list.body.contains("Gordon"), "{}", list.body);
    assert_eq!(admin.get(&format!("/admin/users/{goes_id}")).await.status, 404);
    let c = t.client();
    c.get("/sign-in").await;
    assert_eq!(c.post_form("/sign-in", &[("email", GOES), ("password", PASSWORD)]).await.status, 400);
    add_and_activate(&t, &admin, "Gordon Goes", GOES, "07700 900202").await;
    let _ = admin.api(Method::GET, "/api/v1/session", None).await;
}

/// Adds `n` active users straight into the store, last in use at `at`.
async fn many_users(t: &TestApp, n: usize, at: usher_domain::Timestamp) {
    let mut tx = t.app.store.begin().await.unwrap();
    for i in 0..n {
        let id = UserId::generate();
        let user = NewUser {
            id: id.clone(),
            role: Role::User,
            organisation_id: None,
            full_name: format!("Person {i}"),
            email: EmailAddress::parse(&format!("person{i}@bulk.example")).unwrap(),
            phone: None,
            status: AccountStatus::Active,
            added_by: None,
        };
        tx.insert_user(&user, at).await.unwrap();
        tx.record_sign_in(&id, at).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn two_servers_running_the_jobs_at_once_send_each_email_and_event_exactly_once() {
    let a = TestApp::start().await;
    let b = TestApp::start_on(&a.database_url, |_| {}).await;
    const N: i64 = 450;
    many_users(&a, N as usize, a.now().await).await;
    for (days, column) in [(76, "reminded"), (87, "reminded"), (90, "deregistered"), (118, "deleted")] {
        let now = a.now().await.unix();
        a.advance(Span::seconds_(common::T0 + days * 86_400 - now)).await;
        let now = a.now().await;
        let (ra, rb) = tokio::join!(a.app.run_lifecycle(now), b.app.run_lifecycle(now));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let total = match column {
            "reminded" => ra.reminded + rb.reminded,
            "deregistered" => ra.deregistered + rb.deregistered,
            _ => ra.deleted + rb.deleted,
        };
        assert_eq!(total, N as u64, "day {days}: {ra:?} + {rb:?}");
    }
    let reminders = count(&a, "SELECT COUNT(*) FROM outbox WHERE purpose = 'deregistration_reminder'").await;
    assert_eq!(reminders, 2 * N, "two reminders each, exactly");
    let deregistered = count(&a, "SELECT COUNT(*) FROM outbox WHERE purpose = 'deregistered'").await;
    assert_eq!(deregistered, N, "one each");
    let kept =
        count(&a, "SELECT COUNT(*) FROM outbox WHERE recipient LIKE '%bulk.example' OR body LIKE '%Person %'").await;
    assert_eq!(kept, 0, "messages to deleted accounts are blanked");
    for (action, expected) in [("lifecycle.reminded", 2 * N), ("lifecycle.deregistered", N), ("lifecycle.deleted", N)] {
        let n = count(&a, &format!("SELECT COUNT(*) FROM audit_events WHERE action = '{action}'")).await;
        assert_eq!(n, expected, "{action}");
    }
    let left = count(&a, "SELECT COUNT(*) FROM users WHERE email LIKE '%bulk.example'").await;
    assert_eq!(left, 0, "every address erased");
    let chain = a.app.verify_audit_chain().await.unwrap();
    assert!(matches!(chain, usher_app::audit::ChainReport::Intact { .. }), "the chain holds: {chain:?}");
}

#[tokio::test]
async fn accounts_from_before_the_lifecycle_get_their_reminders_before_any_deregistration() {
    let t = TestApp::start().await;
    many_users(&t, 3, t.now().await).await;
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    sqlx::query("UPDATE users SET active_since = NULL, last_sign_in_at = $1 WHERE email LIKE '%bulk.example'")
        .bind(common::T0 - 400 * 86_400)
        .execute(&mut db)
        .await
        .unwrap();
    let first = t.app.run_lifecycle(t.now().await).await.unwrap();
    assert_eq!((first.deregistered, first.reminded), (0, 3), "the first reminder, not deregistration");
    t.advance(Span::days(11)).await;
    assert_eq!(t.app.run_lifecycle(t.now().await).await.unwrap().reminded, 3, "the second, 3 days before");
    t.advance(Span::days(3)).await;
    assert_eq!(t.app.run_lifecycle(t.now().await).await.unwrap().deregistered, 3);
}

#[tokio::test]
async fn deregistration_on_day_90_tells_the_services_and_kills_their_refresh_tokens() {
    // A deployment whose sessions outlast 90 days: deregistration is what ends them.
    let t = TestApp::start_with(|c| {
        c.sessions.idle_timeout = Span::days(100);
        c.sessions.absolute_timeout = Span::days(100);
    })
    .await;
    let (r, uri) = Receiver::start().await;
    let operator = t.operator().await;
    t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    let admin = t.sign_in(ADMIN, ADMIN_PASSWORD).await;
    add_and_activate(&t, &admin, "Stella Stays", STAYS, "07700 900201").await;
    let stays = t.sign_in(STAYS, PASSWORD).await;
    let court = signed_in_to(&t, &stays, "Court platform", &uri).await;

    assert_eq!(day(&t, 89).await.signed_out, 0);
    assert!(delivered(&t, &r, &[&court]).await.is_empty(), "nothing before day 90");
    let report = day(&t, 90).await;
    assert!(report.deregistered >= 1, "{report:?}");
    let tokens = delivered(&t, &r, &[&court]).await;
    assert_eq!(tokens.len(), 1, "one logout token for the one service: {tokens:?}");
    assert!(!refresh_works(&t, &court).await, "the refresh token died with the session");
    assert_eq!(stays.get("/home").await.location().as_deref(), Some("/sign-in"));

    let report = day(&t, 118).await;
    assert!(report.deleted >= 1, "{report:?}");
    assert!(delivered(&t, &r, &[&court]).await.is_empty(), "deletion tells nobody twice");
}
