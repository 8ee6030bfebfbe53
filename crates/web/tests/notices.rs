//! System notifications and the phishing guidance (issue 6): a notification appears and
//! disappears at its times, reaches only its audience, links only to the service, shows as a
//! banner until dismissed, and its mailing sends each person one email even with two servers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestApp};
use usher_domain::Timestamp;
use usher_domain::duration::Span;

/// The date input's four fields (`publish_from-day` and so on) for the minute of `t`.
fn date_fields(name: &str, t: Timestamp) -> Vec<(String, String)> {
    let text = t.rfc3339();
    let (year, month, day, time) = (&text[..4], &text[5..7], &text[8..10], &text[11..16]);
    [("day", day), ("month", month), ("year", year), ("time", time)]
        .into_iter()
        .map(|(part, value)| (format!("{name}-{part}"), value.to_owned()))
        .collect()
}

async fn publish(operator: &Client, fields: &[(&str, &str)]) -> common::Page {
    operator.get("/operator/notifications/new").await;
    operator.post_form("/operator/notifications/new", fields).await
}

#[tokio::test]
async fn a_notification_shows_in_its_window_as_a_banner_until_dismissed() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let now = t.now().await;
    let dates: Vec<(String, String)> =
        [date_fields("publish_from", now.plus(Span::hours(1))), date_fields("publish_until", now.plus(Span::hours(2)))]
            .concat();
    let body = format!("Sign-in will be unavailable from 22:00.\n\nSee <b>updates</b> at {}/notifications.", t.base);
    let made = publish(
        &operator,
        &[("title", "Planned maintenance tonight"), ("body", &body), ("importance", "urgent")]
            .into_iter()
            .chain(dates.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let visitor = t.client();
    assert!(!visitor.get("/notifications").await.body.contains("Planned maintenance"), "not yet");
    assert!(!visitor.get("/sign-in").await.body.contains("Planned maintenance"));

    t.advance(Span::hours(1)).await;
    let page = visitor.get("/notifications").await;
    assert!(page.body.contains("Planned maintenance tonight"), "{}", page.body);
    assert!(page.body.contains("&#60;b&#62;updates&#60;/b&#62;"), "text is shown as text: {}", page.body);
    let sign_in = visitor.get("/sign-in").await;
    assert!(sign_in.body.contains("Urgent: system notification"), "{}", sign_in.body);
    let id = sign_in.body.split("/notifications/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let hidden = visitor.post_form(&format!("/notifications/{id}/dismiss"), &[("back", "/sign-in")]).await;
    assert_eq!(hidden.location().as_deref(), Some("/sign-in"));
    assert!(hidden.set_cookies().iter().any(|c| c.starts_with("__Host-usher-dismissed=") && c.contains("Secure")));
    assert!(!visitor.get("/sign-in").await.body.contains("Urgent: system notification"), "dismissed");
    assert!(visitor.get("/notifications").await.body.contains("Planned maintenance"), "still listed");
    let operator = t.sign_in("olive@example.org", common::PASSWORD).await;
    assert!(
        operator.get("/home").await.body.contains("Urgent: system notification"),
        "the operator has not dismissed it"
    );

    t.advance(Span::hours(1)).await;
    assert!(!visitor.get("/notifications").await.body.contains("Planned maintenance"), "ended at its time");
    let operator = t.sign_in("olive@example.org", common::PASSWORD).await;
    let home = operator.get("/home").await;
    assert_eq!(home.h1(), "Operator home");
    assert!(!home.body.contains("Planned maintenance"));
}

#[tokio::test]
async fn audiences_links_and_the_phishing_page() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    let elsewhere = publish(
        &operator,
        &[("title", "Read this"), ("body", "Go to https://evil.example/login now"), ("importance", "warning")],
    )
    .await;
    assert_eq!(elsewhere.status, 400);
    assert!(elsewhere.body.contains("Links may only go to"), "{}", elsewhere.body);
    let base = t.base.clone();
    let courts = publish(
        &operator,
        &[
            ("title", "For courts only"),
            ("body", &format!("Details at {base}/notifications.")),
            ("importance", "warning"),
            ("audience", "court"),
        ],
    )
    .await;
    assert_eq!(courts.status, 303, "{}", courts.body);
    let firms = publish(
        &operator,
        &[
            ("title", "For law firms"),
            ("body", "Hello firms."),
            ("importance", "information"),
            ("audience", "law_firm"),
            ("audience", "chambers"),
        ],
    )
    .await;
    assert_eq!(firms.status, 303, "{}", firms.body);
    let page = admin.get("/notifications").await;
    assert!(page.body.contains("For law firms") && !page.body.contains("For courts only"), "{}", page.body);
    let visitor = t.client().get("/notifications").await;
    assert!(!visitor.body.contains("For law firms") && !visitor.body.contains("For courts only"));
    let all = operator.get("/notifications").await;
    assert!(all.body.contains("For law firms") && all.body.contains("For courts only"));
    assert!(all.body.contains(&format!("href=\"{base}/notifications\"")), "links to the service are links");
    assert!(!admin.get("/home").await.body.contains("system notification"), "information is not a banner");

    // Every page's footer names the one sender and address, and links to the phishing advice.
    let phishing = t.client().get("/phishing").await;
    assert_eq!(phishing.h1(), "Recognising phishing emails");
    for page in [&phishing, &visitor, &t.client().get("/sign-in").await] {
        assert!(
            page.body.contains("noreply@usher.localhost")
                && page.body.contains(&base)
                && page.body.contains("href=\"/phishing\"")
        );
    }
}

#[tokio::test]
async fn a_mailing_sends_each_person_one_email_even_with_two_servers() {
    let t = TestApp::start().await;
    let other = TestApp::start_on(&t.database_url, |_| {}).await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    t.organisation_with_admin(&operator, "Second Firm", "second.example", "07700 900112").await;
    drop(admin);
    // A court, whose people the notification is not for.
    let court = operator
        .api(
            reqwest::Method::POST,
            "/api/v1/organisations",
            Some(serde_json::json!({"name": "The Court", "kind": "court"})),
        )
        .await;
    assert_eq!(court.status, 201);
    let made = publish(
        &operator,
        &[
            ("title", "New terms"),
            ("body", "Please read the new terms."),
            ("importance", "information"),
            ("audience", "law_firm"),
            ("email", "yes"),
        ],
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let now = t.now().await;
    let (a, b) = tokio::join!(t.app.run_lifecycle(now), other.app.run_lifecycle(now));
    assert_eq!(a.unwrap().notified + b.unwrap().notified, 2, "two law firm people, one email each");
    let again = t.app.run_lifecycle(now).await.unwrap();
    assert_eq!(again.notified, 0);
    let mail = t.deliver().await;
    let sent: Vec<_> = mail.iter().filter(|m| m.message.purpose == "system_notification").collect();
    let mut to: Vec<&str> = sent.iter().map(|m| m.message.recipient.as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["admin@lawfirm.example", "admin@second.example"]);
    assert!(sent[0].message.body.contains("Please read the new terms."));
    let page = operator.get("/operator/notifications").await;
    assert!(page.body.contains("Emailed"), "{}", page.body);
}
