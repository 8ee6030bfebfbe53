//! Passkeys (WebAuthn): the relying party's checks, with `webauthn-rs`.
//!
//! The relying-party ID and the one allowed origin come from the configured public URL, so a
//! passkey made for Usher answers nowhere else (S47). Every passkey needs user verification
//! (a fingerprint, a face or a PIN on the device), so one counts as both factors; attestation
//! is not asked for; ES256 and RS256 keys are accepted. A sign count that goes backwards means
//! a copied authenticator and is refused (S48). Ceremony state is text for the database: a
//! challenge is kept there, used once, by whichever server the answer reaches.
//!
//! Public-key checks only: see docs/dependencies.md for why RustCrypto's `p256` and `rsa`
//! under `webauthn-rs` are acceptable beside aws-lc-rs.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential,
    RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

use usher_domain::duration::Span;
use usher_domain::evidence::AuthMethod;

/// How long a person has to answer their authenticator; the challenge dies after it.
pub const CEREMONY_LIFETIME: Span = Span::minutes(5);

/// Why a passkey's answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not an answer to this challenge, for this site, signed by this passkey.
    NotValid,
    /// The device did not verify the person (no fingerprint, face or PIN).
    NotVerified,
    /// The sign count went backwards: the authenticator may have been copied.
    Cloned,
}

impl Refusal {
    fn from_error(e: &WebauthnError) -> Self {
        match e {
            WebauthnError::UserNotVerified => Self::NotVerified,
            WebauthnError::CredentialPossibleCompromise => Self::Cloned,
            _ => Self::NotValid,
        }
    }

    /// What the person is told.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotValid => {
                "Your passkey could not be checked. Try again, or choose another way to confirm it is you"
            }
            Self::NotVerified => {
                "Your device did not check it is you. Use a passkey that asks for your fingerprint, face or PIN"
            }
            Self::Cloned => {
                "This passkey cannot be used: it may have been copied. Use another way to confirm it is you, and \
                 remove this passkey from your security page"
            }
        }
    }
}

/// A passkey as registered or updated: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The credential ID, base64url without padding (unique across the deployment).
    pub credential_id: String,
    /// The whole credential as `webauthn-rs` keeps it (public key, count, flags), as JSON.
    pub credential: String,
    pub sign_count: u32,
    /// The authenticator may copy it between the person's devices (a synced passkey).
    pub backup_eligible: bool,
    pub backed_up: bool,
}

impl PasskeyRecord {
    /// What a session records when this passkey is used: a synced passkey is a software-held
    /// key (`swk`), one bound to its device a hardware key (`hwk`).
    pub fn proves(&self) -> AuthMethod {
        if self.backup_eligible { AuthMethod::SyncedPasskey } else { AuthMethod::Passkey }
    }

    fn of(passkey: &Passkey) -> Result<Self, Refusal> {
        // webauthn-rs keeps the count and flags private: they are read from its stored form.
        let value = serde_json::to_value(passkey).map_err(|_| Refusal::NotValid)?;
        let cred = &value["cred"];
        let flag = |name: &str| cred[name].as_bool().unwrap_or(false);
        Ok(Self {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            sign_count: cred["counter"].as_u64().and_then(|c| u32::try_from(c).ok()).unwrap_or(0),
            backup_eligible: flag("backup_eligible"),
            backed_up: flag("backup_state"),
            credential: value.to_string(),
        })
    }

    fn passkey(&self) -> Result<Passkey, Refusal> {
        serde_json::from_str(&self.credential).map_err(|_| Refusal::NotValid)
    }
}

/// A challenge to send to the browser, and the state to keep until its answer comes.
#[derive(Debug, Clone)]
pub struct Ceremony {
    /// The `publicKey` options for `navigator.credentials.create()` or `.get()`, as JSON.
    pub options: Value,
    /// The state to keep (server side only) for checking the answer.
    pub state: String,
}

fn state_text<T: serde::Serialize>(state: &T) -> Result<String, String> {
    serde_json::to_string(state).map_err(|e| e.to_string())
}

fn options_json<T: serde::Serialize>(options: &T) -> Result<Value, String> {
    serde_json::to_value(options).map_err(|e| e.to_string())
}

/// Usher as a WebAuthn relying party.
#[derive(Debug)]
pub struct RelyingParty {
    webauthn: Webauthn,
}

impl RelyingParty {
    /// The relying party of the public URL: its host is the RP ID and its origin the one
    /// origin allowed. A URL WebAuthn cannot serve (an IP address, say) is refused with why.
    pub fn for_public_url(public_url: &str, name: &str) -> Result<Self, String> {
        let url = Url::parse(public_url).map_err(|e| format!("the public URL cannot be read: {e}"))?;
        let host = url.host_str().ok_or("the public URL has no host")?.to_owned();
        let webauthn = WebauthnBuilder::new(&host, &url)
            .and_then(|b| {
                b.rp_name(name).timeout(std::time::Duration::from_secs(CEREMONY_LIFETIME.seconds() as u64)).build()
            })
            .map_err(|e| format!("passkeys cannot work at {public_url}: {e}"))?;
        Ok(Self { webauthn })
    }

