//! The relying party's passkey checks against 1Password's software authenticator (an
//! implementation of WebAuthn and CTAP2 that is not ours): registration and assertion verified,
//! a replayed answer, a sign count going backwards (a copied authenticator), another
//! relying-party ID or origin, and a device that does not verify the person (S47, S48).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::types::Passkey;
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use serde_json::{Value, json};
use usher_app::factors::passkey::{PasskeyRecord, Refusal, RelyingParty};
use webauthn_rs::prelude::Uuid;

const ORIGIN: &str = "https://usher.example.org";
const LOOK_ALIKE: &str = "https://usher.example.org.evil.example";

/// A person at their device: present, and verified (or not) by it.
struct Person {
    verified: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        _verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck { presence, verification: self.verified })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(self.verified)
    }
}

type Device = Client<Option<Passkey>, Person, public_suffix::PublicSuffixList, ()>;

fn device(store: Option<Passkey>, verified: bool) -> Device {
    let mut authenticator = Authenticator::new(Aaguid::new_empty(), store, Person { verified });
    authenticator.set_make_credentials_with_signature_counter(true);
    Client::new(authenticator)
}

fn relying_party(url: &str) -> RelyingParty {
    RelyingParty::for_public_url(url, "Usher").expect("a relying party")
}

/// `navigator.credentials.create()` on `device` at `origin`: the answer as the browser posts it.
async fn create(device: &mut Device, origin: &str, options: &Value) -> Result<String, String> {
    let request: CredentialCreationOptions =
        serde_json::from_value(json!({ "publicKey": options })).map_err(|e| e.to_string())?;
    let origin = url::Url::parse(origin).unwrap();
    let made = device.register(&origin, request, DefaultClientData).await.map_err(|e| format!("{e:?}"))?;
    Ok(serde_json::to_string(&made).unwrap())
}

/// `navigator.credentials.get()` on `device` at `origin`.
async fn get(device: &mut Device, origin: &str, options: &Value) -> Result<String, String> {
    let request: CredentialRequestOptions =
        serde_json::from_value(json!({ "publicKey": options })).map_err(|e| e.to_string())?;
    let origin = url::Url::parse(origin).unwrap();
    let answer = device.authenticate(&origin, request, DefaultClientData).await.map_err(|e| format!("{e:?}"))?;
    Ok(serde_json::to_string(&answer).unwrap())
}

/// A passkey registered at `origin` on a new device, verified by `rp`.
async fn registered(rp: &RelyingParty, origin: &str) -> (Device, PasskeyRecord, Uuid) {
    let handle = Uuid::new_v4();
    let ceremony = rp.begin_registration(handle, "ada@example.org", "Ada Lovelace", &[]).unwrap();
    let mut device = device(None, true);
    let answer = create(&mut device, origin, &ceremony.options).await.unwrap();
    let record = rp.finish_registration(&ceremony.state, &answer).expect("registration verified");
    (device, record, handle)
}

