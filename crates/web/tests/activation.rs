//! Organisations, administrators and account activation (issue 3), through the real pages.
//! Runs on SQLite and PostgreSQL (`USHER_TEST_DATABASE`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestApp};
use usher_domain::duration::Span;

const USER_PASSWORD: &str = "Us3r-Correct-Staple";

async fn add_user(admin: &Client, name: &str, email: &str, mobile: &str) -> common::Page {
    admin.get("/admin/users/new").await;
    admin.post_form("/admin/users/new", &[("full_name", name), ("email", email), ("mobile", mobile)]).await
}

#[tokio::test]
async fn an_operator_registers_an_organisation_whose_administrator_adds_a_user_who_activates() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) =
        t.organisation_with_admin(&operator, "Smith & Jones LLP", "smithjones.example", "07700 900001").await;
    assert_eq!(admin.get("/home").await.h1(), "Administrator home");

    let added = add_user(&admin, "Brian Barrister", "brian@smithjones.example", "+44 7700 900123").await;
    assert_eq!(added.status, 303, "{}", added.body);
    let user_page_path = added.location().unwrap().split('?').next().unwrap().to_owned();
    let user_page = admin.get(&added.location().unwrap()).await;
    assert!(user_page.body.contains("User added"));
    assert!(user_page.body.contains(">Invited<"));
    assert!(user_page.body.contains("Ends 0123"));
    assert!(!user_page.body.contains("900123"), "only the last 4 digits are shown");

    // The email says who added them, by when to activate, and not to share the link.
    let mail = t.messages_to("brian@smithjones.example").await;
    let body = &mail[0].message.body;
    assert!(body.contains("You have an account on Usher for Smith & Jones LLP, added by Ada Admin of Smith & Jones LLP, your organisation administrator."), "{body}");
    assert!(body.contains("Activate it by 2 February 2026 at 9:00am (UTC)"), "{body}");
    assert!(body.contains("Do not share it"));

    let path = t.activation_path("brian@smithjones.example").await;
    let c = t.client();
    let page = c.get(&path).await;
    assert_eq!(page.h1(), "Terms and conditions");
    let refused = c.post_form(&format!("{path}/terms"), &[("version", "1")]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("Confirm that you agree"));
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    let mobile = c.get(&path).await;
    assert_eq!(mobile.h1(), "Check your mobile number", "the link resumes where it was left");
    assert!(mobile.body.contains("ending <strong>0123</strong>"));
    assert!(
        mobile.body.contains(
            "To have your number corrected, ask Ada Admin of Smith &#38; Jones LLP, your organisation administrator."
        ),
        "names the administrator"
    );

    let done = t.activate_from_mobile_step(&c, &path, "+447700900123").await;
    assert_eq!(done.h1(), "Your account is activated");
    assert!(done.body.contains("/sign-in"));
    assert_eq!(c.get(&path).await.status, 410, "a used link does not work twice");

    t.sign_in("brian@smithjones.example", USER_PASSWORD).await;
    let listed = admin.get("/admin/users").await;
    assert!(listed.body.contains("Brian Barrister"));
    let after = admin.get(&user_page_path).await;
    assert!(after.body.contains(">Active<"), "the administrator sees the status change");
    assert!(!after.body.contains("Never"), "and when they last signed in");

    // Every step is in the audit trail.
    let events = t.app.store.audit_events_after(0, 10_000).await.unwrap();
    for action in [
        "organisation.registered",
        "administrator.invited",
        "user.added",
        "activation.terms_accepted",
        "activation.code_sent",
        "activation.mobile_confirmed",
        "activation.completed",
    ] {
        assert!(events.iter().any(|e| e.event.action == action), "no {action} event");
    }
    let accepted = events.iter().find(|e| e.event.action == "activation.terms_accepted").unwrap();
    assert_eq!(accepted.event.detail.as_deref(), Some("version 1"));
    assert!(accepted.event.ip.is_some() && accepted.event.request_id.is_some(), "who, when and from where");
}

impl TestApp {
    async fn activate_from_mobile_step(&self, c: &Client, path: &str, phone: &str) -> common::Page {
        c.post_form(&format!("{path}/send-code"), &[]).await;
        let code = self.sms_code(phone).await;
        let page = c.post_form(&format!("{path}/code"), &[("code", &code)]).await;
        assert_eq!(page.h1(), "Create your password", "{}", page.body);
        let weak = c
            .post_form(&format!("{path}/password"), &[("password", "password"), ("confirm_password", "password")])
            .await;
        assert_eq!(weak.status, 400);
        assert!(weak.body.contains("Password must include an uppercase letter, a number and a special character"));
        c.post_form(&format!("{path}/password"), &[("password", USER_PASSWORD), ("confirm_password", USER_PASSWORD)])
            .await
    }
}

