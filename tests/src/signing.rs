//! minisign key pairs and signatures for tests, made with the `minisign`
//! crate (the reference Rust implementation; its files are the `minisign`
//! tool's).

use std::io::Cursor;

/// An unencrypted minisign key pair.
pub struct Signer {
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Default for Signer {
    fn default() -> Signer {
        Signer::new()
    }
}

impl Signer {
    pub fn new() -> Signer {
        let kp = minisign::KeyPair::generate_unencrypted_keypair().expect("a key pair");
        Signer {
            pk: kp.pk,
            sk: kp.sk,
        }
    }

    /// The public key's base64 line (`RW...`), as `trusted_keys` lists it.
    pub fn public_key(&self) -> String {
        self.pk.to_base64()
    }

    /// The whole `minisign.pub` file.
    pub fn public_key_file(&self) -> String {
        self.pk.to_box().expect("a public key box").to_string()
    }

    /// The key id as the minisign tool prints it (hex, no leading zeros).
    pub fn key_id(&self) -> String {
        let mut id = [0u8; 8];
        id.copy_from_slice(self.pk.keynum());
        format!("{:X}", u64::from_le_bytes(id))
    }

    /// A `.minisig` file for `data`, as `minisign -Sm` writes it.
    pub fn sign(&self, data: &[u8]) -> Vec<u8> {
        self.sign_with_comment(data, "timestamp:1800000000\tfile:policy.json\tprehashed")
    }

    /// A `.minisig` file whose trusted (signed) comment is `comment`, as
    /// `minisign -Sm FILE -t COMMENT` writes it.
    pub fn sign_with_comment(&self, data: &[u8], comment: &str) -> Vec<u8> {
        minisign::sign(
            Some(&self.pk),
            &self.sk,
            Cursor::new(data),
            Some(comment),
            None,
        )
        .expect("signing")
        .to_string()
        .into_bytes()
    }
}
