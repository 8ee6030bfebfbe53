//! What a new user tripped over: the header, navigation and titles, the way back from lists,
//! signing out, the sign-in refusal, notification dates, the audit trail in words and the dev
//! mailbox's links.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Client, TestApp};

/// The text between `start` and the next `end` after it.
fn between<'a>(body: &'a str, start: &str, end: &str) -> &'a str {
    let from = body.find(start).unwrap_or_else(|| panic!("no {start} in {body}"));
    let rest = &body[from..];
    &rest[..rest.find(end).map_or(rest.len(), |e| e + end.len())]
}

fn title(body: &str) -> &str {
    between(body, "<title>", "</title>").trim_start_matches("<title>").trim_end_matches("</title>")
}

/// The labels of the service navigation, in order, and the active one.
fn nav(body: &str) -> (Vec<String>, Option<String>) {
    if !body.contains("govuk-service-navigation__list") {
        return (Vec::new(), None);
    }
    let list = between(body, "govuk-service-navigation__list", "</ul>");
    let mut labels = Vec::new();
    let mut active = None;
    for item in list.split("<li").skip(1) {
        let link = between(item, "<a", "</a>");
        let inner = link.trim_end_matches("</a>").trim_end_matches("</strong>");
        let label = inner.rsplit('>').next().unwrap().to_owned();
        if item.contains("aria-current") {
            active = Some(label.clone());
        }
        labels.push(label);
    }
    (labels, active)
}

