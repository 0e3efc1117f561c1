//! The release manifest: which version is current and where each
//! platform's archive is. Unsigned on purpose: it only points at archives,
//! whose signatures carry the version that is trusted.

use std::collections::BTreeMap;

use serde::Deserialize;

pub use semver::Version;

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: Version,
    /// Platform (`linux-x86_64`) → archive URL, absolute or relative to the manifest.
    pub archives: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses a manifest; the error names the JSON path and line.
    pub fn parse(body: &[u8]) -> Result<Manifest, String> {
        let de = &mut serde_json::Deserializer::from_slice(body);
        serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            format!(
                "not a release manifest: at {path} (line {}, column {}): {inner}",
                inner.line(),
                inner.column()
            )
        })
    }
}

/// `archive` resolved against the manifest's URL.
pub fn resolve(manifest_url: &str, archive: &str) -> Result<String, String> {
    let base = reqwest::Url::parse(manifest_url).map_err(|e| e.to_string())?;
    base.join(archive)
        .map(String::from)
        .map_err(|e| format!("archive {archive:?}: {e}"))
}
