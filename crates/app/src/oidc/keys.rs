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

/// The size of the RSA keys made for RS256 and PS256.
const RSA_KEY_SIZE: aws_lc_rs::rsa::KeySize = aws_lc_rs::rsa::KeySize::Rsa2048;

/// One DER element at the start of `input`: its tag, its contents and what follows it.
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo` (RFC 5208: a SEQUENCE of the
/// version, the algorithm and an OCTET STRING holding the key), which is what jsonwebtoken's
/// aws-lc-rs signer reads.
fn pkcs1_of(pkcs8: &[u8]) -> Option<Vec<u8>> {
    const SEQUENCE: u8 = 0x30;
    let (SEQUENCE, info, _) = der_element(pkcs8)? else { return None };
    let (0x02, _, rest) = der_element(info)? else { return None };
    let (SEQUENCE, _, rest) = der_element(rest)? else { return None };
    let (0x04, key, _) = der_element(rest)? else { return None };
    Some(key.to_vec())
}

/// The private key in the form `sign` hands to jsonwebtoken: PKCS#8 for ES256, PKCS#1 for RSA.
fn encoding_key(alg: SigningAlg, der: &[u8]) -> EncodingKey {
    match alg {
        SigningAlg::Es256 => EncodingKey::from_ec_der(der),
        SigningAlg::Rs256 | SigningAlg::Ps256 => EncodingKey::from_rsa_der(der),
    }
}

/// A new key pair for `alg`, with its public JWK (its `kid` is the RFC 7638 thumbprint).
fn generate(alg: SigningAlg) -> Result<(Vec<u8>, Jwk), Error> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let der = match alg {
        SigningAlg::Es256 => {
            let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(Error::internal)?;
            pair.to_pkcs8v1().map_err(Error::internal)?.as_ref().to_vec()
        }
        SigningAlg::Rs256 | SigningAlg::Ps256 => {
            let pair = aws_lc_rs::rsa::KeyPair::generate(RSA_KEY_SIZE).map_err(Error::internal)?;
            let pkcs8 = pair.as_der().map_err(Error::internal)?;
            pkcs1_of(pkcs8.as_ref()).ok_or_else(|| Error::internal("a new RSA key did not read as PKCS#8"))?
        }
    };
    let mut jwk = Jwk::from_encoding_key(&encoding_key(alg, &der), algorithm(alg)).map_err(Error::internal)?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).map_err(Error::internal)?;
    jwk.common.key_id = Some(kid);
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Ok((der, jwk))
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
        let (der, jwk) = generate(alg)?;
        let kid = jwk.common.key_id.clone().unwrap_or_default();
        Ok(SigningKeyRecord {
            private_key: self.secret_key.seal(&der, &bound_to(&kid)).map_err(Error::internal)?,
            public_jwk: serde_json::to_string(&jwk).map_err(Error::internal)?,
            kid,
            alg,
            created_at: now,
            signs_from,
            retired_at: None,
            unpublish_at: None,
        })
    }

    /// Makes, for `alg`, a key that signs and a next key, where they are missing. In the
    /// caller's transaction, under the provider's lock, so two servers make one of each.
    pub(crate) async fn ensure_signing_keys(&self, tx: &mut Tx, alg: SigningAlg, now: Timestamp) -> Result<(), Error> {
        tx.lock("oidc-keys").await.map_err(store_error)?;
        let keys = tx.signing_keys(Some(alg), now).await.map_err(store_error)?;
        if !keys.iter().any(|k| k.signs_from.is_some() && k.retired_at.is_none()) {
            tx.insert_signing_key(&self.new_signing_key(alg, Some(now), now)?).await.map_err(store_error)?;
        }
        if !keys.iter().any(|k| k.signs_from.is_none()) {
            tx.insert_signing_key(&self.new_signing_key(alg, None, now)?).await.map_err(store_error)?;
        }
        Ok(())
    }

    /// Makes what the provider needs and does not have yet: for ES256 and each other algorithm
    /// a registered client uses, a key that signs and a next key (RSA keys only once a client
    /// asks for RS256 or PS256); the pairwise subject secret. Safe on many nodes at once.
    pub async fn prepare_provider(&self, now: Timestamp) -> Result<(), Error> {
        let mut tx = self.store.begin().await.map_err(store_error)?;
        tx.lock("oidc-keys").await.map_err(store_error)?;
        let mut algs = vec![SigningAlg::Es256];
        for client in tx.clients().await.map_err(store_error)? {
            if !algs.contains(&client.id_token_alg) {
                algs.push(client.id_token_alg);
            }
        }
        for alg in algs {
            self.ensure_signing_keys(&mut tx, alg, now).await?;
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
            return Err(Error::new(
                ErrorCode::Conflict,
                format!(
                    "There is no {0} key to rotate: one is made when a client that uses {0} is registered.",
                    alg.as_str()
                ),
            ));
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
        let der = self.secret_key.open(&key.private_key, &bound_to(&key.kid)).map_err(Error::internal)?;
        let mut header = Header::new(algorithm(alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &encoding_key(alg, &der)).map_err(Error::internal)
    }

    /// The claims of a JWT that one of our published keys signed, if it did; `None` for
    /// anything else (a bad signature, an unknown `kid`, `alg=none`, an algorithm other than
    /// the key's). Expiry and audience are for the caller, against `now`.
    /// In the caller's transaction: a second connection per request could starve the pool.
    pub(crate) async fn verify_own<T: DeserializeOwned>(
        &self,
        tx: &mut Tx,
        token: &str,
        typ: &str,
        now: Timestamp,
    ) -> Result<Option<T>, Error> {
        let Ok(header) = jsonwebtoken::decode_header(token) else { return Ok(None) };
        if header.typ.as_deref() != Some(typ) {
            return Ok(None);
        }
        let Some(kid) = header.kid else { return Ok(None) };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_makes_a_key_that_signs_and_its_published_half_verifies() {
        for alg in [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::Ps256] {
            let (der, jwk) = generate(alg).unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
            let mut header = Header::new(algorithm(alg));
            header.kid = jwk.common.key_id.clone();
            let claims = serde_json::json!({ "sub": "s", "iss": "i" });
            let token = jsonwebtoken::encode(&header, &claims, &encoding_key(alg, &der)).expect("signed");
            let decoding = DecodingKey::from_jwk(&jwk).expect("a public JWK");
            let mut validation = jsonwebtoken::Validation::new(algorithm(alg));
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).is_ok(), "{alg:?}");
            let text = serde_json::to_value(&jwk).expect("json");
            assert!(text.get("d").is_none() && text.get("p").is_none(), "no private part is published");
        }
    }

    #[test]
    fn der_lengths_and_bad_input() {
        assert_eq!(der_element(&[0x04, 0x02, 0xaa, 0xbb, 0xcc]), Some((0x04, &[0xaa, 0xbb][..], &[0xcc][..])));
        assert_eq!(der_element(&[0x04, 0x81, 0x01, 0xaa]), Some((0x04, &[0xaa][..], &[][..])));
        assert_eq!(der_element(&[0x04, 0x05, 0xaa]), None, "shorter than it says");
        assert_eq!(der_element(&[0x04, 0x80]), None, "indefinite length is not DER");
        assert_eq!(pkcs1_of(&[0x30, 0x00]), None);
        assert_eq!(pkcs1_of(b""), None);
    }
}
