//! `tend update check|apply`: self-update from the configured release
//! manifest (see [`crate::update`]), and the service's own schedule
//! ([`run_schedule`], [`start_trial`]) that `tend run` starts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::update::install::{self, Start};
use crate::update::{self, Applied, Check, UpdateSettings, Updater};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Ask the release manifest (`update_url`) whether a newer version
    /// exists, and show the last update's outcome. Exit 0 either way.
    Check,
    /// Download the newer version, verify its signature (`update_keys`),
    /// and install it over this binary, keeping the old one as
    /// `tend.previous`. Restart the service afterwards; a new version that
    /// does not report healthy after its restart is rolled back.
    /// Package-managed installs (.deb, .rpm, .msi, .pkg) refuse: update
    /// them with the package manager.
    Apply,
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn this_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot tell where this binary is")
}

pub fn run(command: Command, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(config)?;
    let settings = UpdateSettings::from_config(&loaded.config);
    let exe = this_exe()?;
    let managed = update::managed_by(&exe);
    match command {
        Command::Check => {
            println!("tend {} ({})", crate::VERSION, update::platform());
            if let Some(how) = &managed {
                println!("managed by a package manager: {how}");
            }
            if let Some(o) = install::last_outcome(&settings.state_dir) {
                println!("last update: {} → {}: {}", o.from, o.to, o.result);
            }
            if let Some(p) = install::pending(&settings.state_dir) {
                println!("on trial: {} (restart the service to run it)", p.to);
            }
            let updater = Updater::new(&settings)?;
            match runtime()?.block_on(updater.check())? {
                Check::UpToDate { latest, .. } => println!("up to date (the latest is {latest})"),
                Check::Available {
                    latest,
                    archive_url,
                    ..
                } => {
                    println!("{latest} is available: {archive_url}");
                    if managed.is_none() {
                        println!("install it with `tend update apply`");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply => {
            // Before the settings: a package-managed install is refused
            // whatever its config says about updates.
            if let Some(how) = managed {
                return Err(update::UpdateError::Managed { how }.into());
            }
            let updater = Updater::new(&settings)?;
            match runtime()?.block_on(updater.apply(&exe, &settings.state_dir))? {
                Applied::UpToDate { current } => println!("tend {current} is up to date"),
                Applied::Installed(i) => {
                    println!(
                        "installed tend {} over {} at {} (the previous binary is {})",
                        i.to,
                        i.from,
                        i.exe.display(),
                        i.previous.display()
                    );
                    println!(
                        "restart the service to run it (systemctl restart tend; launchctl kickstart -k system/com.tend.agent)"
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What `tend run` does about updates at its start: the trial of a new
/// version or a rollback (`Err` carries the binary to restart into).
pub fn start_trial(settings: &UpdateSettings) -> Result<Option<install::Pending>, PathBuf> {
    match install::on_start(&settings.state_dir, &update::current_version()) {
        Ok(Start::Normal) => Ok(None),
        Ok(Start::Trial(p)) => {
            tracing::info!("running {} on trial (updated from {})", p.to, p.from);
            Ok(Some(p))
        }
        Ok(Start::RolledBack(p)) => Err(p.exe),
        Err(e) => {
            tracing::error!("update trial: {e}");
            Ok(None)
        }
    }
}

/// How long a new version has to report healthy before it is rolled back.
pub const HEALTH_DEADLINE: Duration = Duration::from_secs(120);

/// Why the service loop was asked to end and what to run next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restart {
    /// Start this binary in place of the running one.
    Into(PathBuf),
}

/// The service's update duties, run beside the daemon: confirm a trial once
/// the local API reports this version healthy (or roll back), then check
/// for updates every `update_interval` unless `auto_update` is off, the
/// install is package-managed or nothing is configured. Returns when the
/// service should restart.
pub async fn run_schedule(
    settings: UpdateSettings,
    exe: PathBuf,
    trial: Option<install::Pending>,
    endpoint: String,
) -> Restart {
    if let Some(p) = trial {
        if healthy(&endpoint).await {
            if let Err(e) = install::confirm(&settings.state_dir, &p) {
                tracing::error!("confirming the update: {e}");
            }
        } else {
            match install::rollback(&settings.state_dir, &p) {
                Ok(()) => return Restart::Into(p.exe),
                Err(e) => tracing::error!("rolling back: {e}"),
            }
        }
    }
    let skip = if !settings.auto {
        Some("auto_update is off".to_string())
    } else if settings.manifest_url.is_none() {
        Some("no update_url".to_string())
    } else if !cfg!(unix) {
        Some("the MSI updates this install".to_string())
    } else {
        update::managed_by(&exe).map(|how| format!("package-managed: {how}"))
    };
    if let Some(why) = skip {
        tracing::debug!("automatic updates off: {why}");
        return std::future::pending().await;
    }
    // The first check soon after start (spread), then every interval.
    let mut wait = settings.interval.min(Duration::from_secs(300));
    loop {
        tokio::time::sleep(crate::policy::manager::jitter(wait, 0.1)).await;
        wait = settings.interval;
        let updater = match Updater::new(&settings) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!("update: {e}");
                continue;
            }
        };
        match updater.apply(&exe, &settings.state_dir).await {
            Ok(Applied::UpToDate { current }) => tracing::debug!("update: {current} is current"),
            Ok(Applied::Installed(i)) => {
                tracing::info!("update: installed {}; restarting into it", i.to);
                return Restart::Into(i.exe);
            }
            Err(e) => tracing::warn!("update refused: {e}"),
        }
    }
}

/// Whether the local API answers `status` with this version within
/// [`HEALTH_DEADLINE`].
async fn healthy(endpoint: &str) -> bool {
    use crate::ipc::client::Client;
    use crate::ipc::proto::Op;
    let deadline = tokio::time::Instant::now() + HEALTH_DEADLINE;
    while tokio::time::Instant::now() < deadline {
        if let Ok(mut c) = Client::connect(endpoint).await
            && let Ok(v) = c.call(&Op::Status, Duration::from_secs(10)).await
            && v["daemon"]["version"] == crate::VERSION
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Replaces this process with `exe` and the same arguments (Unix).
#[cfg(unix)]
pub fn exec(exe: &Path) -> anyhow::Error {
    use std::os::unix::process::CommandExt as _;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::Error::new(err).context(format!("cannot restart into {}", exe.display()))
}
