//! Tend's build tasks, run as `cargo xtask ...` (an alias in `.cargo/config.toml`).
//!
//! `cargo xtask dist deb|rpm|msi|pkg|tar` builds the release binary for the
//! package's platform and the package from the definitions in `installers/`,
//! into `--out` (default `<target dir>/dist`, outside the source tree when
//! `CARGO_TARGET_DIR` is). The packaging tools are the ordinary ones
//! (cargo-deb, cargo-generate-rpm, Debian's `wixl`, Apple's
//! `pkgbuild`/`productbuild`); this program only runs them in order with the
//! right inputs, so each step can be repeated by hand.

mod archive;
mod man;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Build a package (release binary included) into the dist directory.
    Dist {
        #[arg(value_enum)]
        kind: Kind,
        /// Where packages go (default: <target dir>/dist).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Package this already-built binary instead of building one
        /// (`pkg`: the universal macOS `tend`; others: for quick re-packaging).
        #[arg(long, value_name = "FILE")]
        binary: Option<PathBuf>,
    },
    /// Write the man pages (`tend.1`, `tend-<command>.1`, gzipped) into DIR.
    Man { dir: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Debian/Ubuntu package (cargo-deb), checked with lintian.
    Deb,
    /// RPM package (cargo-generate-rpm).
    Rpm,
    /// Windows installer (wixl, from the mingw-built tend.exe).
    Msi,
    /// macOS installer (pkgbuild/productbuild; on a Mac only).
    Pkg,
    /// The self-update archive `tend-VERSION-PLATFORM.tar.gz` (sign it with minisign).
    Tar,
}

/// The workspace root (xtask's parent directory).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` or `<root>/target`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs a command in the workspace root, failing with its command line.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    eprintln!("xtask: {shown}");
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {shown} (is it installed? scripts/deps.sh test)"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Builds the release `tend` for `target` (None: this host) and returns its path.
fn build_release(target: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked", "-p", "tend"]);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    run(&mut cmd)?;
    let mut dir = target_dir();
    if let Some(t) = target {
        dir.push(t);
    }
    let exe = if target.is_some_and(|t| t.contains("windows")) {
        "tend.exe"
    } else {
        "tend"
    };
    Ok(dir.join("release").join(exe))
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Man { dir } => man::write_all(&dir),
        Task::Dist { kind, out, binary } => {
            let out = out.unwrap_or_else(|| target_dir().join("dist"));
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let out = out.canonicalize()?;
            let path = match kind {
                Kind::Deb => deb(&out, binary)?,
                Kind::Rpm => rpm(&out, binary)?,
                Kind::Msi => msi(&out, binary)?,
                Kind::Pkg => pkg(&out, binary)?,
                Kind::Tar => tar(&out, binary)?,
            };
            let size = std::fs::metadata(&path)?.len();
            println!("{} ({} bytes)", path.display(), size);
            Ok(())
        }
    }
}

/// The release binary and the man pages where cargo-deb and
/// cargo-generate-rpm expect them (`target/release/`, as agent/Cargo.toml lists).
fn linux_assets(binary: Option<PathBuf>) -> anyhow::Result<()> {
    let release = target_dir().join("release");
    match binary {
        Some(b) => {
            std::fs::create_dir_all(&release)?;
            let to = release.join("tend");
            if b.canonicalize()? != to.canonicalize().unwrap_or_default() {
                std::fs::copy(&b, &to)
                    .with_context(|| format!("cannot copy {} to {}", b.display(), to.display()))?;
            }
        }
        None => {
            build_release(None)?;
        }
    }
    man::write_all(&release.join("man"))
}

fn deb(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    linux_assets(binary)?;
    let path = out.join(format!("tend_{VERSION}-1_amd64.deb"));
    run(cargo()
        .args([
            "deb",
            "--locked",
            "--no-build",
            "--no-strip",
            "-p",
            "tend",
            "--output",
        ])
        .arg(&path))?;
    // No errors allowed; the warnings left are explained in installers/README.md.
    run(Command::new("lintian")
        .args(["--fail-on", "error", "--suppress-tags-from-file"])
        .arg(root().join("installers/debian/lintian-suppressed"))
        .arg(&path))?;
    Ok(path)
}

fn rpm(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    linux_assets(binary)?;
    let path = out.join(format!("tend-{VERSION}-1.x86_64.rpm"));
    run(cargo()
        .args(["generate-rpm", "-p", "agent", "--target-dir"])
        .arg(target_dir())
        .arg("--output")
        .arg(&path))?;
    Ok(path)
}

fn msi(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let exe = match binary {
        Some(b) => b,
        None => build_release(Some("x86_64-pc-windows-gnu"))?,
    };
    if exe.file_name() != Some("tend.exe".as_ref()) {
        bail!("{}: the MSI packages a file named tend.exe", exe.display());
    }
    // wixl resolves `Source` relative to the .wxs: stage everything together.
    let stage = target_dir().join("msi-stage");
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)?;
    let windows = root().join("installers/windows");
    for (from, name) in [
        (exe.clone(), "tend.exe"),
        (windows.join("tend.wxs"), "tend.wxs"),
        (windows.join("packaged-by"), "packaged-by"),
    ] {
        std::fs::copy(&from, stage.join(name))
            .with_context(|| format!("cannot copy {} to {}", from.display(), stage.display()))?;
    }
    let path = out.join(format!("tend-{VERSION}-x64.msi"));
    run(Command::new("wixl")
        .args(["--arch", "x64", "-D"])
        .arg(format!("Version={VERSION}"))
        .arg("-o")
        .arg(&path)
        .arg(stage.join("tend.wxs")))?;
    Ok(path)
}

fn pkg(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let script = root().join("installers/macos/build-pkg.sh");
    if !cfg!(target_os = "macos") {
        bail!(
            "a .pkg is built on a Mac (pkgbuild and productbuild are Apple's): run `cargo xtask dist pkg` there, or {} directly; here `{} --stage DIR` lays out the payload for inspection",
            script.display(),
            script.display()
        );
    }
    let binary = match binary {
        Some(b) => b,
        None => build_release(None)?,
    };
    let path = out.join(format!("tend-{VERSION}.pkg"));
    run(Command::new(&script)
        .arg("--binary")
        .arg(&binary)
        .arg("--version")
        .arg(VERSION)
        .arg("--out")
        .arg(&path))?;
    Ok(path)
}

/// `tend-VERSION-PLATFORM.tar.gz` holding `tend`: what `tend update` installs.
fn tar(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let binary = match binary {
        Some(b) => b,
        None => build_release(None)?,
    };
    let platform = tend::update::platform();
    let path = out.join(format!("tend-{VERSION}-{platform}.tar.gz"));
    archive::write(&binary, &path).with_context(|| format!("writing {}", path.display()))?;
    eprintln!(
        "xtask: sign it for `tend update`: minisign -S -m {} -t \"tend {VERSION} {platform}\"",
        path.display()
    );
    Ok(path)
}
