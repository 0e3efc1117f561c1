//! Secrets in the system keychain (macOS) or Credential Manager (Windows),
//! through the `keyring` crate: service `Tend`, account = the secret's name
//! (on Windows a generic credential whose target is `NAME.Tend`).

use keyring::{Entry, Error};

use super::{SecretError, SecretStore, check_name, check_value};

/// The keychain service (macOS) / target suffix (Windows) of Tend's secrets.
pub const SERVICE: &str = "Tend";

/// The keychain of the account this runs as.
#[derive(Clone, Copy, Debug, Default)]
pub struct Keychain;

impl Keychain {
    pub fn new() -> Keychain {
        Keychain
    }

    fn entry(&self, name: &str) -> Result<Entry, SecretError> {
        check_name(name)?;
        Entry::new(SERVICE, name).map_err(|e| self.error(name, e))
    }

    fn error(&self, name: &str, e: Error) -> SecretError {
        match e {
            Error::NoEntry => SecretError::Missing {
                name: name.to_string(),
                store: self.describe(),
            },
            other => SecretError::Store {
                name: name.to_string(),
                store: self.describe(),
                reason: other.to_string(),
            },
        }
    }
}

impl SecretStore for Keychain {
    fn get(&self, name: &str) -> Result<String, SecretError> {
        self.entry(name)?
            .get_password()
            .map_err(|e| self.error(name, e))
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_value(name, value)?;
        self.entry(name)?
            .set_password(value)
            .map_err(|e| self.error(name, e))
    }

    fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.entry(name)?
            .delete_credential()
            .map_err(|e| self.error(name, e))
    }

    fn describe(&self) -> String {
        if cfg!(windows) {
            "Windows Credential Manager".to_string()
        } else {
            "the macOS keychain".to_string()
        }
    }
}

// Under Wine in the test command (Wine keeps credentials in its registry);
// the macOS keychain needs a login session, so macOS only type-checks this.
#[cfg(all(test, windows))]
mod tests {
    use super::*;

    #[test]
    fn credential_manager_round_trip() {
        let k = Keychain::new();
        let name = format!("tend-test-{}", std::process::id());
        k.set(&name, "first").unwrap();
        k.set(&name, "second").unwrap();
        assert_eq!(k.get(&name).unwrap(), "second");
        k.delete(&name).unwrap();
        assert!(matches!(k.get(&name), Err(SecretError::Missing { .. })));
        assert!(matches!(k.delete(&name), Err(SecretError::Missing { .. })));
    }
}