    /// A registration for the person with `handle` (their WebAuthn user ID), never again for
    /// a passkey they have. It asks for a discoverable credential, so the passkey can later
    /// sign them in without their email address.
    pub fn begin_registration(
        &self,
        handle: Uuid,
        email: &str,
        display_name: &str,
        existing: &[PasskeyRecord],
    ) -> Result<Ceremony, String> {
        let exclude = existing.iter().filter_map(|p| p.passkey().ok()).map(|p| p.cred_id().clone()).collect();
        let (options, state) = self
            .webauthn
            .start_passkey_registration(handle, email, display_name, Some(exclude))
            .map_err(|e| e.to_string())?;
        let mut options = options_json(&options)?;
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = Value::from("required");
        selection["requireResidentKey"] = Value::from(true);
        Ok(Ceremony { options: options["publicKey"].take(), state: state_text(&state)? })
    }

    /// Checks the browser's answer to a registration.
    pub fn finish_registration(&self, state: &str, answer: &str) -> Result<PasskeyRecord, Refusal> {
        let state: PasskeyRegistration = serde_json::from_str(state).map_err(|_| Refusal::NotValid)?;
        let answer: RegisterPublicKeyCredential = serde_json::from_str(answer).map_err(|_| Refusal::NotValid)?;
        let passkey =
            self.webauthn.finish_passkey_registration(&answer, &state).map_err(|e| Refusal::from_error(&e))?;
        PasskeyRecord::of(&passkey)
    }

    /// A challenge for one of the person's own passkeys (the second step of signing in).
    pub fn begin_authentication(&self, passkeys: &[PasskeyRecord]) -> Result<Ceremony, String> {
        let passkeys: Vec<Passkey> = passkeys.iter().filter_map(|p| p.passkey().ok()).collect();
        let (options, state) = self.webauthn.start_passkey_authentication(&passkeys).map_err(|e| e.to_string())?;
        Ok(Ceremony { options: options_json(&options)?["publicKey"].take(), state: state_text(&state)? })
    }

    /// A challenge for any passkey the browser holds for Usher (signing in with a passkey).
    pub fn begin_discoverable(&self) -> Result<Ceremony, String> {
        let (options, state) = self.webauthn.start_discoverable_authentication().map_err(|e| e.to_string())?;
        Ok(Ceremony { options: options_json(&options)?["publicKey"].take(), state: state_text(&state)? })
    }

    /// The person's handle and the credential ID an answer to a discoverable challenge names,
    /// to find the passkey it claims to be.
    pub fn identify(&self, answer: &str) -> Result<(Uuid, String), Refusal> {
        let answer: PublicKeyCredential = serde_json::from_str(answer).map_err(|_| Refusal::NotValid)?;
        let (handle, id) =
            self.webauthn.identify_discoverable_authentication(&answer).map_err(|_| Refusal::NotValid)?;
        Ok((handle, URL_SAFE_NO_PAD.encode(id)))
    }

    /// Checks an answer made by `passkey` to a challenge of [`Self::begin_authentication`]
    /// (`discoverable` false) or [`Self::begin_discoverable`]; the passkey as it is now (its
    /// count and flags moved on).
    pub fn finish_authentication(
        &self,
        state: &str,
        discoverable: bool,
        answer: &str,
        passkey: &PasskeyRecord,
    ) -> Result<PasskeyRecord, Refusal> {
        let answer: PublicKeyCredential = serde_json::from_str(answer).map_err(|_| Refusal::NotValid)?;
        if URL_SAFE_NO_PAD.encode(answer.get_credential_id()) != passkey.credential_id {
            return Err(Refusal::NotValid);
        }
        let mut stored = passkey.passkey()?;
        let result = if discoverable {
            let state: DiscoverableAuthentication = serde_json::from_str(state).map_err(|_| Refusal::NotValid)?;
            self.webauthn.finish_discoverable_authentication_v2(&answer, state, &stored)
        } else {
            let state: PasskeyAuthentication = serde_json::from_str(state).map_err(|_| Refusal::NotValid)?;
            self.webauthn.finish_passkey_authentication(&answer, &state)
        }
        .map_err(|e| Refusal::from_error(&e))?;
        if !result.user_verified() {
            return Err(Refusal::NotVerified);
        }
        // The state holds the passkey as it was when the challenge was made; the count is
        // judged against the passkey as stored now, so two challenges open at once cannot
        // let one count be used twice.
        if (result.counter() > 0 || passkey.sign_count > 0) && result.counter() <= passkey.sign_count {
            return Err(Refusal::Cloned);
        }
        if stored.update_credential(&result).is_none() {
            return Err(Refusal::NotValid);
        }
        PasskeyRecord::of(&stored)
    }
}
