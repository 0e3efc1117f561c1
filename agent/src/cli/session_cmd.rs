//! `tend session`: the per-user process that shows the daemon's
//! notifications where no tray is installed (started at login: an XDG
//! autostart entry, a LaunchAgent, a Run key), and `tend open-url`, which
//! hands a clicked `tend://` link to the daemon.
//!
//! The session's work is [`crate::notify::session`], shared with the tray.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::ipc::client::Client;
use crate::ipc::proto::Op;
use crate::notify::link::Link;

#[derive(Debug, clap::Args)]
pub struct SessionArgs {
    /// The service's socket or pipe (default as for `tend run`).
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
    /// The application name notifications carry.
    #[arg(long, value_name = "NAME", default_value = "Tend")]
    app_name: String,
}

#[derive(Debug, clap::Args)]
pub struct OpenUrlArgs {
    /// The link, `tend://interaction?execution=...&event=...&token=...`.
    url: String,
    /// The service's socket or pipe (default as for `tend run`).
    #[arg(long, value_name = "PATH")]
    socket: Option<String>,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(15);

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `tend session`: runs until killed.
pub fn session(args: SessionArgs) -> anyhow::Result<ExitCode> {
    let endpoint = crate::ipc::endpoint(args.socket.as_deref());
    runtime()?.block_on(crate::notify::session::run(endpoint, args.app_name));
    Ok(ExitCode::SUCCESS)
}

/// `tend open-url URL`: checks the link and hands it to the daemon.
pub fn open_url(args: OpenUrlArgs) -> anyhow::Result<ExitCode> {
    let link = match Link::parse(&args.url) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("refused a tend:// link: {e}");
            anyhow::bail!("refused the link: {e}");
        }
    };
    let endpoint = crate::ipc::endpoint(args.socket.as_deref());
    let rt = runtime()?;
    let op = Op::Interaction {
        execution: link.execution.clone(),
        event: link.event.clone(),
        token: Some(link.token),
    };
    let result = rt.block_on(async {
        let mut client = Client::connect(&endpoint).await?;
        client.call(&op, CALL_TIMEOUT).await
    });
    match result {
        Ok(v) => {
            tracing::info!(
                "interaction {:?} for execution {} accepted",
                link.event,
                link.execution
            );
            if let Some(text) = v
                .get("response")
                .and_then(|r| r.get("text"))
                .and_then(|t| t.as_str())
            {
                println!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            tracing::error!(
                "the Tend service refused {:?} for execution {}: {e}",
                link.event,
                link.execution
            );
            Err(e).context(format!(
                "the Tend service refused the link for execution {}",
                link.execution
            ))
        }
    }
}
