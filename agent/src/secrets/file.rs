//! Secrets as root-only files (Linux; see the parent module for why), and
//! systemd credentials before them.
//!
//! Layout: `DIR/NAME`, one value per file. The directory is created 0700;
//! a value is written 0600 to a temporary file beside its final name,
//! fsynced, renamed over it, and the directory fsynced, so a reader (the
//! daemon) sees the old value or the new one, never a torn one, and a
//! crash cannot lose a value that `tend secret set` reported stored. A
//! file that other users could read is refused rather than used: the
//! secret may already have leaked, and the admin should know.

use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{MAX_SECRET_BYTES, SecretError, SecretStore, check_name, check_value};

/// Secrets in files under `dir`, and read-only ones in a systemd
/// credentials directory.
#[derive(Clone, Debug)]
pub struct FileStore {
    dir: PathBuf,
    credentials: Option<PathBuf>,
}

impl FileStore {
    pub fn new(dir: PathBuf, credentials: Option<PathBuf>) -> FileStore {
        FileStore { dir, credentials }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads one value file, refusing one that other users may read or
    /// that another user (not root, not us) owns.
    fn read(name: &str, path: &Path, check_mode: bool) -> Result<String, SecretError> {
        let mut f = std::fs::File::open(path).map_err(|e| SecretError::io(path, e))?;
        let meta = f.metadata().map_err(|e| SecretError::io(path, e))?;
        let mode = meta.permissions().mode() & 0o777;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc::geteuid() };
        if check_mode && (mode & 0o077 != 0 || (meta.uid() != 0 && meta.uid() != me)) {
            return Err(SecretError::Insecure {
                path: path.to_path_buf(),
                mode,
                uid: meta.uid(),
            });
        }
        let mut bytes = Vec::new();
        f.by_ref()
            .take(MAX_SECRET_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| SecretError::io(path, e))?;
        if bytes.len() > MAX_SECRET_BYTES {
            return Err(SecretError::BadValue {
                name: name.to_string(),
                reason: format!("{} is longer than {MAX_SECRET_BYTES} bytes", path.display()),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| SecretError::BadValue {
            name: name.to_string(),
            reason: format!("{} is not UTF-8 text", path.display()),
        })?;
        // A credential file written by hand often ends with a newline.
        let value = text.trim_end_matches(['\n', '\r']).to_string();
        if value.is_empty() {
            return Err(SecretError::BadValue {
                name: name.to_string(),
                reason: format!("{} is empty", path.display()),
            });
        }
        Ok(value)
    }

    fn ensure_dir(&self) -> Result<(), SecretError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| SecretError::io(&self.dir, e))?;
        // An existing directory keeps its mode: tighten it.
        let meta = std::fs::metadata(&self.dir).map_err(|e| SecretError::io(&self.dir, e))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| SecretError::io(&self.dir, e))?;
        }
        Ok(())
    }
}

impl SecretStore for FileStore {
    fn get(&self, name: &str) -> Result<String, SecretError> {
        check_name(name)?;
        // systemd made the credentials directory for this service alone
        // (and the files read-only for it): its modes are systemd's to set.
        if let Some(creds) = &self.credentials {
            let p = creds.join(name);
            if p.exists() {
                return Self::read(name, &p, false);
            }
        }
        let p = self.path(name);
        match Self::read(name, &p, true) {
            Err(SecretError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Err(SecretError::Missing {
                    name: name.to_string(),
                    store: self.describe(),
                })
            }
            other => other,
        }
    }

    fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        check_name(name)?;
        check_value(name, value)?;
        self.ensure_dir()?;
        let p = self.path(name);
        crate::policy::store::write_atomic(&p, value.as_bytes()).map_err(|e| SecretError::io(&p, e))
    }

    fn delete(&self, name: &str) -> Result<(), SecretError> {
        check_name(name)?;
        let p = self.path(name);
        match std::fs::remove_file(&p) {
            Ok(()) => {
                if let Ok(d) = std::fs::File::open(&self.dir) {
                    let _ = d.sync_all();
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretError::Missing {
                name: name.to_string(),
                store: self.describe(),
            }),
            Err(e) => Err(SecretError::io(&p, e)),
        }
    }

    fn describe(&self) -> String {
        match &self.credentials {
            Some(c) => format!(
                "{} (systemd credentials in {} first)",
                self.dir.display(),
                c.display()
            ),
            None => self.dir.display().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn values_are_root_only_files_replaced_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state/secrets");
        let s = FileStore::new(dir.clone(), None);
        s.set("sink-token", "first").unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("sink-token")), 0o600);
        let inode = std::fs::metadata(dir.join("sink-token")).unwrap().ino();

        s.set("sink-token", "second").unwrap();
        assert_eq!(s.get("sink-token").unwrap(), "second");
        // Replaced by a rename (a new file), not rewritten in place; no
        // temporary file left behind.
        assert_ne!(
            std::fs::metadata(dir.join("sink-token")).unwrap().ino(),
            inode
        );
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["sink-token"]);

        s.delete("sink-token").unwrap();
        let e = s.get("sink-token").unwrap_err();
        assert!(matches!(e, SecretError::Missing { .. }), "{e}");
        assert!(e.to_string().contains("tend secret set sink-token"), "{e}");
        assert!(matches!(
            s.delete("sink-token"),
            Err(SecretError::Missing { .. })
        ));
    }

    #[test]
    fn a_loose_directory_is_tightened_and_a_readable_file_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("secrets");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = FileStore::new(dir.clone(), None);
        s.set("t", "v").unwrap();
        assert_eq!(mode(&dir), 0o700);

        std::fs::set_permissions(dir.join("t"), std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = s.get("t").unwrap_err();
        assert!(
            matches!(e, SecretError::Insecure { mode: 0o644, .. }),
            "{e}"
        );
    }

    #[test]
    fn systemd_credentials_come_first() {
        let tmp = tempfile::tempdir().unwrap();
        let creds = tmp.path().join("creds");
        std::fs::create_dir(&creds).unwrap();
        // systemd's credential files are 0400 or 0440; a newline from the
        // file that was loaded is not part of the value.
        std::fs::write(creds.join("slack-bot-token"), "from-systemd\n").unwrap();
        std::fs::set_permissions(
            creds.join("slack-bot-token"),
            std::fs::Permissions::from_mode(0o440),
        )
        .unwrap();
        let s = FileStore::new(tmp.path().join("secrets"), Some(creds));
        s.set("slack-bot-token", "from-file").unwrap();
        assert_eq!(s.get("slack-bot-token").unwrap(), "from-systemd");
        s.set("other", "from-file").unwrap();
        assert_eq!(s.get("other").unwrap(), "from-file");
        assert!(s.describe().contains("systemd credentials"));
    }

    #[test]
    fn bad_names_and_values_are_refused_before_touching_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let s = FileStore::new(tmp.path().join("secrets"), None);
        assert!(matches!(
            s.set("../x", "v"),
            Err(SecretError::BadName { .. })
        ));
        assert!(matches!(s.set("x", ""), Err(SecretError::BadValue { .. })));
        assert!(!tmp.path().join("secrets").exists());
    }
}
