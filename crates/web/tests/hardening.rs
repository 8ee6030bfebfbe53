//! Bad input gets a clear answer and changes nothing: return-to paths, names, passwords,
//! searches and phone numbers that outside testing found slipping through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{PASSWORD, TestApp};

/// Defect 4: a `next` holding CR, LF, NUL or DEL after a valid prefix answered 500, and a
/// non-ASCII one came back as mojibake. Each is dropped for the default page now.
#[tokio::test]
async fn a_bad_return_to_is_dropped_not_a_server_error() {
    let t = TestApp::start().await;
    let c = t.operator().await;
    for bad in [
        "/account/security\r\nSet-Cookie: evil=1",
        "/account/security\n",
        "/account/security\0",
        "/account/security\u{7f}",
        "/account/sécurité",
        "/account//evil.example",
    ] {
        let page = c.post_form("/account/confirm-password", &[("password", PASSWORD), ("next", bad)]).await;
        assert_eq!(page.status, 303, "{bad:?}: {}", page.body);
        assert_eq!(page.location().as_deref(), Some("/account/security"), "{bad:?}");
        let form = c.get(&format!("/account/confirm-password?next={}", urlencode(bad))).await;
        assert_eq!(form.status, 200, "{bad:?}");
        assert!(form.body.contains("name=\"next\" value=\"/account/security\""), "{bad:?}");
    }
    let good = c.post_form("/account/confirm-password", &[("password", PASSWORD), ("next", "/account/sessions")]).await;
    assert_eq!(good.location().as_deref(), Some("/account/sessions"));
}

fn urlencode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Defect 6: a number in a country that is never texted could be given to a new person, who
/// then could never activate. Defect 8: names with bidi or zero-width characters reached other
/// people's emails, and a search for a NUL byte listed everyone.
#[tokio::test]
async fn numbers_names_and_searches_that_could_never_work_are_refused() {
    let t = TestApp::start().await;
    let operator = t.operator().await;
    let (_, admin) = t.organisation_with_admin(&operator, "Hale & Co", "hale.example", "07700 900100").await;
    admin.get("/admin/users/new").await;
    let add = |name: &'static str, email: &'static str, mobile: &'static str| {
        let admin = &admin;
        async move {
            admin.post_form("/admin/users/new", &[("full_name", name), ("email", email), ("mobile", mobile)]).await
        }
    };
    let french = add("Jean Dupont", "jean@hale.example", "+33 6 12 34 56 78").await;
    assert_eq!(french.status, 400, "{}", french.body);
    assert!(
        french.body.contains("Texts can only be sent to numbers in: the United Kingdom. Enter a mobile number there."),
        "{}",
        french.body
    );
    let hidden = add("Eve \u{202E}nimda", "eve@hale.example", "07700 900101").await;
    assert_eq!(hidden.status, 400, "{}", hidden.body);
    assert!(hidden.body.contains("hidden formatting characters"), "{}", hidden.body);
    let list = admin.get("/admin/users").await;
    assert!(!list.body.contains("jean@hale.example") && !list.body.contains("eve@hale.example"), "nothing was added");

    let hal = add("Hal Jordan", "hal@hale.example", "07700 900102").await;
    assert_eq!(hal.status, 303, "{}", hal.body);
    let hal_path = hal.location().unwrap().split('?').next().unwrap().to_owned();
    let american = admin.post_form(&format!("{hal_path}/mobile"), &[("mobile", "+1 202 555 0143")]).await;
    assert_eq!(american.status, 400, "{}", american.body);
    assert!(american.body.contains("Enter a mobile number there."), "{}", american.body);
    assert!(admin.get(&hal_path).await.body.contains("0102"), "the number is unchanged");

    let everyone = admin.get("/admin/users?q=%00").await;
    assert_eq!(everyone.status, 200);
    assert!(!everyone.body.contains("hal@hale.example"), "a NUL byte matches nobody");
    assert!(admin.get("/admin/users?q=Hal").await.body.contains("hal@hale.example"));
}
