//! Reading the release archive: a gzipped tar, from which only the one
//! expected regular file is taken, with its size bounded. Nothing is
//! unpacked to disk here: the bytes go to [`super::install`].

use std::io::Read as _;

/// The contents of the regular file `name` at the archive's top level.
pub fn extract(archive: &[u8], name: &str, limit: usize) -> Result<Vec<u8>, String> {
    let gz = flate2::read::GzDecoder::new(archive);
    let mut tar = tar::Archive::new(gz);
    let entries = tar
        .entries()
        .map_err(|e| format!("not a .tar.gz archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("not a .tar.gz archive: {e}"))?;
        let path = entry
            .path()
            .map_err(|e| format!("an entry with an unreadable name: {e}"))?
            .into_owned();
        let top = path.strip_prefix(".").unwrap_or(&path);
        if top.as_os_str() != name {
            continue;
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(format!("{name} in the archive is not a regular file"));
        }
        if entry.size() > limit as u64 {
            return Err(format!(
                "{name} is {} bytes; the limit is {limit}",
                entry.size()
            ));
        }
        let mut out = Vec::with_capacity(entry.size() as usize);
        (&mut entry)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("reading {name} from the archive: {e}"))?;
        return Ok(out);
    }
    Err(format!("the archive holds no file named {name}"))
}
