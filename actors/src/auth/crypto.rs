//! The cryptography of auth: RS256 JWTs, argon2 secret hashes, random secrets and
//! refresh tokens. Nothing here touches the replicated state.

use std::collections::BTreeMap;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use micro_core::auth::{Account, AuthError, SigningKeys};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::Digest;

/// An argon2id hash of a random secret nobody knows, checked against when a login names
/// an account that does not exist, so it takes as long as a wrong password.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$wHh0zZq0pM+Tt5r6JgY4N9s8o5Vd1Yq7lE3sXk2bC0M";

/// The RSA modulus size of a new cluster's signing key.
pub const RSA_BITS: usize = 2048;

/// Creates the cluster's key pair (a second or so: run it off the async threads).
pub fn generate_keys() -> Result<SigningKeys, AuthError> {
    let failed = |e: &dyn std::fmt::Display| AuthError::Unavailable(format!("key generation: {e}"));
    let private = rsa::PrivateKey::new(&mut getrandom::SysRng, RSA_BITS).map_err(|e| failed(&e))?;
    let private_der = private.to_pkcs1_der().map_err(|e| failed(&e))?;
    let public_der = private
        .to_public_key()
        .to_pkcs1_der()
        .map_err(|e| failed(&e))?;
    Ok(SigningKeys {
        private_der: private_der.as_bytes().to_vec(),
        public_der: public_der.as_bytes().to_vec(),
    })
}

/// The loaded key pair.
pub(crate) struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

/// The claims of an access token, as Micro v3 wrote them.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    exp: u64,
    iat: u64,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    name: String,
}

impl Keys {
    pub(crate) fn new(keys: &SigningKeys) -> Self {
        // Only RS256: a token naming `none`, HS256 or any other algorithm is refused
        // before its signature is looked at.
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = 0;
        // Expiry is judged against the node's injected clock (see `verify`), not the
        // library's system time, so simulated time rules tokens too.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_rsa_der(&keys.private_der),
            decoding: DecodingKey::from_rsa_der(&keys.public_der),
            validation,
        }
    }

    /// Signs an access token for `account`, valid from `now_secs` for `ttl_secs`.
    pub(crate) fn sign(
        &self,
        account: &Account,
        now_secs: u64,
        ttl_secs: u64,
    ) -> Result<String, AuthError> {
        let claims = Claims {
            sub: account.id.clone(),
            iss: account.issuer.clone(),
            exp: now_secs.saturating_add(ttl_secs),
            iat: now_secs,
            kind: account.kind.clone(),
            scopes: account.scopes.clone(),
            metadata: account.metadata.clone(),
            name: account.name.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Unavailable(format!("signing a token: {e}")))
    }

    /// The account a token was issued to and when the token expires (Unix seconds), if
    /// its signature holds; the caller judges the expiry.
    pub(crate) fn verify(&self, token: &str) -> Result<(Account, u64), AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| {
                let why = match e.kind() {
                    jsonwebtoken::errors::ErrorKind::ExpiredSignature => "it has expired",
                    jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                        "its algorithm is not RS256"
                    }
                    jsonwebtoken::errors::ErrorKind::InvalidSignature => "its signature is wrong",
                    _ => "it is malformed",
                };
                AuthError::Unauthorized(format!(
                    "the token is not valid ({why}): {}",
                    micro_core::auth::LOGIN_HINT
                ))
            })?;
        let claims = data.claims;
        let account = Account {
            id: claims.sub,
            kind: claims.kind,
            metadata: claims.metadata,
            scopes: claims.scopes,
            issuer: claims.iss,
            name: claims.name,
        };
        Ok((account, claims.exp))
    }
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| AuthError::Unavailable(format!("no randomness: {e}")))?;
    Ok(bytes)
}

/// A fresh random secret (128 bits, as text).
pub fn random_secret() -> Result<String, AuthError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<16>()?))
}

/// The argon2id hash (PHC string) of `secret`; slow on purpose: run it off the async
/// threads.
pub fn hash_secret(secret: &str) -> Result<String, AuthError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?)
        .map_err(|e| AuthError::Unavailable(format!("salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Unavailable(format!("hashing a secret: {e}")))
}

/// Whether `secret` matches the stored `hash`.
pub fn secret_matches(secret: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A new refresh token for account `id` of `namespace`: it names the account (so it can
/// be found without a scan) and carries 256 random bits. Only its digest is stored.
pub fn new_refresh_token(namespace: &str, id: &str) -> Result<String, AuthError> {
    Ok(format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(namespace),
        URL_SAFE_NO_PAD.encode(id),
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// The namespace and account id a refresh token names.
pub fn refresh_token_owner(token: &str) -> Option<(String, String)> {
    let mut parts = token.split('.');
    let decode = |part: Option<&str>| {
        URL_SAFE_NO_PAD
            .decode(part?)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    };
    let namespace = decode(parts.next())?;
    let id = decode(parts.next())?;
    parts.next()?;
    parts.next().is_none().then_some((namespace, id))
}

/// The digest of a refresh token, as stored.
pub fn digest(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
