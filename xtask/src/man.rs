//! Man pages from the CLI's own definitions (clap_mangen), so `man tend`
//! and `tend --help` never disagree: `tend.1` and one `tend-<command>.1`
//! per subcommand; and `tend-tray.1`, written by hand (`ui/tend-tray.1`:
//! the tray parses its few arguments itself). Gzipped as Debian policy
//! wants them.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use flate2::{Compression, write::GzEncoder};

/// Writes every page into `dir`.
pub fn write_all(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tend = tend::cli::Cli::command().name("tend");
    write_page(dir, "tend", tend.clone())?;
    for sub in tend.get_subcommands() {
        // clap names commands with `&'static str`; a build tool writing a
        // dozen pages can leak a dozen short strings.
        let name: &'static str = format!("tend-{}", sub.get_name()).leak();
        write_page(dir, name, sub.clone().name(name))?;
    }
    Ok(())
}

/// Writes `tend-tray.1.gz` into `dir` (apart from `tend`'s: another package).
pub fn write_tray(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let tray = crate::root().join("ui/tend-tray.1");
    let roff = std::fs::read(&tray).with_context(|| format!("cannot read {}", tray.display()))?;
    write_gz(dir, "tend-tray", &roff)
}

fn write_page(dir: &Path, name: &str, cmd: clap::Command) -> anyhow::Result<()> {
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd)
        .date("")
        .render(&mut roff)
        .with_context(|| format!("rendering {name}.1"))?;
    write_gz(dir, name, &roff)
}

fn write_gz(dir: &Path, name: &str, roff: &[u8]) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1.gz"));
    // No file name or time stamp in the gzip header: the same page gives the
    // same bytes (reproducible packages; lintian checks this).
    let file =
        std::fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(file, Compression::best());
    gz.write_all(roff)?;
    let _: std::fs::File = GzEncoder::finish(gz)?;
    Ok(())
}