#[tokio::test]
async fn registration_asks_for_a_discoverable_verified_passkey_for_our_host() {
    let rp = relying_party(ORIGIN);
    let ceremony = rp.begin_registration(Uuid::new_v4(), "ada@example.org", "Ada Lovelace", &[]).unwrap();
    let options = &ceremony.options;
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required", "{options}");
    assert_eq!(options["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(options["rp"]["id"], "usher.example.org", "the RP ID is the public URL's host");
    assert_eq!(options["attestation"], "none", "attestation is not asked for");
    let algorithms: Vec<i64> =
        options["pubKeyCredParams"].as_array().unwrap().iter().map(|p| p["alg"].as_i64().unwrap()).collect();
    assert!(algorithms.contains(&-7) && algorithms.contains(&-257), "ES256 and RS256: {algorithms:?}");

    // A passkey the person already has is excluded from the next registration.
    let (_, record, _) = registered(&rp, ORIGIN).await;
    let again = rp.begin_registration(Uuid::new_v4(), "ada@example.org", "Ada", std::slice::from_ref(&record)).unwrap();
    assert_eq!(again.options["excludeCredentials"][0]["id"], record.credential_id.as_str());
}

#[tokio::test]
async fn a_registered_passkey_signs_in_and_its_count_moves_on() {
    let rp = relying_party(ORIGIN);
    let (mut device, record, handle) = registered(&rp, ORIGIN).await;
    assert!(!record.credential_id.is_empty());
    assert!(record.backup_eligible, "1Password's authenticator says its passkeys may be synced");
    assert_eq!(record.proves(), usher_domain::evidence::AuthMethod::SyncedPasskey, "amr swk");

    // As a second factor: a challenge for the person's own passkeys.
    let ceremony = rp.begin_authentication(std::slice::from_ref(&record)).unwrap();
    let answer = get(&mut device, ORIGIN, &ceremony.options).await.unwrap();
    let after = rp.finish_authentication(&ceremony.state, false, &answer, &record).expect("assertion verified");
    assert!(after.sign_count > record.sign_count, "{} after {}", after.sign_count, record.sign_count);

    // The same answer again (a replay, were the challenge not used up in the store): the
    // count has not moved on, so it is refused as a copy.
    assert_eq!(rp.finish_authentication(&ceremony.state, false, &answer, &after), Err(Refusal::Cloned));

    // Signing in with the passkey alone: a discoverable challenge, the person found by the
    // handle the authenticator gives back.
    let ceremony = rp.begin_discoverable().unwrap();
    let answer = get(&mut device, ORIGIN, &ceremony.options).await.unwrap();
    let (found, credential_id) = rp.identify(&answer).unwrap();
    assert_eq!((found, credential_id.as_str()), (handle, after.credential_id.as_str()));
    let later = rp.finish_authentication(&ceremony.state, true, &answer, &after).expect("discoverable assertion");
    assert!(later.sign_count > after.sign_count);
}

#[tokio::test]
async fn an_answer_to_another_challenge_or_from_another_passkey_is_refused() {
    let rp = relying_party(ORIGIN);
    let (mut device, record, _) = registered(&rp, ORIGIN).await;
    let first = rp.begin_authentication(std::slice::from_ref(&record)).unwrap();
    let second = rp.begin_authentication(std::slice::from_ref(&record)).unwrap();
    let answer = get(&mut device, ORIGIN, &first.options).await.unwrap();
    assert_eq!(rp.finish_authentication(&second.state, false, &answer, &record), Err(Refusal::NotValid));
    let (_, other, _) = registered(&rp, ORIGIN).await;
    assert_eq!(rp.finish_authentication(&first.state, false, &answer, &other), Err(Refusal::NotValid));
    assert_eq!(
        rp.finish_authentication(&first.state, false, "{\"not\": \"an answer\"}", &record),
        Err(Refusal::NotValid)
    );
}

#[tokio::test]
async fn a_copied_authenticator_whose_count_goes_backwards_is_refused() {
    let rp = relying_party(ORIGIN);
    let (mut device, mut record, _) = registered(&rp, ORIGIN).await;
    let copy_of_the_key = device.authenticator().store().clone();
    for _ in 0..2 {
        let ceremony = rp.begin_authentication(std::slice::from_ref(&record)).unwrap();
        let answer = get(&mut device, ORIGIN, &ceremony.options).await.unwrap();
        record = rp.finish_authentication(&ceremony.state, false, &answer, &record).unwrap();
    }
    let mut copy = self::device(copy_of_the_key, true);
    let ceremony = rp.begin_authentication(std::slice::from_ref(&record)).unwrap();
    let answer = get(&mut copy, ORIGIN, &ceremony.options).await.unwrap();
    assert_eq!(rp.finish_authentication(&ceremony.state, false, &answer, &record), Err(Refusal::Cloned));
}

#[tokio::test]
async fn a_passkey_made_at_a_look_alike_site_is_refused() {
    let ours = relying_party(ORIGIN);
    // Our registration challenge relayed to a look-alike site, answered there: refused.
    let ceremony = ours.begin_registration(Uuid::new_v4(), "ada@example.org", "Ada", &[]).unwrap();
    let mut options = ceremony.options.clone();
    options["rp"]["id"] = json!("usher.example.org.evil.example");
    let mut device = device(None, true);
    let answer = create(&mut device, LOOK_ALIKE, &options).await.unwrap();
    assert_eq!(ours.finish_registration(&ceremony.state, &answer), Err(Refusal::NotValid));

    // Our sign-in challenge relayed to the look-alike site, answered there by a passkey the
    // person made there: refused too.
    let theirs = relying_party(LOOK_ALIKE);
    let (mut device, record, _) = registered(&theirs, LOOK_ALIKE).await;
    let ceremony = ours.begin_authentication(std::slice::from_ref(&record)).unwrap();
    let mut options = ceremony.options.clone();
    options["rpId"] = json!("usher.example.org.evil.example");
    let answer = get(&mut device, LOOK_ALIKE, &options).await.unwrap();
    assert_eq!(ours.finish_authentication(&ceremony.state, false, &answer, &record), Err(Refusal::NotValid));
}

#[tokio::test]
async fn a_device_that_does_not_verify_the_person_is_refused() {
    let rp = relying_party(ORIGIN);
    let (device, record, _) = registered(&rp, ORIGIN).await;
    let mut unverified = self::device(device.authenticator().store().clone(), false);
    let ceremony = rp.begin_discoverable().unwrap();
    assert_eq!(ceremony.options["userVerification"], "required");
    // A client that follows the request refuses to answer without verification...
    assert!(get(&mut unverified, ORIGIN, &ceremony.options).await.is_err());
    // ...and one that ignores it (asks without verification) gets its answer refused by us.
    let mut lax = ceremony.options.clone();
    lax["userVerification"] = json!("discouraged");
    let answer = get(&mut unverified, ORIGIN, &lax).await.expect("an answer without verification");
    assert_eq!(rp.finish_authentication(&ceremony.state, true, &answer, &record), Err(Refusal::NotVerified));
}

#[test]
fn a_public_url_passkeys_cannot_use_is_refused_with_why() {
    assert!(RelyingParty::for_public_url("not a url", "Usher").is_err());
    assert!(RelyingParty::for_public_url("http://localhost:8080", "Usher").is_ok(), "browsers allow localhost");
}