#[tokio::test]
async fn activation_links_last_28_days_and_a_resend_kills_the_old_one() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Chambers One", "chambers.example", "07700 900002").await;
    let added = add_user(&admin, "Carla Counsel", "carla@chambers.example", "07700 900124").await;
    let user_path = added.location().unwrap().split('?').next().unwrap().to_owned();
    let first = t.activation_path("carla@chambers.example").await;
    let c = t.client();

    t.advance(Span::days(27)).await;
    assert_eq!(c.get(&first).await.status, 200, "works on day 27");
    t.advance(Span::days(1)).await;
    assert_eq!(c.get(&first).await.status, 200, "works at exactly 28 days");
    t.advance(Span::seconds_(1)).await;
    let dead = c.get(&first).await;
    assert_eq!(dead.status, 410);
    assert_eq!(dead.h1(), "This link has expired");
    assert!(
        dead.body
            .contains("To get a new activation email, ask Ada Admin of Chambers One, your organisation administrator.")
    );

    // The administrator sees it as expired, and resends.
    let admin = t.sign_in("admin@chambers.example", common::ADMIN_PASSWORD).await;
    assert!(admin.get("/admin/users").await.body.contains("Activation expired"));
    let resent = admin.post_form(&format!("{user_path}/resend-activation"), &[]).await;
    assert_eq!(resent.status, 303);
    let second = t.activation_path("carla@chambers.example").await;
    assert_ne!(first, second);
    assert_eq!(c.get(&second).await.status, 200);
    t.advance(Span::seconds_(1)).await; // so "newest email" is well defined
    let third_page = admin.post_form(&format!("{user_path}/resend-activation"), &[]).await;
    assert_eq!(third_page.status, 303);
    let third = t.activation_path("carla@chambers.example").await;
    let killed = c.get(&second).await;
    assert_eq!(killed.status, 410, "a resend makes the previous link dead");
    assert_eq!(killed.h1(), "This link has already been used");
    assert_eq!(c.get(&third).await.status, 200);
}

#[tokio::test]
async fn bad_additions_are_refused_with_a_clear_message_and_change_nothing() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Police Force", "police.example", "07700 900003").await;
    let outside = add_user(&admin, "Eve", "eve@gmail.example", "07700 900125").await;
    assert_eq!(outside.status, 400);
    assert!(outside.body.contains("Email address must end in @police.example"), "{}", outside.body);
    let taken = add_user(&admin, "Ada Again", "admin@police.example", "07700 900125").await;
    assert_eq!(taken.status, 400);
    assert!(taken.body.contains("This email address already has an account"));
    let bad_phone = add_user(&admin, "Pat", "pat@police.example", "020 7946 0000").await;
    assert_eq!(bad_phone.status, 400);
    assert!(bad_phone.body.contains("Enter a mobile phone number"));
    let empty = add_user(&admin, "", "", "").await;
    for message in ["Enter their full name", "Enter an email address", "Enter a mobile phone number"] {
        assert!(empty.body.contains(message), "{message}");
    }
    assert!(t.messages_to("pat@police.example").await.is_empty());
    let listed = admin.get("/admin/users").await;
    assert!(!listed.body.contains("Eve") && !listed.body.contains("Pat"));

    // Two spellings of one number are one value.
    let ok = add_user(&admin, "Dee Detective", "dee@police.example", "07700 900126").await;
    assert_eq!(ok.status, 303);
    let mut tx = t.app.store.begin().await.unwrap();
    let dee = tx
        .user_by_email(&usher_domain::email::EmailAddress::parse("dee@police.example").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dee.phone.as_deref(), Some("+447700900126"));
    drop(tx);

    // Operator side: a duplicate organisation name and an unknown kind.
    let dup = operator.post_form("/operator/organisations/new", &[("name", "police force"), ("kind", "police")]).await;
    assert!(dup.body.contains("An organisation with this name is already registered"));
    let kind = operator.post_form("/operator/organisations/new", &[("name", "Other"), ("kind", "bank")]).await;
    assert!(kind.body.contains("Select the kind of organisation"));
}

