//! Snapshots of our GOV.UK component HTML (written in our own templates, since the Nunjucks
//! macros cannot run in Rust). Per-request values are masked so the snapshots are stable.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp};

fn stable(body: &str) -> String {
    let masked = common::masked_after(body, &["nonce=\"", "name=\"csrf_token\" value=\""]);
    let mut out = String::new();
    let mut rest = masked.as_str();
    // Ports of the test server change from run to run.
    while let Some(i) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..i + 10]);
        rest = rest[i + 10..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("PORT");
    }
    out.push_str(rest);
    let out = mask_ids(&out);
    // The database engine shown on the operator home page depends on the run.
    let out = out.replace(">sqlite<", ">ENGINE<").replace(">postgres<", ">ENGINE<");
    out.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n")
}

/// Replaces each 32-character lower-case hex ID (random per run) with `ID`.
fn mask_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')).count();
        if run == 32 {
            out.push_str("ID");
            i += run;
        } else if run > 0 {
            out.push_str(&text[i..i + run]);
            i += run;
        } else {
            let c = text[i..].chars().next().unwrap_or(' ');
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn main_of(body: &str) -> String {
    let start = body.find("<main").expect("a main element");
    let end = body.find("</main>").expect("end of main") + "</main>".len();
    stable(&body[start..end])
}

#[tokio::test]
async fn page_components() {
    let t = TestApp::start().await;
    let link = t.setup_link().await;
    let c = t.client();
    let start = c.get("/").await;
    insta::assert_snapshot!("layout", stable(&start.body));
    insta::assert_snapshot!("start", main_of(&start.body));
    insta::assert_snapshot!("setup_form", main_of(&c.get(&link).await.body));
    let errors = c
        .post_form(
            &link,
            &[
                ("full_name", "Olive <b>Operator</b>"),
                ("email", "olive"),
                ("password", "password"),
                ("confirm_password", ""),
            ],
        )
        .await;
    insta::assert_snapshot!("setup_form_with_errors", main_of(&errors.body));
    let done = c
        .post_form(
            &link,
            &[
                ("full_name", "Olive Operator"),
                ("email", "olive@example.org"),
                ("password", PASSWORD),
                ("confirm_password", PASSWORD),
            ],
        )
        .await;
    insta::assert_snapshot!("set_up", main_of(&c.get("/set-up").await.body));
    insta::assert_snapshot!("set_up_email", main_of(&c.get("/set-up/email").await.body));
    t.second_step(&c, done, "olive@example.org", PASSWORD).await;
    insta::assert_snapshot!("operator_home", main_of(&c.get("/home").await.body));
    insta::assert_snapshot!("security", main_of(&c.get("/account/security").await.body));
    let pending = t.client();
    pending.get("/sign-in").await;
    pending.post_form("/sign-in", &[("email", "olive@example.org"), ("password", PASSWORD)]).await;
    insta::assert_snapshot!("second_factor", main_of(&pending.get("/sign-in/second-factor").await.body));
    insta::assert_snapshot!("lost_device", main_of(&pending.get("/sign-in/lost-device").await.body));
    insta::assert_snapshot!("link_used", main_of(&c.get(&link).await.body));
    insta::assert_snapshot!("not_found", main_of(&c.get("/nowhere").await.body));
    let other = t.client();
    other.get("/sign-in").await;
    let wrong = other.post_form("/sign-in", &[("email", "olive@example.org"), ("password", "nope")]).await;
    insta::assert_snapshot!("sign_in_with_error", main_of(&wrong.body));
}

#[tokio::test]
async fn organisation_and_activation_components() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    operator.get("/operator/organisations/new").await;
    let empty = operator.post_form("/operator/organisations/new", &[("name", ""), ("kind", "")]).await;
    insta::assert_snapshot!("organisation_new_with_errors", main_of(&empty.body));
    let (_, admin) = t.organisation_with_admin(&operator, "Snap Firm", "snap.example", "07700 900070").await;
    admin.get("/admin/users/new").await;
    let added = admin
        .post_form(
            "/admin/users/new",
            &[("full_name", "Sam Snap"), ("email", "sam@snap.example"), ("mobile", "07700 900071")],
        )
        .await;
    insta::assert_snapshot!("admin_users", main_of(&admin.get("/admin/users").await.body));
    insta::assert_snapshot!("admin_user", main_of(&admin.get(&added.location().unwrap()).await.body));
    let path = t.activation_path("sam@snap.example").await;
    let c = t.client();
    insta::assert_snapshot!("activation_terms", main_of(&c.get(&path).await.body).replace(&path, "/activate/TOKEN"));
    c.post_form(&format!("{path}/terms"), &[("agree", "yes"), ("version", "1")]).await;
    c.post_form(&format!("{path}/send-code"), &[]).await;
    let wrong = c.post_form(&format!("{path}/code"), &[("code", "abc")]).await;
    insta::assert_snapshot!("activation_code_with_error", main_of(&wrong.body).replace(&path, "/activate/TOKEN"));
}
