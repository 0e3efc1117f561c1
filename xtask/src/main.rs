//! Tend's build tasks, run as `cargo xtask ...` (an alias in `.cargo/config.toml`).
//!
//! `cargo xtask dist deb|rpm|msi|pkg|tar` builds the release binaries for the
//! package's platform and the packages from the definitions in `installers/`,
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
    /// Build a package (release binaries included) into the dist directory.
    /// `deb` and `rpm` make two: `tend` (the agent) and `tend-tray` (the
    /// tray app, which needs a desktop and WebKitGTK).
    Dist {
        #[arg(value_enum)]
        kind: Kind,
        /// Where packages go (default: <target dir>/dist).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Package this already-built `tend` instead of building one
        /// (`pkg`: the universal macOS `tend`; others: for quick re-packaging).
        #[arg(long, value_name = "FILE")]
        binary: Option<PathBuf>,
    },
    /// Write the man pages (`tend.1`, `tend-<command>.1`, `tend-tray.1`,
    /// gzipped) into DIR.
    Man { dir: PathBuf },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// Debian/Ubuntu package (cargo-deb), checked with lintian.
    Deb,
    /// RPM package (cargo-generate-rpm).
    Rpm,
    /// Windows installer (wixl, from the mingw-built tend.exe and tend-tray.exe).
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

/// Builds the release `packages` for `target` (None: this host) and
/// returns the directory their binaries are in.
fn build_release(target: Option<&str>, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "--locked"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    run(&mut cmd)?;
    let mut dir = target_dir();
    if let Some(t) = target {
        dir.push(t);
    }
    Ok(dir.join("release"))
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Task::Man { dir } => {
            man::write_all(&dir)?;
            man::write_tray(&dir)
        }
        Task::Dist { kind, out, binary } => {
            let out = out.unwrap_or_else(|| target_dir().join("dist"));
            std::fs::create_dir_all(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            let out = out.canonicalize()?;
            let paths = match kind {
                Kind::Deb => deb(&out, binary)?,
                Kind::Rpm => rpm(&out, binary)?,
                Kind::Msi => vec![msi(&out, binary)?],
                Kind::Pkg => vec![pkg(&out, binary)?],
                Kind::Tar => vec![tar(&out, binary)?],
            };
            for path in paths {
                let size = std::fs::metadata(&path)?.len();
                println!("{} ({} bytes)", path.display(), size);
            }
            Ok(())
        }
    }
}

/// The release binaries (`tend`, `tend-tray`, `tend-tray-window`) and the
/// man pages where
/// cargo-deb and cargo-generate-rpm expect them (`target/release/`, as the
/// crates' package metadata lists).
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
            build_release(None, &["tend-tray"])?;
        }
        None => {
            build_release(None, &["tend", "tend-tray"])?;
        }
    }
    man::write_all(&release.join("man"))?;
    man::write_tray(&release.join("man-tray"))
}

/// Fails unless `tend-tray`'s dependencies (`found`, one per line or comma)
/// include `want`: `tend` of the same version, so the two always speak the
/// same local API.
fn check_tray_pins_tend(found: &str, want: &str) -> anyhow::Result<()> {
    if !found.split([',', '\n']).any(|d| d.trim() == want) {
        bail!(
            "tend-tray's dependencies lack {want:?} (they are {found:?}): update the versions in ui/Cargo.toml's package metadata"
        );
    }
    Ok(())
}

fn deb(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    linux_assets(binary)?;
    let mut paths = Vec::new();
    for package in ["tend", "tend-tray"] {
        let path = out.join(format!("{package}_{VERSION}-1_amd64.deb"));
        run(cargo()
            .args([
                "deb",
                "--locked",
                "--no-build",
                "--no-strip",
                "-p",
                package,
                "--output",
            ])
            .arg(&path))?;
        // No errors allowed; the warnings left are explained in installers/README.md.
        run(Command::new("lintian")
            .args(["--fail-on", "error", "--suppress-tags-from-file"])
            .arg(root().join("installers/debian/lintian-suppressed"))
            .arg(&path))?;
        paths.push(path);
    }
    let depends = output(
        Command::new("dpkg-deb")
            .arg("--field")
            .arg(&paths[1])
            .arg("Depends"),
    )?;
    check_tray_pins_tend(&depends, &format!("tend (= {VERSION}-1)"))?;
    Ok(paths)
}

fn rpm(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    linux_assets(binary)?;
    let mut paths = Vec::new();
    for (package, dir) in [("tend", "agent"), ("tend-tray", "ui")] {
        let path = out.join(format!("{package}-{VERSION}-1.x86_64.rpm"));
        run(cargo()
            .args(["generate-rpm", "-p", dir, "--target-dir"])
            .arg(target_dir())
            .arg("--output")
            .arg(&path))?;
        paths.push(path);
    }
    let requires = output(Command::new("rpm").arg("-qpR").arg(&paths[1]))?;
    check_tray_pins_tend(&requires, &format!("tend = {VERSION}"))?;
    Ok(paths)
}

/// Runs a command and returns what it printed.
fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let shown = format!("{cmd:?}");
    let o = cmd
        .current_dir(root())
        .output()
        .with_context(|| format!("cannot start {shown}"))?;
    if !o.status.success() {
        bail!(
            "{shown} failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn msi(out: &Path, binary: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    const WINDOWS: &str = "x86_64-pc-windows-gnu";
    let (exe, release) = match binary {
        Some(b) => (b, build_release(Some(WINDOWS), &["tend-tray"])?),
        None => {
            let release = build_release(Some(WINDOWS), &["tend", "tend-tray"])?;
            (release.join("tend.exe"), release)
        }
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
        (release.join("tend-tray.exe"), "tend-tray.exe"),
        (release.join("tend-tray-window.exe"), "tend-tray-window.exe"),
        // Copied beside the exe by webview2-com-sys's build script.
        (release.join("WebView2Loader.dll"), "WebView2Loader.dll"),
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
    let (binary, release) = match binary {
        Some(b) => (b, build_release(None, &["tend-tray"])?),
        None => {
            let release = build_release(None, &["tend", "tend-tray"])?;
            (release.join("tend"), release)
        }
    };
    let path = out.join(format!("tend-{VERSION}.pkg"));
    run(Command::new(&script)
        .arg("--binary")
        .arg(&binary)
        .arg("--tray")
        .arg(release.join("tend-tray"))
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
        None => build_release(None, &["tend"])?.join("tend"),
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
