//! minisign signatures over the policy.
//!
//! Admins sign with the stock `minisign` tool (`minisign -Sm policy.json`
//! writes `policy.json.minisig`); the agent verifies with the
//! `minisign-verify` crate against the trusted public keys of its config.
//! A signature names the key that made it (its key id), so a policy signed
//! by a key the agent does not trust is reported as such, with both ids,
//! rather than as a bad signature. Both the prehashed signatures of current
//! minisign and the legacy ones of old versions are accepted; the trusted
//! comment is covered by the signature and reported.

use std::fmt;

use base64::Engine as _;
use minisign_verify::{PublicKey, Signature};

/// The largest signature file accepted, in bytes (a real one is about 300).
pub const MAX_SIGNATURE_BYTES: usize = 4096;

/// A minisign key id, printed as the `minisign` tool prints it in a
/// `minisign.pub` comment: upper-case hex of the little-endian number,
/// without leading zeros (`%PRIX64`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}", u64::from_le_bytes(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// Why a key or a signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("{key:?} is not a minisign public key: {reason}")]
    InvalidKey { key: String, reason: String },
    #[error("no trusted public key is configured (set `trusted_keys`)")]
    NoTrustedKeys,
    #[error("the signature file is {size} bytes; the limit is {MAX_SIGNATURE_BYTES}")]
    TooLarge { size: usize },
    #[error("the signature file is not a minisign signature: {reason}")]
    Malformed { reason: String },
    #[error("signed by key {key_id}, which is not trusted (trusted: {})", list(.trusted))]
    UnknownKey { key_id: KeyId, trusted: Vec<KeyId> },
    #[error("the signature by key {key_id} does not match the policy (modified after signing?)")]
    BadSignature { key_id: KeyId },
}

fn list(ids: &[KeyId]) -> String {
    if ids.is_empty() {
        return "none".into();
    }
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A public key the agent trusts.
#[derive(Clone, Debug)]
pub struct TrustedKey {
    key: PublicKey,
    pub id: KeyId,
}

impl TrustedKey {
    /// Reads a key written as minisign writes it: the base64 line
    /// (`RWQ...`), or the whole `minisign.pub` file with its comment line.
    pub fn parse(text: &str) -> Result<TrustedKey, SignatureError> {
        let trimmed = text.trim();
        let line = trimmed
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with("untrusted comment:"))
            .unwrap_or("");
        let invalid = |reason: &str| SignatureError::InvalidKey {
            key: abbreviate(trimmed),
            reason: reason.to_string(),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|_| invalid("not base64"))?;
        if bytes.len() != 42 {
            return Err(invalid("a key is 42 bytes"));
        }
        let key = PublicKey::from_base64(line).map_err(|e| invalid(&e.to_string()))?;
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[2..10]);
        Ok(TrustedKey { key, id: KeyId(id) })
    }

    /// Parses every key, naming the first one that is not a key.
    pub fn parse_all<S: AsRef<str>>(texts: &[S]) -> Result<Vec<TrustedKey>, SignatureError> {
        texts
            .iter()
            .map(|t| TrustedKey::parse(t.as_ref()))
            .collect()
    }
}

fn abbreviate(s: &str) -> String {
    let first = s.lines().last().unwrap_or("");
    if first.chars().count() > 60 {
        format!("{}…", first.chars().take(60).collect::<String>())
    } else {
        first.to_string()
    }
}

/// What a good signature says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub key_id: KeyId,
    /// The signed comment (`timestamp:... file:policy.json` by default).
    pub trusted_comment: String,
}

