//! The keys that sign ID and access tokens, and the secret behind pairwise subjects. Both are
//! made at the first start and sealed under the secret key. Rotation (`usher keys
//! rotate-signing`) lets the next key, published since the last rotation, sign from now,
//! keeps the old one published until every token it signed has expired, and publishes a new
//! next key.

use jsonwebtoken::jwk::{Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde::de::DeserializeOwned;
use usher_domain::duration::Span;
use usher_domain::oidc::SigningAlg;
use usher_domain::oidc::client::Lifetimes;
use usher_domain::secret::random_bytes;
use usher_domain::{Error, ErrorCode, Timestamp};
use usher_store::Tx;
use usher_store::oidc::SigningKeyRecord;

use crate::{App, RequestContext, store_error};

/// How long relying parties may cache the key set (`Cache-Control: max-age`).
pub const JWKS_MAX_AGE: Span = Span::hours(1);

/// The name of the pairwise subject secret among the provider's sealed secrets.
const SUBJECT_SECRET: &str = "pairwise-subject";

fn bound_to(kid: &str) -> String {
    format!("oidc-signing-key:{kid}")
}

fn algorithm(alg: SigningAlg) -> Algorithm {
    match alg {
        SigningAlg::Es256 => Algorithm::ES256,
        SigningAlg::Rs256 => Algorithm::RS256,
        SigningAlg::Ps256 => Algorithm::PS256,
    }
}

/// A new key pair for `alg`, with its public JWK (its `kid` is the RFC 7638 thumbprint).
fn generate(alg: SigningAlg) -> Result<(Vec<u8>, Jwk), Error> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pkcs8 = match alg {
        SigningAlg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(Error::internal)?;
            pair.to_pkcs8v1().map_err(Error::internal)?.as_ref().to_vec()
        }
        SigningAlg::Rs256 | SigningAlg::Ps256 => {
            return Err(Error::internal("RSA signing keys are not made yet"));
        }
    };
    let mut jwk = Jwk::from_encoding_key(&EncodingKey::from_ec_der(&pkcs8), algorithm(alg)).map_err(Error::internal)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(Error::internal)?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok((pkcs8, jwk))
}

/// Refuses to start unless exactly one crypto provider signs JWTs (aws-lc-rs, by the crate's
/// features): a build that also enabled another, or none, would fail at the first token.
pub fn check_crypto_provider() -> Result<(), Error> {
    if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
        return Err(Error::internal("no single crypto provider for JWTs: build jsonwebtoken with aws_lc_rs only"));
    }
    Ok(())
}

impl App {
    fn new_signing_key(
        &self,
        alg: SigningAlg,
        signs_from: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<SigningKeyRecord, Error> {
        let (pkcs8, jwk) = generate(alg)?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        Ok(SigningKeyRecord {
            private_key: self.secret_key.seal(&pkcs8, &bound_to(&kid)).map_err(Error::internal)?,
            public_jwk: serde_json::to_string(&jwk).map_err(Error::internal)?,
            kid,
            alg,
            created_at: now,
            signs_from,
            retired_at: None,
            unpublish_at: None,
        })
    }

    /// Makes what the provider needs and does not have yet: for each algorithm in use, a key
    /// that signs and a next key; the pairwise subject secret. Safe on many nodes at once.
    pub async fn prepare_provider(&self, now: Timestamp) -> Result<(), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock("oidc-keys").await.map_err(store_error)?;
        for alg in super::clients::SIGNING_ALGS {
            let keys = tx.signing_keys(Some(alg), now).await.map_err(store_error)?;
            if !keys.iter().any(|k| k.signs_from.is_some() && k.retired_at.is_none()) {
                tx.insert_signing_key(&self.new_signing_key(alg, Some(now), now)?).await.map_err(store_error)?;
            }
            if !keys.iter().any(|k| k.signs_from.is_none()) {
                tx.insert_signing_key(&self.new_signing_key(alg, None, now)?).await.map_err(store_error)?;
            }
        }
        if tx.oidc_secret(SUBJECT_SECRET).await.map_err(store_error)?.is_none() {
            let sealed = self.secret_key.seal(&random_bytes::<32>(), SUBJECT_SECRET).map_err(Error::internal)?;
            tx.insert_oidc_secret(SUBJECT_SECRET, &sealed, now).await.map_err(store_error)?;
        }
        tx.commit().await.map_err(store_error)
    }

