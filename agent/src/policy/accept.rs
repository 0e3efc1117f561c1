//! Whether a policy document may replace the one in force.
//!
//! In this order, stopping at the first failure: the size cap; the minisign
//! signature against any trusted key (a missing signature is refused unless
//! the config allows unsigned policies); the document itself (UTF-8, JSON,
//! the schema, with the JSON path, line and column of the first problem);
//! then anti-rollback: the `serial` must be at least the last accepted one
//! (equal means unchanged). The signature comes first so nothing of an
//! unsigned document is parsed. Pure: no I/O, so the fuzz target
//! (`fuzz/fuzz_targets/policy_parse_verify.rs`) runs exactly this.

use super::signature::{self, SignatureError, TrustedKey};
use super::{MAX_POLICY_BYTES, Policy, PolicyError};

/// Whom to trust.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    pub keys: Vec<TrustedKey>,
    /// Accept a document with no signature at all (never one with a bad signature).
    pub allow_unsigned: bool,
}

/// A policy that passed every check.
#[derive(Clone, Debug)]
pub struct Accepted {
    pub policy: Policy,
    /// `None` only for an unsigned policy the config allowed.
    pub signer: Option<signature::Verified>,
}

/// Why a policy was refused. Every variant names the document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{source_name}: the policy is {size} bytes; the limit is {MAX_POLICY_BYTES}")]
    TooLarge { source_name: String, size: usize },
    #[error(
        "{source_name}: the policy has no signature (sign it with `minisign -Sm policy.json` and publish policy.json.minisig beside it)"
    )]
    MissingSignature { source_name: String },
    #[error("{source_name}: {error}")]
    Signature {
        source_name: String,
        error: SignatureError,
    },
    #[error("{source_name}: the policy is not UTF-8 text")]
    NotUtf8 { source_name: String },
    #[error(transparent)]
    Invalid(#[from] PolicyError),
    #[error(
        "{source_name}: serial {serial} is older than the accepted serial {accepted}; refusing to roll back"
    )]
    OlderSerial {
        source_name: String,
        serial: u64,
        accepted: u64,
    },
}

/// Checks a candidate policy: see the module documentation. `floor` is the
/// last accepted serial, if any.
pub fn accept(
    text: &[u8],
    sig: Option<&[u8]>,
    trust: &Trust,
    floor: Option<u64>,
    source_name: &str,
) -> Result<Accepted, Refusal> {
    if text.len() > MAX_POLICY_BYTES {
        return Err(Refusal::TooLarge {
            source_name: source_name.into(),
            size: text.len(),
        });
    }
    let signer =
        match sig {
            Some(sig) => Some(signature::verify(text, sig, &trust.keys).map_err(|error| {
                Refusal::Signature {
                    source_name: source_name.into(),
                    error,
                }
            })?),
            None if trust.allow_unsigned => None,
            None => {
                return Err(Refusal::MissingSignature {
                    source_name: source_name.into(),
                });
            }
        };
    let text = std::str::from_utf8(text).map_err(|_| Refusal::NotUtf8 {
        source_name: source_name.into(),
    })?;
    let policy = Policy::parse(text, source_name)?;
    if let Some(accepted) = floor
        && policy.serial < accepted
    {
        return Err(Refusal::OlderSerial {
            source_name: source_name.into(),
            serial: policy.serial,
            accepted,
        });
    }
    Ok(Accepted { policy, signer })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::signature::tests::TestKey;

    fn doc(serial: u64) -> Vec<u8> {
        format!(
            "{{\"version\": 1, \"serial\": {serial}, \"checks\": [\n  {{\"id\": \"a\", \"name\": \"A\", \"severity\": \"low\", \"query\": {{\"linux\": \"SELECT 1\"}}}}]}}"
        )
        .into_bytes()
    }

    #[test]
    fn a_signed_valid_newer_policy_is_accepted() {
        let k = TestKey::new();
        let trust = Trust {
            keys: vec![k.trusted()],
            allow_unsigned: false,
        };
        let d = doc(7);
        let a = accept(&d, Some(&k.sign(&d)), &trust, Some(6), "p").unwrap();
        assert_eq!(a.policy.serial, 7);
        assert_eq!(a.signer.unwrap().key_id, k.trusted().id);
        // Equal is accepted (unchanged); lower is a rollback.
        assert!(accept(&d, Some(&k.sign(&d)), &trust, Some(7), "p").is_ok());
        let e = accept(&d, Some(&k.sign(&d)), &trust, Some(8), "p").unwrap_err();
        assert_eq!(
            e,
            Refusal::OlderSerial {
                source_name: "p".into(),
                serial: 7,
                accepted: 8
            }
        );
    }

    #[test]
    fn the_signature_is_checked_before_the_document() {
        let k = TestKey::new();
        let trust = Trust {
            keys: vec![k.trusted()],
            allow_unsigned: false,
        };
        // Not JSON and not signed: refused for the signature, never parsed.
        let e = accept(b"{", None, &trust, None, "p").unwrap_err();
        assert!(matches!(e, Refusal::MissingSignature { .. }), "{e}");
        let e = accept(b"{", Some(&k.sign(b"}")), &trust, None, "p").unwrap_err();
        assert!(matches!(e, Refusal::Signature { .. }), "{e}");
        // Signed but not a policy: the path and line of the problem.
        let bad = b"{\"version\": 1, \"serial\": 1,\n \"checks\": [{\"id\": \"a\", \"name\": \"A\", \"severity\": \"urgent\", \"query\": {}}]}";
        let e = accept(bad, Some(&k.sign(bad)), &trust, None, "p")
            .unwrap_err()
            .to_string();
        assert!(e.contains("p:2:"), "{e}");
        assert!(e.contains("$.checks[0].severity"), "{e}");
        let e = accept(b"\xff", Some(&k.sign(b"\xff")), &trust, None, "p").unwrap_err();
        assert!(matches!(e, Refusal::NotUtf8 { .. }), "{e}");
    }

    #[test]
    fn unsigned_only_when_allowed_and_never_badly_signed() {
        let k = TestKey::new();
        let trust = Trust {
            keys: vec![],
            allow_unsigned: true,
        };
        let d = doc(1);
        assert!(
            accept(&d, None, &trust, None, "p")
                .unwrap()
                .signer
                .is_none()
        );
        // A signature that is present must still be good.
        assert!(accept(&d, Some(&k.sign(&d)), &trust, None, "p").is_err());
    }
}