/// The key id a signature file names, without verifying anything.
pub fn signature_key_id(sig: &[u8]) -> Result<KeyId, SignatureError> {
    let malformed = |reason: &str| SignatureError::Malformed {
        reason: reason.to_string(),
    };
    let text = std::str::from_utf8(sig).map_err(|_| malformed("not UTF-8 text"))?;
    let line = text
        .lines()
        .nth(1)
        .ok_or_else(|| malformed("it has fewer than four lines"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .map_err(|_| malformed("the signature line is not base64"))?;
    if bytes.len() != 74 {
        return Err(malformed("the signature line is not 74 bytes"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[2..10]);
    Ok(KeyId(id))
}

/// Verifies `sig` (the text of a `.minisig` file) over `data` with the
/// trusted key it names.
pub fn verify(data: &[u8], sig: &[u8], keys: &[TrustedKey]) -> Result<Verified, SignatureError> {
    if keys.is_empty() {
        return Err(SignatureError::NoTrustedKeys);
    }
    if sig.len() > MAX_SIGNATURE_BYTES {
        return Err(SignatureError::TooLarge { size: sig.len() });
    }
    let key_id = signature_key_id(sig)?;
    let text = std::str::from_utf8(sig).map_err(|_| SignatureError::Malformed {
        reason: "not UTF-8 text".into(),
    })?;
    let signature = Signature::decode(text).map_err(|e| SignatureError::Malformed {
        reason: e.to_string(),
    })?;
    let Some(key) = keys.iter().find(|k| k.id == key_id) else {
        return Err(SignatureError::UnknownKey {
            key_id,
            trusted: keys.iter().map(|k| k.id).collect(),
        });
    };
    key.key
        .verify(data, &signature, true)
        .map_err(|_| SignatureError::BadSignature { key_id })?;
    Ok(Verified {
        key_id,
        trusted_comment: signature.trusted_comment().to_string(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh key pair, its public key as minisign writes it, and a signer.
    pub(crate) struct TestKey {
        pub pk: minisign::PublicKey,
        sk: minisign::SecretKey,
    }

    impl TestKey {
        pub(crate) fn new() -> TestKey {
            let kp = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
            TestKey {
                pk: kp.pk,
                sk: kp.sk,
            }
        }

        pub(crate) fn public(&self) -> String {
            self.pk.to_base64()
        }

        pub(crate) fn trusted(&self) -> TrustedKey {
            TrustedKey::parse(&self.public()).unwrap()
        }

        pub(crate) fn sign(&self, data: &[u8]) -> Vec<u8> {
            minisign::sign(
                Some(&self.pk),
                &self.sk,
                std::io::Cursor::new(data),
                Some("timestamp:1 file:policy.json"),
                None,
            )
            .unwrap()
            .to_string()
            .into_bytes()
        }
    }

    #[test]
    fn key_ids_print_as_minisign_does() {
        let k = TestKey::new();
        let boxed = k.pk.to_box().unwrap().to_string();
        // "untrusted comment: minisign public key: 0123456789ABCDEF\nRW...\n"
        // (the minisign tool writes the same number without leading zeros).
        let shown = boxed.lines().next().unwrap().rsplit(' ').next().unwrap();
        assert_eq!(
            u64::from_str_radix(&k.trusted().id.to_string(), 16).unwrap(),
            u64::from_str_radix(shown, 16).unwrap()
        );
        assert_eq!(KeyId([0x0a, 0, 0, 0, 0, 0, 0, 0]).to_string(), "A");
        assert_eq!(
            KeyId([0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x81]).to_string(),
            "8123456789ABCDEF"
        );
        // The whole .pub file is accepted too.
        assert_eq!(TrustedKey::parse(&boxed).unwrap().id, k.trusted().id);
    }

    #[test]
    fn good_signature_verifies() {
        let k = TestKey::new();
        let sig = k.sign(b"{}");
        let v = verify(b"{}", &sig, &[k.trusted()]).unwrap();
        assert_eq!(v.key_id, k.trusted().id);
        assert_eq!(v.trusted_comment, "timestamp:1 file:policy.json");
    }

    #[test]
    fn refusals_say_why() {
        let (a, b) = (TestKey::new(), TestKey::new());
        let sig = a.sign(b"policy");
        assert_eq!(
            verify(b"policy!", &sig, &[a.trusted()]),
            Err(SignatureError::BadSignature {
                key_id: a.trusted().id
            })
        );
        let e = verify(b"policy", &sig, &[b.trusted()]).unwrap_err();
        assert!(matches!(e, SignatureError::UnknownKey { .. }), "{e}");
        assert!(e.to_string().contains(&a.trusted().id.to_string()), "{e}");
        assert!(e.to_string().contains(&b.trusted().id.to_string()), "{e}");
        assert!(matches!(
            verify(b"policy", b"garbage", &[a.trusted()]),
            Err(SignatureError::Malformed { .. })
        ));
        assert_eq!(
            verify(b"policy", &sig, &[]),
            Err(SignatureError::NoTrustedKeys)
        );
        // A tampered trusted comment breaks the global signature.
        let text = String::from_utf8(sig)
            .unwrap()
            .replace("timestamp:1", "timestamp:2");
        assert!(matches!(
            verify(b"policy", text.as_bytes(), &[a.trusted()]),
            Err(SignatureError::BadSignature { .. })
        ));
    }

    #[test]
    fn bad_keys_are_named() {
        let e = TrustedKey::parse("RWQnotakey").unwrap_err().to_string();
        assert!(e.contains("RWQnotakey"), "{e}");
        assert!(TrustedKey::parse("").is_err());
    }
}
