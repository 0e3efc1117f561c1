//! What the fuzz target `policy_parse_verify` runs (`fuzz/` at the
//! repository root), kept here so a stable test replays the committed corpus
//! through exactly the same code.
//!
//! An input is a policy document, optionally followed by [`SEPARATOR`] and a
//! `.minisig` file. The seeds are signed with the key [`FUZZ_PUBLIC_KEY`]
//! (its secret key was thrown away), so the fuzzer starts from documents
//! that pass the signature and reaches the parser and the serial rule.

use super::Policy;
use super::accept::{Trust, accept};
use super::signature::{TrustedKey, signature_key_id, verify};

/// The public key the corpus's seeds were signed with.
pub const FUZZ_PUBLIC_KEY: &str = "RWTcOQyj3IYGD9yrU/TlGZ7MqjEXBmTLVmk+URSjVcFt9FRPNDrgJveL";
/// Between the policy and its signature in a fuzz input.
pub const SEPARATOR: &[u8] = b"\n--- minisig ---\n";
/// The serial the fuzzed documents must not go below.
const FLOOR: u64 = 2;

/// Splits an input into the policy and the signature, if any.
pub fn split(data: &[u8]) -> (&[u8], Option<&[u8]>) {
    match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(i) => (&data[..i], Some(&data[i + SEPARATOR.len()..])),
        None => (data, None),
    }
}

/// Runs one input through the parser, the signature check and the whole
/// acceptance rule, and checks what must always hold. Panics on a violation.
pub fn policy_parse_verify(data: &[u8]) {
    // The parser alone, on any text.
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(p) = Policy::parse(text, "fuzz")
    {
        assert!(p.structural_problems().is_empty());
    }
    let (policy, sig) = split(data);
    let key = match TrustedKey::parse(FUZZ_PUBLIC_KEY) {
        Ok(k) => k,
        Err(e) => panic!("the fuzz key does not parse: {e}"),
    };
    let trust = Trust {
        keys: vec![key.clone()],
        allow_unsigned: false,
    };
    match accept(policy, sig, &trust, Some(FLOOR), "fuzz") {
        Ok(a) => {
            // Accepted means: signed by the trusted key, a valid policy, no rollback.
            let signer = a.signer.as_ref().map(|s| s.key_id);
            assert_eq!(signer, Some(key.id));
            assert!(a.policy.serial >= FLOOR);
            assert!(a.policy.structural_problems().is_empty());
            assert!(sig.is_some_and(|s| verify(policy, s, std::slice::from_ref(&key)).is_ok()));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    if let Some(sig) = sig {
        let _ = signature_key_id(sig);
        let _ = TrustedKey::parse(&String::from_utf8_lossy(sig));
    } else if let Ok(a) = accept(
        policy,
        None,
        &Trust {
            keys: Vec::new(),
            allow_unsigned: true,
        },
        None,
        "fuzz",
    ) {
        assert!(a.signer.is_none());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/policy_parse_verify")
    }

    /// Every input the fuzzer kept (seeds and what it found) still runs clean.
    #[test]
    fn corpus_regression() {
        let dir = corpus_dir();
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| policy_parse_verify(&data));
            assert!(result.is_ok(), "{} fails", path.display());
            n += 1;
        }
        assert!(n >= 8, "only {n} corpus files in {}", dir.display());
    }

    #[test]
    fn the_valid_seed_is_accepted() {
        let data = std::fs::read(corpus_dir().join("valid-serial-3")).unwrap();
        let (policy, sig) = split(&data);
        let trust = Trust {
            keys: vec![TrustedKey::parse(FUZZ_PUBLIC_KEY).unwrap()],
            allow_unsigned: false,
        };
        let a = accept(policy, sig, &trust, Some(FLOOR), "seed").unwrap();
        assert_eq!(a.policy.serial, 3);
    }
}