    /// Lets the next key sign from now. Refused while the next key has been published for less
    /// than the key set's cache lifetime (clients may not have it yet), unless `force`.
    /// Returns the new signing key's ID.
    pub async fn rotate_signing_key(
        &self,
        alg: SigningAlg,
        force: bool,
        ctx: &RequestContext,
        now: Timestamp,
    ) -> Result<String, Error> {
        self.prepare_provider(now).await?;
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock("oidc-keys").await.map_err(store_error)?;
        let keys = tx.signing_keys(Some(alg), now).await.map_err(store_error)?;
        let active = tx.active_signing_key(alg).await.map_err(store_error)?;
        let next = keys.iter().filter(|k| k.signs_from.is_none()).max_by_key(|k| k.created_at);
        let (Some(active), Some(next)) = (active, next) else {
            return Err(Error::internal("the provider has no signing key to rotate"));
        };
        let published = now.seconds_since(next.created_at);
        if !force && published < JWKS_MAX_AGE.seconds() {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "The next key has been published for {published} seconds only; clients cache the key set for {} \
                     seconds and may not have it yet. Try again later, or use --force.",
                    JWKS_MAX_AGE.seconds()
                ),
            ));
        }
        // Every token the old key signed has expired by then, and every cached key set too.
        let unpublish_at = now.plus(Lifetimes::ID_MAX.max(Lifetimes::ACCESS_MAX)).plus(JWKS_MAX_AGE);
        if !tx.promote_signing_key(&active.kid, &next.kid, unpublish_at, now).await.map_err(store_error)? {
            return Err(Error::new(ErrorCode::Conflict, "Another server rotated the key at the same moment."));
        }
        tx.insert_signing_key(&self.new_signing_key(alg, None, now)?).await.map_err(store_error)?;
        let mut event = ctx.event("oidc.signing_key_rotated", "success");
        event.detail = Some(format!("{}: {} signs now; {} retired", alg.as_str(), next.kid, active.kid));
        tx.append_audit(&event, now).await.map_err(store_error)?;
        tx.commit().await.map_err(store_error)?;
        Ok(next.kid.clone())
    }

    /// The published keys (JWK Set members): the signing ones, the next ones and retired ones
    /// still needed to check tokens that have not expired.
    pub async fn published_keys(&self, now: Timestamp) -> Result<Vec<serde_json::Value>, Error> {
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let keys = tx.signing_keys(None, now).await.map_err(store_error)?;
        keys.iter().map(|k| serde_json::from_str(&k.public_jwk).map_err(Error::internal)).collect()
    }

    /// Signs `claims` as a JWT of type `typ` with the key of `alg` that signs now.
    pub(crate) async fn sign<T: Serialize>(
        &self,
        tx: &mut Tx,
        alg: SigningAlg,
        typ: &str,
        claims: &T,
    ) -> Result<String, Error> {
        let key = tx
            .active_signing_key(alg)
            .await
            .map_err(store_error)?
            .ok_or_else(|| Error::internal("no signing key: the provider was not prepared"))?;
        let pkcs8 = self.secret_key.open(&key.private_key, &bound_to(&key.kid)).map_err(Error::internal)?;
        let mut header = Header::new(algorithm(alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_owned());
        let encoding = match alg {
            SigningAlg::Es256 => EncodingKey::from_ec_der(&pkcs8),
            SigningAlg::Rs256 | SigningAlg::Ps256 => EncodingKey::from_rsa_der(&pkcs8),
        };
        jsonwebtoken::encode(&header, claims, &encoding).map_err(Error::internal)
    }

    /// The claims of a JWT that one of our published keys signed, if it did; `None` for
    /// anything else (a bad signature, an unknown `kid`, `alg=none`, an algorithm other than
    /// the key's). Expiry and audience are for the caller, against `now`.
    pub(crate) async fn verify_own<T: DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        now: Timestamp,
    ) -> Result<Option<T>, Error> {
        let Ok(header) = jsonwebtoken::decode_header(token) else { return Ok(None) };
        if header.typ.as_deref() != Some(typ) {
            return Ok(None);
        }
        let Some(kid) = header.kid else { return Ok(None) };
        let mut tx = self.store.begin_read().await.map_err(store_error)?;
        let keys = tx.signing_keys(None, now).await.map_err(store_error)?;
        let Some(key) = keys.into_iter().find(|k| k.kid == kid) else { return Ok(None) };
        let Ok(jwk) = serde_json::from_str::<Jwk>(&key.public_jwk) else { return Ok(None) };
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else { return Ok(None) };
        let mut validation = jsonwebtoken::Validation::new(algorithm(key.alg));
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.set_issuer(&[self.issuer()]);
        Ok(jsonwebtoken::decode::<T>(token, &decoding, &validation).ok().map(|d| d.claims))
    }

    /// The pairwise subject secret.
    pub(crate) async fn subject_secret(&self, tx: &mut Tx) -> Result<[u8; 32], Error> {
        let sealed = tx
            .oidc_secret(SUBJECT_SECRET)
            .await
            .map_err(store_error)?
            .ok_or_else(|| Error::internal("no subject secret: the provider was not prepared"))?;
        let plain = self.secret_key.open(&sealed, SUBJECT_SECRET).map_err(Error::internal)?;
        plain.try_into().map_err(|_| Error::internal("the subject secret is not 32 bytes"))
    }

    /// Seals the signing keys and the subject secret under the current key, after a rotation of
    /// the secret key. Returns how many were sealed again and how many could not be opened.
    pub async fn reseal_provider_secrets(&self) -> Result<(u64, u64), Error> {
        let (mut resealed, mut unopenable) = (0, 0);
        let mut tx = self.store.begin().await.map_err(store_error)?;
        for key in tx.all_signing_keys().await.map_err(store_error)? {
            if !self.secret_key.is_stale(&key.private_key) {
                continue;
            }
            match self.secret_key.open(&key.private_key, &bound_to(&key.kid)) {
                Ok(plain) => {
                    let new = self.secret_key.seal(&plain, &bound_to(&key.kid)).map_err(Error::internal)?;
                    if tx.reseal_signing_key(&key.kid, &key.private_key, &new).await.map_err(store_error)? {
                        resealed += 1;
                    }
                }
                Err(_) => unopenable += 1,
            }
        }
        for (name, sealed) in tx.all_oidc_secrets().await.map_err(store_error)? {
            if !self.secret_key.is_stale(&sealed) {
                continue;
            }
            match self.secret_key.open(&sealed, &name) {
                Ok(plain) => {
                    let new = self.secret_key.seal(&plain, &name).map_err(Error::internal)?;
                    if tx.reseal_oidc_secret(&name, &sealed, &new).await.map_err(store_error)? {
                        resealed += 1;
                    }
                }
                Err(_) => unopenable += 1,
            }
        }
        tx.commit().await.map_err(store_error)?;
        Ok((resealed, unopenable))
    }

    /// The one issuer: the configured public web address, never a request's Host header.
    pub fn issuer(&self) -> String {
        self.config.base_url().to_owned()
    }
}
