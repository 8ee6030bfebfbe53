//! Route groups and return-to: every route's door is walked from the router's own table (not a
//! hand list), and a sign-in ends where the person was going.

mod common;

use common::factors::{USER_EMAIL, USER_PASSWORD, pyotp_code, user_with_app};
use common::{Client, Page, TestApp};
use reqwest::Method;
use usher_domain::duration::Span;

const RETURN_COOKIE: &str = "__Host-usher-return";

/// A path of the table with its parameters filled in (IDs nobody has, a token nobody holds).
fn concrete(path: &str) -> String {
    path.replace("{id}", "0123456789abcdef0123456789abcdef")
        .replace("{token}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .replace("{file}", "usher.css")
}

/// Sends `method` to `path` as our own page or script would (same-origin, with the anti-forgery
/// token), so that only the group's door can refuse it.
async fn call(c: &Client, method: &str, path: &str) -> Page {
    let path = concrete(path);
    let token = c.cookie("__Host-usher-csrf").unwrap_or_default();
    if method == "GET" {
        return c.get(&path).await;
    }
    if path.starts_with("/api/") {
        let headers = [("x-csrf-token", token.as_str()), ("sec-fetch-site", "same-origin")];
        return c.request(Method::POST, &path, &headers, Some(("{}".to_owned(), "application/json"))).await;
    }
    c.post_form(&path, &[]).await
}

fn guarded(group: &str) -> bool {
    !matches!(group, "public" | "protocol")
}

#[tokio::test]
async fn every_guarded_route_turns_away_a_visitor_without_a_session() {
    let t = TestApp::start().await;
    let table = usher_web::route_table();
    assert!(table.len() > 100, "the table lists every route");
    let c = t.client();
    c.get("/sign-in").await;
    for (method, path, group) in table.iter().filter(|(_, _, g)| guarded(g)) {
        let page = call(&c, method, path).await;
        if path.starts_with("/api/") {
            assert_eq!(page.status, 401, "{method} {path} ({group}): {}", page.body);
            assert_eq!(page.json()["code"], "unauthenticated", "{method} {path}");
        } else {
            assert_eq!(page.status, 303, "{method} {path} ({group}): {}", page.body);
            assert_eq!(page.location().as_deref(), Some("/sign-in"), "{method} {path} ({group})");
        }
    }
}

#[tokio::test]
async fn every_route_past_the_password_turns_away_a_sign_in_waiting_for_its_second_factor() {
    let t = TestApp::start().await;
    let (_, _, _) = user_with_app(&t).await;
    let c = common::factors::password_step(&t).await;
    for (method, path, group) in usher_web::route_table() {
        if !guarded(group) || group == "second_factor_step" {
            continue;
        }
        let page = call(&c, &method, path).await;
        if path.starts_with("/api/") {
            assert_eq!(page.status, 403, "{method} {path} ({group}): {}", page.body);
            assert_eq!(page.json()["code"], "second_factor_required", "{method} {path}");
        } else {
            assert_eq!(page.location().as_deref(), Some("/sign-in/second-factor"), "{method} {path} ({group})");
        }
    }
}

#[tokio::test]
async fn every_operator_and_administrator_route_refuses_other_roles() {
    let t = TestApp::start().await;
    let (user, _, admin) = user_with_app(&t).await;
    let operator = t.sign_in("olive@example.org", common::PASSWORD).await;
    for (method, path, group) in usher_web::route_table() {
        let outsiders: Vec<&Client> = match group {
            "operator" => vec![&user, &admin],
            "org_admin" => vec![&user, &operator],
            _ => continue,
        };
        for c in outsiders {
            let page = call(c, &method, path).await;
            assert_eq!(page.status, 403, "{method} {path} ({group}): {}", page.body);
            if path.starts_with("/api/") {
                assert_eq!(page.json()["code"], "forbidden", "{method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn every_write_outside_the_protocol_group_refuses_another_site() {
    let t = TestApp::start().await;
    let c = t.client();
    c.get("/sign-in").await;
    let token = c.cookie("__Host-usher-csrf").unwrap_or_default();
    for (method, path, group) in usher_web::route_table() {
        if method != "POST" || group == "protocol" {
            continue;
        }
        let path = concrete(path);
        let headers = [("sec-fetch-site", "cross-site"), ("x-csrf-token", token.as_str())];
        let page = if path.starts_with("/api/") {
            c.request(Method::POST, &path, &headers, Some(("{}".to_owned(), "application/json"))).await
        } else {
            c.post_raw(&path, &[("csrf_token", token.as_str())], &headers).await
        };
        assert_eq!(page.status, 403, "POST {path} ({group}): {}", page.body);
    }
}

/// The second factor of a sign-in whose password step `c` has done, with the app's next code.
async fn give_app_code(t: &TestApp, c: &Client, uri: &str) -> Page {
    t.advance(Span::seconds_(30)).await;
    let now = t.now().await.unix();
    c.post_form("/sign-in/second-factor", &[("method", "app"), ("code", &pyotp_code(uri, now))]).await
}

#[tokio::test]
async fn a_page_asked_for_before_signing_in_is_where_the_sign_in_ends_once() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    let c = t.client();
    let asked = c.get("/account/sessions?from=bookmark").await;
    assert_eq!(asked.location().as_deref(), Some("/sign-in"));
    assert!(c.cookie(RETURN_COOKIE).is_some(), "the door remembers where the person was going");
    c.get("/sign-in").await;
    let password = c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    assert_eq!(password.location().as_deref(), Some("/sign-in/second-factor"));
    let done = give_app_code(&t, &c, &uri).await;
    assert_eq!(done.location().as_deref(), Some("/account/sessions?from=bookmark"), "{}", done.body);
    assert!(c.cookie(RETURN_COOKIE).is_none(), "used once");

    c.post_form("/sign-out", &[]).await;
    c.get("/sign-in").await;
    c.post_form("/sign-in", &[("email", USER_EMAIL), ("password", USER_PASSWORD)]).await;
    let again = give_app_code(&t, &c, &uri).await;
    assert_eq!(again.location().as_deref(), Some("/home"), "the next sign-in goes home");
}

#[tokio::test]
async fn a_page_asked_for_between_the_password_and_the_second_factor_is_kept() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    let c = common::factors::password_step(&t).await;
    let asked = c.get("/account/security").await;
    assert_eq!(asked.location().as_deref(), Some("/sign-in/second-factor"));
    let done = give_app_code(&t, &c, &uri).await;
    assert_eq!(done.location().as_deref(), Some("/account/security"), "{}", done.body);
}

#[tokio::test]
async fn a_remembered_page_that_is_not_plainly_ours_is_ignored() {
    let t = TestApp::start().await;
    let (_, uri, _) = user_with_app(&t).await;
    for forged in
        ["%2F%2Fevil.example%2F", "https%3A%2F%2Fevil.example%2F", "%2Fhome%0D%0ASet-Cookie%3A%20x%3D1", "%2Fsign-out"]
    {
        let c = common::factors::password_step(&t).await;
        c.set_cookie(RETURN_COOKIE, forged);
        let done = give_app_code(&t, &c, &uri).await;
        assert_eq!(done.location().as_deref(), Some("/home"), "{forged}: {}", done.body);
    }
}