#[tokio::test]
async fn administrators_cannot_reach_another_organisations_people() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin_a) = t.organisation_with_admin(&operator, "Firm A", "a.example", "07700 900010").await;
    let (_, admin_b) = t.organisation_with_admin(&operator, "Firm B", "b.example", "07700 900011").await;
    let added = add_user(&admin_a, "Alice", "alice@a.example", "07700 900012").await;
    let alice = added.location().unwrap().split('?').next().unwrap().to_owned();
    let missing = admin_b.get("/admin/users/00000000000000000000000000000000").await;
    let foreign = admin_b.get(&alice).await;
    assert_eq!(foreign.status, 404);
    assert_eq!(common::masked(&foreign.body), common::masked(&missing.body), "the same answer as for nobody");
    assert_eq!(admin_b.get(&format!("{alice}/mobile")).await.status, 404);
    let resend = admin_b.post_form(&format!("{alice}/resend-activation"), &[]).await;
    assert_eq!(resend.status, 404);
    let change = admin_b.post_form(&format!("{alice}/mobile"), &[("mobile", "07700 900999")]).await;
    assert_eq!(change.status, 404);
    assert!(!admin_b.get("/admin/users?q=alice").await.body.contains("Alice"));
    let events = t.app.store.audit_events_after(0, 10_000).await.unwrap();
    assert!(events.iter().filter(|e| e.event.action == "authz.denied").count() >= 4);
    // Users and operators are not administrators.
    assert_eq!(operator.get("/admin/users").await.status, 403);
    assert_eq!(admin_a.get("/operator/organisations").await.status, 403);
    assert_eq!(t.client().get("/admin/users").await.status, 303, "signed out: to the sign-in page");
}

#[tokio::test]
async fn codes_are_single_use_short_lived_newest_only_and_guessing_is_limited() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Court", "court.example", "07700 900020").await;
    add_user(&admin, "Gina", "gina@court.example", "07700 900021").await;
    let path = t.activation_path("gina@court.example").await;
    let c = t.client();
    c.get(&path).await;
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    c.post_form(&format!("{path}/send-code"), &[]).await;
    let first = t.sms_code("+447700900021").await;
    let too_soon = c.post_form(&format!("{path}/send-code"), &[]).await;
    assert_eq!(too_soon.status, 429, "resends are throttled");
    assert!(too_soon.body.contains("Wait"));
    assert_eq!(too_soon.headers.get("retry-after").unwrap(), "60");

    // Expired after 5 minutes.
    t.advance(Span::minutes(5)).await;
    t.advance(Span::seconds_(1)).await;
    let expired = c.post_form(&format!("{path}/code"), &[("code", &first)]).await;
    assert!(expired.body.contains("That code has expired"), "{}", expired.body);

    // A newer code supersedes the older one.
    c.post_form(&format!("{path}/send-code"), &[]).await;
    let second = t.sms_code("+447700900021").await;
    t.advance(Span::minutes(1)).await;
    c.post_form(&format!("{path}/send-code"), &[]).await;
    let third = t.sms_code("+447700900021").await;
    if second != third {
        let old = c.post_form(&format!("{path}/code"), &[("code", &second)]).await;
        assert!(old.body.contains("replaced by a newer one"), "{}", old.body);
    }
    let wrong = c.post_form(&format!("{path}/code"), &[("code", "12 34 5x")]).await;
    assert!(wrong.body.contains("Enter the 6-digit code"));
    // Failures so far: expired + superseded (2, or 1 if the codes collided). Guess until refused.
    let bad = if third == "000000" { "000001" } else { "000000" };
    let mut refused = false;
    for _ in 0..6 {
        let page = c.post_form(&format!("{path}/code"), &[("code", bad)]).await;
        if page.body.contains("Too many wrong codes") {
            refused = true;
            break;
        }
    }
    assert!(refused, "guessing is limited");
    let right_too_late = c.post_form(&format!("{path}/code"), &[("code", &third)]).await;
    assert!(right_too_late.body.contains("Too many wrong codes"), "even the right code, once the limit is reached");
    // Asking for a new code does not reset the count.
    t.advance(Span::minutes(2)).await;
    let more = c.post_form(&format!("{path}/send-code"), &[]).await;
    assert!(more.body.contains("No more codes can be sent"), "{}", more.body);

    // The database never holds a code in the clear.
    use sqlx::Connection as _;
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    let hashes: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM one_time_codes").fetch_all(&mut db).await.unwrap();
    assert!(hashes.iter().all(|h| h.len() == 64 && h != &third && !h.contains(third.as_str())));
}

