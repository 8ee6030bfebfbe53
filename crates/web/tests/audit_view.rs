//! The audit trail for people (issue 6): the operator views, filters and exports every event;
//! an organisation administrator sees only their organisation's. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use reqwest::Method;

#[tokio::test]
async fn the_operator_filters_and_exports_and_an_administrator_sees_only_their_organisation() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (org_a, admin_a) = t.organisation_with_admin(&operator, "Alpha Law", "alpha.example", "07700 900301").await;
    let (org_b, _) = t.organisation_with_admin(&operator, "Beta Chambers", "beta.example", "07700 900302").await;

    let page = operator.get("/operator/audit").await;
    assert_eq!(page.h1(), "Audit trail", "{}", page.body);
    assert!(page.body.contains("organisation.registered") && page.body.contains("sign_in"), "{}", page.body);
    assert!(page.body.contains("Olive Operator"), "names are shown: {}", page.body);

    let only = operator.get("/operator/audit?action=activation").await;
    assert!(only.body.contains("activation.completed"), "{}", only.body);
    assert!(!only.body.contains(">sign_in<"), "a family filter: {}", only.body);
    let family = operator.get("/operator/audit?action=sign_in").await;
    assert!(family.body.contains(">sign_in.second_factor<"), "a family with an underscore: {}", family.body);
    let bad = operator.get("/operator/audit?from=yesterday").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("Enter a date like"), "{}", bad.body);
    let by_org = operator.get(&format!("/operator/audit?organisation={org_b}")).await;
    // The filter lists every organisation by name; the events are Beta's only.
    let events = &by_org.body[by_org.body.find("<tbody").expect("events")..];
    assert!(events.contains("Beta Chambers") && !events.contains("Alpha Law"), "{}", by_org.body);
    assert!(by_org.body.contains(&format!(r#"<option value="{org_b}" selected>Beta Chambers</option>"#)));
    let by_person = operator.get("/operator/audit?user=admin%40alpha.example&action=activation.completed").await;
    assert_eq!(by_person.body.matches(">activation.completed<").count(), 1, "{}", by_person.body);

    // Exports: CSV and JSON lines, of the same filter, and the export itself is audited.
    let csv = operator.get("/operator/audit/export?action=sign_in&format=csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/csv"));
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some("seq,at,actor_id,subject_id,organisation_id,action,outcome,ip,user_agent,request_id,detail,hash")
    );
    assert!(lines.all(|l| l.contains(",sign_in")), "{}", csv.body);
    let jsonl = operator.get("/operator/audit/export?format=jsonl").await;
    for line in jsonl.body.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["hash"].as_str().unwrap().len() == 64);
    }
    assert!(operator.get("/operator/audit?action=audit.exported").await.body.contains("audit.exported"));

    // A cell a spreadsheet would run as a formula is made inert.
    let c = t.client();
    c.get("/sign-in").await;
    let token = c.cookie("__Host-usher-csrf").unwrap();
    c.request(
        Method::POST,
        "/sign-in",
        &[("user-agent", "=HYPERLINK(\"http://evil.example\")"), ("sec-fetch-site", "same-origin")],
        Some((
            format!("csrf_token={token}&email=nobody%40example.org&password=x"),
            "application/x-www-form-urlencoded",
        )),
    )
    .await;
    let csv = operator.get("/operator/audit/export?action=sign_in&format=csv").await;
    assert!(csv.body.contains("'=HYPERLINK"), "{}", csv.body);
    assert!(!csv.body.contains(",=HYPERLINK"), "{}", csv.body);

    // Asking for Beta's administrator gives the same 404 as nobody; the refusal is in Alpha's
    // trail, without Beta's person's name or the operator's address.
    let beta_admin =
        by_org.body.split("Ada Admin of Beta Chambers (").nth(1).unwrap().split(')').next().unwrap().to_owned();
    let beta_id: String = {
        let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&t.database_url).await.unwrap();
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'admin@beta.example'").fetch_one(&mut db).await.unwrap()
    };
    assert!(beta_id.starts_with(&beta_admin));
    assert_eq!(admin_a.get(&format!("/admin/users/{beta_id}")).await.status, 404);
    let denied = admin_a.get("/admin/audit?action=authz").await;
    assert!(denied.body.contains("authz.denied"), "{}", denied.body);
    assert!(!denied.body.contains("Beta Chambers") && !denied.body.contains("Ada Admin of Beta"), "{}", denied.body);
    // Defect 9: the refusal of a real person's ID and of a made-up one look the same in the
    // administrator's export, so it cannot tell real IDs from random ones.
    let made_up = "0190e6a4-0000-7000-8000-000000000000";
    assert_eq!(admin_a.get(&format!("/admin/users/{made_up}")).await.status, 404);
    let refusals = admin_a.get("/admin/audit/export?action=authz&format=jsonl").await;
    let refusals: Vec<serde_json::Value> = refusals.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(refusals.len(), 2, "{refusals:?}");
    for r in &refusals {
        assert_eq!(r["subject_id"], "", "no subject in the organisation's trail: {r}");
        assert_eq!(r["detail"], refusals[0]["detail"]);
    }
    let csv = admin_a.get("/admin/audit/export?format=csv").await;
    assert!(!csv.body.contains(&beta_id) && !csv.body.contains(made_up), "{}", csv.body);
    // The operator sees whom they asked for.
    let seen = operator.get("/operator/audit/export?action=authz&format=jsonl").await;
    assert!(seen.body.contains(&beta_id), "{}", seen.body);
    let operator_events = admin_a.get("/admin/audit/export?action=organisation&format=jsonl").await;
    let lines: Vec<serde_json::Value> =
        operator_events.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty(), "{}", operator_events.body);
    assert!(
        lines.iter().all(|v| v["ip"] == "" && v["user_agent"] == ""),
        "the operator's address is not shown: {lines:?}"
    );
    // Another site cannot start an export (each is recorded).
    let foreign =
        admin_a.request(Method::GET, "/admin/audit/export?format=csv", &[("sec-fetch-site", "cross-site")], None).await;
    assert_eq!(foreign.status, 403);

    // The administrator of Alpha sees Alpha's events only, whatever they ask for.
    let mine = admin_a.get("/admin/audit").await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert!(mine.body.contains("activation.completed"), "{}", mine.body);
    let theirs = admin_a.get(&format!("/admin/audit?organisation={org_b}")).await;
    assert!(!theirs.body.contains("Beta Chambers"), "{}", theirs.body);
    let export = admin_a.get("/admin/audit/export?format=jsonl").await;
    for line in export.body.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["organisation_id"], org_a.as_str(), "{line}");
    }
    // Only operators and administrators see the trail.
    // Operator routes refuse everyone but operators (defect 9), and the reverse.
    for path in ["/operator/audit", "/operator/audit/export?format=csv"] {
        assert_eq!(admin_a.get(path).await.status, 403, "{path}");
    }
    assert_eq!(operator.get("/admin/audit").await.status, 403);
    let stranger = t.client();
    assert_ne!(stranger.get("/operator/audit").await.status, 200);
}
