//! The self-update archive: a gzipped tar holding one file, `tend`, with
//! fixed owner, mode and time so the same binary gives the same archive.

use std::path::Path;

use anyhow::Context as _;
use flate2::{Compression, write::GzEncoder};

pub fn write(binary: &Path, out: &Path) -> anyhow::Result<()> {
    let data =
        std::fs::read(binary).with_context(|| format!("cannot read {}", binary.display()))?;
    let file = std::fs::File::create(out)?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::best()));
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o755);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, tend::update::ARCHIVE_ENTRY, data.as_slice())?;
    tar.into_inner()?.finish()?.sync_all()?;
    Ok(())
}
