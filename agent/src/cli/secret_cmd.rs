//! `tend secret set|delete NAME`: the secrets the agent sends (the HTTP
//! sink's `token_secret`, the Slack bot token), in this OS's store
//! ([`crate::secrets`]). The value is read from standard input, never from
//! the command line, where other users' `ps` would see it.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::secrets::{self, MAX_SECRET_BYTES, SecretStore};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Store a secret, reading its value from standard input (one line;
    /// a final line break is dropped). At a terminal the typing is not shown.
    Set {
        /// The secret's name (e.g. `sink-token`, `slack-bot-token`).
        name: String,
    },
    /// Remove a secret.
    Delete {
        /// The secret's name.
        name: String,
    },
}

pub fn run(command: Command, config: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(config)?;
    let store = secrets::system(&loaded.config.state_dir());
    let terminal = std::io::stdin().is_terminal();
    run_with(
        command,
        store.as_ref(),
        &mut std::io::stdin().lock(),
        terminal,
    )
}

/// The commands against `store`, reading a value from `input` (a terminal
/// when `terminal`).
pub fn run_with(
    command: Command,
    store: &dyn SecretStore,
    input: &mut dyn Read,
    terminal: bool,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Set { name } => {
            secrets::check_name(&name)?;
            let value = read_value(&name, input, terminal)?;
            store.set(&name, &value)?;
            eprintln!("stored secret {name:?} in {}", store.describe());
        }
        Command::Delete { name } => {
            store.delete(&name)?;
            eprintln!("removed secret {name:?} from {}", store.describe());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The value from `input`: everything up to the end, or the first line at
/// a terminal, without its line break.
fn read_value(name: &str, input: &mut dyn Read, terminal: bool) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    if terminal {
        eprint!("Value for {name} (not shown): ");
        let _echo = echo_off();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(input.take(MAX_SECRET_BYTES as u64 + 3)),
            &mut line,
        )
        .context("reading the value from the terminal")?;
        eprintln!();
        bytes = line.into_bytes();
    } else {
        input
            .take(MAX_SECRET_BYTES as u64 + 3)
            .read_to_end(&mut bytes)
            .context("reading the value from standard input")?;
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("the value for {name:?} is not UTF-8 text"))?;
    let value = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    Ok(value.to_string())
}

/// Turns the terminal's echo off until dropped (Unix).
#[cfg(unix)]
fn echo_off() -> Option<impl Drop> {
    struct Restore(libc::termios);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: restores the settings read from fd 0 below.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &self.0);
            }
        }
    }
    // SAFETY: termios is plain data, filled by tcgetattr before use.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 is a terminal (checked by the caller); `t` is ours.
    if unsafe { libc::tcgetattr(0, &mut t) } != 0 {
        return None;
    }
    let saved = Restore(t);
    t.c_lflag &= !libc::ECHO;
    // SAFETY: as above.
    unsafe {
        libc::tcsetattr(0, libc::TCSANOW, &t);
    }
    Some(saved)
}

/// The Windows console echoes; input there is usually piped by a script.
#[cfg(not(unix))]
fn echo_off() -> Option<()> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryStore;

    #[test]
    fn set_reads_stdin_and_delete_removes() {
        let store = MemoryStore::new();
        let set = |input: &[u8]| {
            run_with(
                Command::Set {
                    name: "sink-token".into(),
                },
                &store,
                &mut &input[..],
                false,
            )
        };
        set(b"abc123\n").unwrap();
        assert_eq!(store.get("sink-token").unwrap(), "abc123");
        set(b"def\r\n").unwrap();
        assert_eq!(store.get("sink-token").unwrap(), "def");
        let e = set(b"").unwrap_err().to_string();
        assert!(e.contains("empty"), "{e}");
        let e = set(b"two\nlines\n").unwrap_err().to_string();
        assert!(e.contains("line break"), "{e}");

        run_with(
            Command::Delete {
                name: "sink-token".into(),
            },
            &store,
            &mut &b""[..],
            false,
        )
        .unwrap();
        let e = run_with(
            Command::Delete {
                name: "sink-token".into(),
            },
            &store,
            &mut &b""[..],
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not set"), "{e}");
    }
}
