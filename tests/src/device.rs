//! A device for the tests that run `tend run`: a temporary directory with a
//! copy of the compliant Linux laptop's recording (`machine/`), which the
//! test changes as a user would, and room for the test's own files (its
//! policy, config, socket, logs).

use std::path::{Path, PathBuf};

use crate::daemon::copy_tree;
use crate::fixture;

pub struct Device {
    dir: tempfile::TempDir,
}

impl Device {
    /// A fresh copy of `machines/linux-compliant`.
    pub fn linux_compliant() -> Device {
        let dir = tempfile::tempdir().expect("a temporary directory");
        copy_tree(
            &fixture("machines/linux-compliant"),
            &dir.path().join("machine"),
        );
        Device { dir }
    }

    /// The device's directory.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `rel` inside the device's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The recording, for `tend run --snapshot`.
    pub fn machine(&self) -> PathBuf {
        self.path("machine")
    }

    /// The recording's ufw.conf.
    pub fn ufw(&self) -> PathBuf {
        self.path("machine/root/etc/ufw/ufw.conf")
    }

    /// Writes ufw.conf with ENABLED=yes or no, replacing it by a rename as
    /// editors and `ufw` do.
    pub fn set_firewall(&self, on: bool) {
        let text = format!(
            "# /etc/ufw/ufw.conf\n#\nENABLED={}\nLOGLEVEL=low\n",
            if on { "yes" } else { "no" }
        );
        let tmp = self.path("machine/root/etc/ufw/.ufw.conf.new");
        std::fs::write(&tmp, text).expect("writing ufw.conf");
        std::fs::rename(&tmp, self.ufw()).expect("replacing ufw.conf");
    }
}
