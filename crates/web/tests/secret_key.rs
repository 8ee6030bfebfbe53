//! The secret key against the database it protects: two servers starting at once on a new
//! database agree on one key, and a previous key cannot be dropped while sealed data still
//! names it. On SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::factors::*;
use common::{T0, TestApp, fresh_database_url, test_config};
use usher_app::config::Config;
use usher_app::key_check::open_for;
use usher_domain::Timestamp;
use usher_domain::secret::SecretString;
use usher_store::Store;

const KEY_A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const KEY_B: &str = "Ym9ib2JvYm9ib2JvYm9ib2JvYm9ib2JvYm9ib2JvYm8=";

fn with_keys(database_url: &str, current: &str, previous: &[&str]) -> Config {
    let mut config = test_config(database_url);
    config.secret_key = Some(SecretString::new(current));
    config.previous_secret_keys = previous.iter().map(|k| SecretString::new(*k)).collect();
    config
}

/// Found in review: the check and the recording of a new key ran without a lock, so two servers with
/// different keys starting together on an empty database could both record their own key and
/// then seal under different keys. Exactly one of them is accepted.
#[tokio::test]
async fn two_servers_starting_at_once_with_different_keys_agree_on_one() {
    for _ in 0..3 {
        let url = fresh_database_url().await;
        let store = Store::connect(&url, 5).await.unwrap();
        store.migrate(T0).await.unwrap();
        let (a, b) = (with_keys(&url, KEY_A, &[]), with_keys(&url, KEY_B, &[]));
        let now = Timestamp::from_unix(T0);
        let (first, second) = tokio::join!(open_for(&a, &store, now), open_for(&b, &store, now));
        assert!(
            first.is_ok() != second.is_ok(),
            "exactly one key is accepted: {:?} / {:?}",
            first.as_ref().map(|_| ()),
            second.as_ref().map(|_| ())
        );
        let refused = first.err().or(second.err()).unwrap();
        assert!(refused.problem.contains("another key"), "{}", refused.problem);
    }
}

/// Found in review: after a rotation had recorded the new key, a start with the previous key dropped was
/// accepted although authenticator secrets were still sealed under it (every app then got
/// "wrong code"). It is refused until `usher keys reencrypt` has sealed everything again,
/// message bodies kept for the dev mailbox included.
#[tokio::test]
async fn a_previous_key_stays_until_what_it_sealed_is_sealed_again() {
    let t = TestApp::start().await;
    let (_, _uri, _) = user_with_app(&t).await;
    let store = Store::connect(&t.database_url, 5).await.unwrap();
    let now = t.now().await;
    open_for(&with_keys(&t.database_url, KEY_A, &[]), &store, now).await.unwrap();
    // The rotation: the new key with the old one kept is accepted and recorded.
    open_for(&with_keys(&t.database_url, KEY_B, &[KEY_A]), &store, now).await.unwrap();

    let dropped = open_for(&with_keys(&t.database_url, KEY_B, &[]), &store, now).await.err();
    let refused = dropped.expect("the old key dropped before the secrets are sealed again is refused");
    assert_eq!(refused.setting, "previous_secret_keys");
    assert!(refused.problem.contains("usher keys reencrypt"), "{}", refused.problem);

    let rotated = TestApp::start_on(&t.database_url, |c| {
        c.secret_key = Some(SecretString::new(KEY_B));
        c.previous_secret_keys = vec![SecretString::new(KEY_A)];
    })
    .await;
    assert_eq!(rotated.app.reseal_secrets().await.unwrap(), (1, 0));
    let (bodies, unopenable) = rotated.app.reseal_outbox_bodies().await.unwrap();
    assert!(bodies > 0, "the dev mailbox keeps sealed bodies, sealed again under the new key");
    assert_eq!(unopenable, 0);
    assert_eq!(rotated.app.reseal_outbox_bodies().await.unwrap(), (0, 0), "once");
    let (keys, unopenable) = rotated.app.reseal_provider_secrets().await.unwrap();
    assert_eq!((keys, unopenable), (3, 0), "the two token signing keys and the pairwise subject secret");

    open_for(&with_keys(&t.database_url, KEY_B, &[]), &store, now).await.expect("nothing needs the old key now");
    let alone = TestApp::start_on(&t.database_url, |c| c.secret_key = Some(SecretString::new(KEY_B))).await;
    let mail = alone.messages_to(USER_EMAIL).await;
    assert!(!mail.is_empty() && mail.iter().all(|m| !m.message.body.is_empty()), "the new key alone opens them");
}