#[tokio::test]
async fn a_corrected_mobile_number_must_be_confirmed_again_and_the_user_is_told() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Prosecutors", "cps.example", "07700 900030").await;
    let added = add_user(&admin, "Hal", "hal@cps.example", "07700 900031").await;
    let hal = added.location().unwrap().split('?').next().unwrap().to_owned();
    let path = t.activation_path("hal@cps.example").await;
    let c = t.client();
    c.get(&path).await;
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    c.post_form(&format!("{path}/send-code"), &[]).await;
    let code = t.sms_code("+447700900031").await;
    assert_eq!(c.post_form(&format!("{path}/code"), &[("code", &code)]).await.h1(), "Create your password");

    let same = admin.post_form(&format!("{hal}/mobile"), &[("mobile", "+44 7700 900031")]).await;
    assert!(same.body.contains("That is the number we already have"));
    let changed = admin.post_form(&format!("{hal}/mobile"), &[("mobile", "07700 900032")]).await;
    assert_eq!(changed.status, 303);
    assert!(admin.get(&changed.location().unwrap()).await.body.contains("Ends 0032"));
    let mail = t.messages_to("hal@cps.example").await;
    assert!(mail.iter().any(|m| m.message.purpose == "mobile_changed" && m.message.body.contains("ending 0032")));
    let back = c.get(&path).await;
    assert_eq!(back.h1(), "Check your mobile number", "the new number must be confirmed");
    assert!(back.body.contains("ending <strong>0032</strong>"));
}

#[tokio::test]
async fn new_terms_must_be_agreed_to_and_each_acceptance_is_recorded() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Terms Ltd", "terms.example", "07700 900040").await;
    add_user(&admin, "Ivy", "ivy@terms.example", "07700 900041").await;
    let path = t.activation_path("ivy@terms.example").await;
    let c = t.client();
    c.get(&path).await;
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    operator.get("/operator/terms").await;
    let published = operator.post_form("/operator/terms", &[("body", "New rules.\n\nSecond paragraph.")]).await;
    assert!(published.body.contains("Version 2 is published"), "{}", published.body);
    let page = c.get(&path).await;
    assert_eq!(page.h1(), "Terms and conditions", "version 2 must be agreed to");
    assert!(page.body.contains("New rules.") && page.body.contains("version 2"));
    let stale = c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    assert!(stale.body.contains("The terms have just been updated"));
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "2")]).await;
    assert_eq!(c.get(&path).await.h1(), "Check your mobile number");
    use sqlx::Connection as _;
    let mut db = sqlx::AnyConnection::connect(&t.database_url).await.unwrap();
    let versions: Vec<i64> = sqlx::query_scalar(
        "SELECT a.version FROM terms_acceptances a JOIN users u ON u.id = a.user_id WHERE u.email = 'ivy@terms.example' ORDER BY a.version",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(versions, vec![1, 2]);
}

#[tokio::test]
async fn the_activation_email_arrives_through_a_real_smtp_server() {
    let sink = usher_testkit::SmtpSink::start("activation");
    let port = sink.port;
    let t = TestApp::start_with(move |c| {
        c.email.provider = usher_app::config::EmailProviderKind::Smtp;
        c.email.smtp =
            Some(toml::from_str(&format!("host = \"127.0.0.1\"\nport = {port}\ntls = \"none\"")).expect("smtp config"));
        // Emails leave through SMTP here, so the test cannot read emailed sign-in codes.
        c.mfa.required = false;
    })
    .await;
    let operator = t.operator().await;
    operator.get("/operator/organisations/new").await;
    let made = operator.post_form("/operator/organisations/new", &[("name", "Mail Firm"), ("kind", "other")]).await;
    let org = made.location().unwrap().split('?').next().unwrap().to_owned();
    operator
        .post_form(
            &format!("{org}/administrators/new"),
            &[("full_name", "Mo Mailer"), ("email", "mo@mail.example"), ("mobile", "07700 900050")],
        )
        .await;
    t.deliver().await;
    let received = sink.received(2);
    let activation = received
        .iter()
        .find(|m| m["rcpt_tos"][0] == "mo@mail.example")
        .expect("the activation email reached the SMTP server");
    let data = activation["data"].as_str().unwrap();
    assert!(data.contains("From: Usher <noreply@usher.localhost>"), "{data}");
    assert!(data.contains("Subject: Activate your Usher account"));
    // Read the link as a mail client would: undo quoted-printable soft breaks.
    let text = data.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let start = text.find(&format!("{}/activate/", t.base)).expect("a link in the email") + t.base.len();
    let path: String = text[start..].chars().take_while(|c| !c.is_whitespace()).collect();
    assert_eq!(path.len(), "/activate/".len() + 43, "{path}");
    let stored = t.app.store.recent_messages(50).await.unwrap();
    assert!(
        stored.iter().filter(|m| m.message.channel.as_str() == "email").all(|m| m.message.body.is_empty()),
        "sent emails are not kept"
    );
    // The SMS code comes from the dev mailbox.
    let done = t.activate(&path, "+447700900050", USER_PASSWORD).await;
    assert_eq!(done.h1(), "Your account is activated");
    t.sign_in("mo@mail.example", USER_PASSWORD).await;
}