#[tokio::test]
async fn the_header_names_the_person_and_the_navigation_follows_the_role() {
    let t = TestApp::start().await;
    let visitor = t.client();
    let start = visitor.get("/").await;
    assert_eq!(title(&start.body), "Usher", "the start page is titled with the service name alone");
    let sign_in = visitor.get("/sign-in").await;
    assert_eq!(title(&sign_in.body), "Sign in – Usher");
    assert_eq!(nav(&sign_in.body).0, Vec::<String>::new(), "no navigation before signing in");
    assert!(!sign_in.body.contains("Sign out"));

    let operator = t.operator().await;
    let home = operator.get("/home").await;
    let header = between(&home.body, "<header", "</header>");
    assert!(header.contains("Olive Operator"), "{header}");
    assert!(header.contains(r#"action="/sign-out""#) && header.contains(">Sign out</button>"), "{header}");
    assert_eq!(
        nav(&home.body).0,
        ["Organisations", "Services", "Notifications", "Terms and conditions", "Audit trail", "Security", "Sessions"]
    );
    let orgs = operator.get("/operator/organisations").await;
    assert_eq!(nav(&orgs.body).1.as_deref(), Some("Organisations"));
    assert_eq!(title(&orgs.body), "Organisations – Usher");

    let (_, admin) = t.organisation_with_admin(&operator, "Look Law", "look.example", "07700 900301").await;
    let people = admin.get("/admin/users").await;
    assert_eq!(people.h1(), "People");
    assert_eq!(
        nav(&people.body),
        (vec!["People".into(), "Audit trail".into(), "Security".into(), "Sessions".into()], Some("People".into()))
    );
    assert!(between(&people.body, "<header", "</header>").contains("Ada Admin of Look Law"));
}

#[tokio::test]
async fn list_pages_lead_back_and_signing_out_says_so() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    for path in [
        "/operator/organisations",
        "/operator/notifications",
        "/operator/audit",
        "/account/security",
        "/account/sessions",
    ] {
        let page = operator.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        let crumbs = between(&page.body, r#"<nav class="govuk-breadcrumbs""#, "</nav>");
        assert!(crumbs.contains(r#"href="/home">Home</a>"#), "{path}: {crumbs}");
    }
    let out = operator.post_form("/sign-out", &[]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location().as_deref(), Some("/signed-out"));
    let page = operator.get("/signed-out").await;
    assert_eq!(page.status, 200);
    assert_eq!(page.h1(), "You have signed out");
    assert_eq!(title(&page.body), "You have signed out – Usher");
    assert!(page.body.contains(r#"href="/sign-in""#));
    assert!(!page.body.contains("Sign out"), "signed out: no Sign out button");
    assert_eq!(operator.get("/home").await.location().as_deref(), Some("/sign-in"));
}

#[tokio::test]
async fn a_refused_sign_in_has_one_short_field_message_and_one_way_to_get_help() {
    let t = TestApp::start().await;
    t.operator().await;
    let c = t.client();
    let page = c.get("/sign-in").await;
    let help_links =
        ["href=\"/recover\"", "href=\"/reset-password\""].iter().map(|l| page.body.matches(l).count()).sum::<usize>();
    assert_eq!(help_links, 1, "one way to get help: {}", page.body);
    let refused = c.post_form("/sign-in", &[("email", "olive@example.org"), ("password", "nope")]).await;
    assert_eq!(refused.status, 400);
    let field = between(&refused.body, r#"<p id="email-error""#, "</p>");
    assert!(field.ends_with("Enter a correct email address and password</p>"), "{field}");
    let summary = between(&refused.body, "govuk-error-summary__body", "</ul>");
    assert!(summary.contains("After 4 wrong passwords in a row an account is locked"), "{summary}");
    assert!(summary.contains(r##"<a href="#email">Enter a correct email address and password</a>"##), "{summary}");
    assert!(title(&refused.body).starts_with("Error: Sign in – "));
    // The API keeps the whole message, and the same short field message.
    let api =
        c.post_json("/api/v1/sign-in", serde_json::json!({"email": "olive@example.org", "password": "nope"})).await;
    let json = api.json();
    assert!(json["detail"].as_str().unwrap_or_default().contains("reset your password"), "{json}");
}

async fn publish(operator: &Client, fields: &[(&str, &str)]) -> common::Page {
    operator.get("/operator/notifications/new").await;
    let mut all =
        vec![("title", "Maintenance"), ("body", "Sign-in is unavailable tonight."), ("importance", "warning")];
    all.retain(|(k, _)| !fields.iter().any(|(f, _)| f == k));
    all.extend_from_slice(fields);
    operator.post_form("/operator/notifications/new", &all).await
}

#[tokio::test]
async fn notification_times_use_the_date_input_with_a_message_per_date() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let form = operator.get("/operator/notifications/new").await;
    for id in ["publish_from", "publish_from-month", "publish_from-year", "publish_from-time", "publish_until"] {
        assert!(form.body.contains(&format!(r#"id="{id}""#)), "{id}");
    }
    assert!(form.body.contains(r#"name="publish_until-year""#));
    assert!(
        form.body.contains(
            r#"<legend class="govuk-fieldset__legend govuk-fieldset__legend--s">Show from (optional)</legend>"#
        )
    );

    let missing = publish(
        &operator,
        &[("publish_from-day", "1"), ("publish_from-year", "2026"), ("publish_from-time", "09:00"), ("title", "")],
    )
    .await;
    assert_eq!(missing.status, 400);
    let summary = between(&missing.body, "govuk-error-summary__list", "</ul>");
    assert!(summary.contains(r##"<a href="#publish_from-month">Show from must include a month</a>"##), "{summary}");
    assert!(summary.contains(r##"href="#title""##), "other fields are checked too: {summary}");
    let month = between(
        &missing.body,
        r#"<input class="govuk-input govuk-date-input__input govuk-input--width-2 govuk-input--error" id="publish_from-month""#,
        ">",
    );
    assert!(!month.is_empty());
    assert!(
        missing.body.contains(
            r#"id="publish_from" name="publish_from-day" type="text" inputmode="numeric" spellcheck="false" value="1""#
        ),
        "answers kept"
    );
    assert!(!missing.body.contains(r#"govuk-input--error" id="publish_from""#), "the day is right");

    let unreal = publish(
        &operator,
        &[
            ("publish_from-day", "31"),
            ("publish_from-month", "2"),
            ("publish_from-year", "2027"),
            ("publish_from-time", "9:00"),
        ],
    )
    .await;
    assert!(unreal.body.contains("Show from must be a real date"), "{}", unreal.body);
    let time = publish(
        &operator,
        &[
            ("publish_until-day", "2"),
            ("publish_until-month", "2"),
            ("publish_until-year", "2027"),
            ("publish_until-time", "6pm"),
        ],
    )
    .await;
    assert!(
        time.body.contains(r##"<a href="#publish_until-time">Show until time must be like 09:00 or 17:30</a>"##),
        "{}",
        time.body
    );
    let backwards = publish(
        &operator,
        &[
            ("publish_from-day", "2"),
            ("publish_from-month", "2"),
            ("publish_from-year", "2027"),
            ("publish_from-time", "10:00"),
            ("publish_until-day", "1"),
            ("publish_until-month", "2"),
            ("publish_until-year", "2027"),
            ("publish_until-time", "10:00"),
        ],
    )
    .await;
    assert!(
        backwards.body.contains(r##"<a href="#publish_until">The end must come after the start</a>"##),
        "{}",
        backwards.body
    );

    let made = publish(
        &operator,
        &[
            ("publish_from-day", "2"),
            ("publish_from-month", "2"),
            ("publish_from-year", "2027"),
            ("publish_from-time", "9.30"),
        ],
    )
    .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let list = operator.get("/operator/notifications").await;
    assert!(list.body.contains("2 2 2027 at 9:30am (UTC)") || list.body.contains("2 February 2027"), "{}", list.body);
}

#[tokio::test]
async fn the_audit_trail_is_in_words_with_organisations_by_name() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (org, admin) = t.organisation_with_admin(&operator, "Words & Co", "words.example", "07700 900302").await;
    let page = operator.get("/operator/audit").await;
    assert!(page.body.contains("Signed in with a code sent by email"), "{}", page.body);
    assert!(page.body.contains(r#"<span class="usher-action-code">sign_in.second_factor</span>"#));
    assert!(page.body.contains(&format!(r#"<option value="{org}">Words &#38; Co</option>"#)), "organisations by name");
    assert!(page.body.contains(r#"<option value="mfa">Second factors</option>"#));
    assert!(page.body.contains("usher audit verify"), "the operator runs the server");
    let chosen = operator.get(&format!("/operator/audit?organisation={org}&action=activation")).await;
    assert!(chosen.body.contains(&format!(r#"<option value="{org}" selected>"#)), "{}", chosen.body);
    assert!(chosen.body.contains(r#"<option value="activation" selected>"#));
    assert!(chosen.body.contains("Activated the account"));
    assert!(!chosen.body.contains("Signed in with a code sent by email"), "filtered by action");
    let csv = operator.get("/operator/audit/export?action=sign_in&format=csv").await;
    assert!(csv.body.contains(",sign_in.second_factor,"), "exports keep the raw action: {}", csv.body);

    let theirs = admin.get("/admin/audit").await;
    assert_eq!(theirs.status, 200);
    assert!(!theirs.body.contains("usher audit verify"), "no server command for administrators");
    assert!(!theirs.body.contains(r#"id="organisation""#), "an administrator sees one organisation");
    assert!(theirs.body.contains("Activated the account"));
}

#[tokio::test]
async fn the_dev_mailbox_links_to_the_service_and_says_what_is_still_on_its_way() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    t.deliver().await;
    let quiet = operator.get("/dev/mailbox").await;
    assert!(!quiet.body.contains("still being delivered"), "{}", quiet.body);
    let visitor = t.client();
    visitor.get("/reset-password").await;
    let asked = visitor.post_form("/reset-password", &[("email", "olive@example.org")]).await;
    assert!(asked.status == 200 || asked.status == 303, "{}", asked.body);
    let waiting = operator.get("/dev/mailbox").await;
    assert!(
        waiting.body.contains("1 message is still being delivered. Reload this page in a few seconds to see it."),
        "{}",
        waiting.body
    );
    t.deliver().await;
    let delivered = operator.get("/dev/mailbox").await;
    assert!(!delivered.body.contains("still being delivered"));
    let link = format!(r#"<a class="govuk-link" href="{}/reset-password/"#, t.base);
    assert!(delivered.body.contains(&link), "the reset link is clickable: {}", delivered.body);
    let body = between(&delivered.body, "<pre", "</pre>");
    // Only links to this service: the footer-style mention of any other address stays text.
    assert_eq!(body.matches("<a ").count(), body.matches(&format!(r#"href="{}"#, t.base)).count(), "{body}");
}

/// A rule lives in one place and pages print it from there: a deployment that deregisters
/// after 60 days and never expires passwords (the NIST profile) says so, and the texted and
/// emailed codes' lifetimes and lengths come from the same policy value.
#[tokio::test]
async fn pages_print_the_numbers_of_the_policy_in_force() {
    let t = TestApp::start_with(|c| {
        c.lifecycle.deregister_after = usher_domain::duration::Span::days(60);
        c.policy.profile = usher_domain::password::Profile::Nist;
    })
    .await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Lamb Law", "lawfirm.example", "07700 900111").await;
    let form = admin.get("/admin/users/new").await;
    let link = t.app.policy.activation_link.in_words();
    assert!(form.body.contains(&format!("It works for {link}.")), "{}", form.body);
    let added = admin
        .post_form(
            "/admin/users/new",
            &[("full_name", "Una User"), ("email", "una@lawfirm.example"), ("mobile", "07700 900321")],
        )
        .await;
    assert_eq!(added.status, 303, "{}", added.body);
    let path = t.activation_path("una@lawfirm.example").await;
    let done = t.activate(&path, "+447700900321", "Tidy-Horse-Staple-7").await;
    assert_eq!(done.h1(), "Your account is activated", "{}", done.body);
    assert!(done.body.contains("Sign in at least once every 60 days"), "{}", done.body);
    assert!(!done.body.contains("change your password every"), "NIST passwords do not expire: {}", done.body);

    let c = t.client();
    c.get("/sign-in").await;
    let page = c.post_form("/sign-in", &[("email", "una@lawfirm.example"), ("password", "Tidy-Horse-Staple-7")]).await;
    assert_eq!(page.location().as_deref(), Some("/set-up"), "{}", page.body);
    let email = c.get("/set-up/email").await;
    let emailed = t.app.policy.email_code.lifetime.in_words();
    let digits = usher_domain::code::CODE_DIGITS;
    assert!(
        email.body.contains(&format!("we will email a {digits}-digit code"))
            && email.body.contains(&format!("A code works once, for {emailed},")),
        "{}",
        email.body
    );
}