#[tokio::test]
async fn a_number_gets_at_most_ten_texts_a_day_whatever_asks() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Pump Ltd", "pump.example", "07700 900080").await;
    let mut paths = Vec::new();
    for who in ["ann", "ben", "cat"] {
        let added = add_user(&admin, who, &format!("{who}@pump.example"), "07700 900081").await;
        assert_eq!(added.status, 303);
        paths.push(t.activation_path(&format!("{who}@pump.example")).await);
    }
    let c = t.client();
    let mut sent = 0;
    let mut refused = None;
    for path in &paths {
        c.get(path).await;
        c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
        for _ in 0..5 {
            let page = c.post_form(&format!("{path}/send-code"), &[]).await;
            if page.status == 200 {
                sent += 1;
            } else if page.body.contains("Too many codes have been sent to this number today") {
                refused.get_or_insert(sent);
            }
            t.advance(Span::seconds_(61)).await;
        }
    }
    assert_eq!(sent, 10);
    assert_eq!(refused, Some(10), "the 11th text to one number in a day is refused");
    let texts = t.messages_to("+447700900081").await;
    assert_eq!(texts.len(), 10);
    let events = t.app.store.audit_events_after(0, 10_000).await.unwrap();
    assert!(events.iter().any(|e| e.event.action == "activation.code_refused"
        && e.event.detail.as_deref() == Some("daily cap for the number")));
}

#[tokio::test]
async fn search_finds_names_alike_on_both_engines_and_own_numbers_are_not_changed_here() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Cabinet Élodie", "elodie.example", "07700 900090").await;
    add_user(&admin, "Élodie Martin", "elodie@elodie.example", "07700 900091").await;
    add_user(&admin, "Bob 100%_Sure", "bob@elodie.example", "07700 900092").await;
    let found = admin.get("/admin/users?q=%C3%A9LODIE").await;
    assert!(found.body.contains("Élodie Martin") || found.body.contains("&#201;lodie Martin"), "{}", found.body);
    assert!(!found.body.contains("Bob"));
    let literal = admin.get("/admin/users?q=100%25_").await;
    assert!(literal.body.contains("Bob"), "% and _ are matched literally");
    assert!(!admin.get("/admin/users?q=%25").await.body.contains("Martin"));

    let me = admin.get("/api/v1/users?q=admin@elodie.example").await.json();
    let my_id = me[0]["id"].as_str().unwrap().to_owned();
    let own = admin.post_form(&format!("/admin/users/{my_id}/mobile"), &[("mobile", "07700 900093")]).await;
    assert_eq!(own.status, 403, "an administrator cannot change their own number here");
    // Another organisation's person is "not found" even when the number sent is nonsense.
    let (_, other) = t.organisation_with_admin(&operator, "Other", "other.example", "07700 900094").await;
    let foreign = other
        .api(reqwest::Method::POST, &format!("/api/v1/users/{my_id}/mobile"), Some(serde_json::json!({"mobile": "x"})))
        .await;
    assert_eq!(foreign.status, 404);
    let leaked =
        other.api(reqwest::Method::POST, "/api/v1/users", Some(serde_json::json!({"full_name": 123456}))).await;
    assert_eq!(leaked.status, 400);
    assert!(!leaked.body.contains("123456"), "bodies are never echoed: {}", leaked.body);
}
