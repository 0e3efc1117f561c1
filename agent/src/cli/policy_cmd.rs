//! `tend policy`: authoring checks for admins, and the policy this agent
//! pulls, verifies and keeps.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;

use super::read_input;
use crate::policy::accept::{Trust, accept};
use crate::policy::lint::{Level, lint};
use crate::policy::manager::{PolicyManager, PolicyOrigin, PullOutcome};
use crate::policy::signature::TrustedKey;
use crate::tables::util::Civil;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a policy before signing it: parse it, validate it, and prepare
    /// every check's query for every OS it names. Exit 0 when there is no
    /// error (warnings allowed), 1 otherwise.
    Lint {
        /// The policy file (`-` for standard input).
        file: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = LintFormat::Text)]
        format: LintFormat,
    },
    /// Print the built-in default policy, a starting point for your own.
    Default,
    /// Fetch the policy from the configured URL, verify it (signature,
    /// schema, serial) and, when it is newer, make it the policy in force.
    /// A policy that fails any check is refused with the reason, and the
    /// last good policy stays in force.
    Pull {
        /// Pull once and exit: 0 when updated or unchanged, 1 when refused.
        /// Without it, keep pulling on the poll interval (with jitter, and
        /// backing off after failures), as the service does.
        #[arg(long)]
        once: bool,
    },
    /// Show the policy in force: where it came from, its serial, the key
    /// that signed it, when it was fetched, and the last refusal.
    Show {
        /// Output format.
        #[arg(long, value_enum, default_value_t = LintFormat::Text)]
        format: LintFormat,
        /// Print the policy in force itself instead.
        #[arg(long)]
        raw: bool,
    },
    /// Verify a signed policy as the agent would: the minisign signature
    /// against a trusted key, then the schema. Exit 0 only for a valid,
    /// signed, well-formed policy, 1 otherwise.
    Verify {
        /// The policy file.
        file: PathBuf,
        /// Its signature (default: FILE.minisig).
        #[arg(long, value_name = "FILE")]
        sig: Option<PathBuf>,
        /// A trusted public key: the base64 line of a minisign.pub, or the
        /// path of one (repeatable). Default: the config's trusted_keys.
        #[arg(long = "key", value_name = "PUBLIC_KEY")]
        keys: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LintFormat {
    Text,
    Json,
}

pub fn run(cmd: Command, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        Command::Pull { once } => pull(once, config),
        Command::Show { format, raw } => show(format, raw, config),
        Command::Verify { file, sig, keys } => verify(&file, sig.as_deref(), &keys, config),
        Command::Default => {
            print!("{}", crate::policy::default_policy_text());
            Ok(ExitCode::SUCCESS)
        }
        Command::Lint { file, format } => {
            let text = read_input(&file)?;
            let name = file.display().to_string();
            let mut findings = lint(&text, &name);
            if let Ok(policy) = crate::policy::Policy::parse(&text, &name) {
                for (path, message) in crate::daemon::workflows::policy_problems(&policy) {
                    findings.push(crate::policy::lint::finding(
                        &text,
                        Level::Error,
                        path,
                        message,
                    ));
                }
            }
            let errors = findings.iter().filter(|f| f.level == Level::Error).count();
            match format {
                LintFormat::Json => println!("{}", serde_json::to_string_pretty(&findings)?),
                LintFormat::Text => {
                    for f in &findings {
                        let level = match f.level {
                            Level::Error => "error",
                            Level::Warning => "warning",
                        };
                        println!(
                            "{name}:{}:{}: {level}: {}: {}",
                            f.line, f.column, f.path, f.message
                        );
                    }
                    let warnings = findings.len() - errors;
                    println!("{name}: {errors} error(s), {warnings} warning(s)");
                }
            }
            Ok(if errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn pull(once: bool, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(config)?;
    if loaded.config.policy_url.is_none() {
        anyhow::bail!("no policy_url is configured (see `tend config show`)");
    }
    let mut manager = PolicyManager::new(&loaded.config);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    loop {
        let outcome = runtime.block_on(manager.pull_once());
        let in_force = match manager.active() {
            Ok((p, _)) => format!("serial {}", p.serial),
            Err(_) => "none".into(),
        };
        let code = match &outcome {
            PullOutcome::Updated { serial, key_id } => {
                let by = key_id.map_or("unsigned".into(), |k| format!("signed by key {k}"));
                println!("updated: policy serial {serial} is in force ({by})");
                ExitCode::SUCCESS
            }
            PullOutcome::Unchanged { serial } => {
                println!("unchanged: policy serial {serial} is the newest");
                ExitCode::SUCCESS
            }
            PullOutcome::Refused { reason } => {
                println!("refused: {reason}; policy in force: {in_force}");
                ExitCode::from(1)
            }
        };
        if once {
            return Ok(code);
        }
        let delay = manager.next_delay();
        tracing::info!("next pull in {}s", delay.as_secs());
        std::thread::sleep(delay);
    }
}

fn time(t: i64) -> String {
    Civil::from_unix(t).iso8601()
}

fn show(format: LintFormat, raw: bool, config: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = super::load_config(config)?;
    let manager = PolicyManager::new(&loaded.config);
    let active = if loaded.found_any() {
        manager.active()
    } else {
        Ok((crate::policy::default_policy(), PolicyOrigin::BuiltIn))
    };
    if raw {
        match &active {
            Ok((_, PolicyOrigin::BuiltIn)) => print!("{}", crate::policy::default_policy_text()),
            Ok(_) => print!("{}", manager.cached().map_or("", |c| c.policy.as_str())),
            Err(e) => anyhow::bail!("{e}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = manager.status();
    let in_force = match &active {
        Ok((policy, origin)) => {
            let mut v = serde_json::json!({
                "source": origin.to_string(),
                "serial": policy.serial,
                "name": policy.name,
                "checks": policy.checks.len(),
            });
            if let (
                PolicyOrigin::Cached {
                    source,
                    key_id,
                    fetched_at,
                    ..
                },
                Some(c),
            ) = (origin, manager.cached())
            {
                v["source"] = source.clone().into();
                v["origin"] = "cache".into();
                v["key_id"] = key_id.clone().into();
                v["fetched_at"] = time(*fetched_at).into();
                v["sha256"] = c.sha256.clone().into();
                v["etag"] = c.validators.etag.clone().into();
                v["last_modified"] = c.validators.last_modified.clone().into();
            } else {
                v["origin"] = "built-in".into();
            }
            v
        }
        Err(_) => serde_json::Value::Null,
    };
    let doc = serde_json::json!({
        "in_force": in_force,
        "problem": active.as_ref().err().map(ToString::to_string),
        "policy_url": loaded.config.policy_url,
        "cache": manager.store().cache_path(),
        "cache_problem": manager.cache_problem(),
        "highest_serial": status.highest_serial,
        "last_success_at": status.last_success_at.map(time),
        "last_refusal": status.last_refusal.as_ref().map(|r| serde_json::json!({
            "at": time(r.at), "reason": r.reason,
        })),
        "consecutive_failures": status.consecutive_failures,
        "trusted_key_ids": manager.trusted_keys().iter().map(|k| k.id.to_string()).collect::<Vec<_>>(),
        "key_problems": manager.key_problems(),
    });
    if format == LintFormat::Json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    match &active {
        Ok(_) => {
            let f = &doc["in_force"];
            println!("source:        {}", text(&f["source"]));
            println!("serial:        {}", text(&f["serial"]));
            if f["origin"] == "cache" {
                println!("signed by key: {}", text(&f["key_id"]));
                println!("fetched at:    {}", text(&f["fetched_at"]));
                println!("sha256:        {}", text(&f["sha256"]));
            }
        }
        Err(e) => println!("source:        none ({e})"),
    }
    println!("policy URL:    {}", text(&doc["policy_url"]));
    println!("cache:         {}", text(&doc["cache"]));
    if let Some(p) = manager.cache_problem() {
        println!("cache problem: {p}");
    }
    println!("highest serial accepted: {}", text(&doc["highest_serial"]));
    if let Some(r) = &status.last_refusal {
        println!("last refusal:  {}: {}", time(r.at), r.reason);
    }
    println!("trusted keys:  {}", text(&doc["trusted_key_ids"]));
    for p in manager.key_problems() {
        println!("key problem:   {p}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A `--key` value: a key, or the path of a minisign.pub file.
fn parse_key(arg: &str) -> anyhow::Result<TrustedKey> {
    let path = Path::new(arg);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return TrustedKey::parse(&text).with_context(|| path.display().to_string());
    }
    Ok(TrustedKey::parse(arg)?)
}

fn verify(
    file: &Path,
    sig: Option<&Path>,
    keys: &[String],
    config: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let keys: Vec<TrustedKey> = if keys.is_empty() {
        let loaded = super::load_config(config)?;
        let keys = TrustedKey::parse_all(&loaded.config.trusted_keys)
            .context("the config's trusted_keys")?;
        if keys.is_empty() {
            anyhow::bail!(
                "no trusted key: pass --key PUBLIC_KEY or set trusted_keys in the config"
            );
        }
        keys
    } else {
        keys.iter()
            .map(|k| parse_key(k))
            .collect::<anyhow::Result<_>>()?
    };
    let name = file.display().to_string();
    let text = std::fs::read(file).with_context(|| format!("cannot read {name}"))?;
    let sig_path = sig.map_or_else(
        || {
            let mut p = file.as_os_str().to_owned();
            p.push(".minisig");
            PathBuf::from(p)
        },
        Path::to_path_buf,
    );
    let signature = match std::fs::read(&sig_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", sig_path.display())),
    };
    let trust = Trust {
        keys,
        allow_unsigned: false,
    };
    match accept(&text, signature.as_deref(), &trust, None, &name) {
        Ok(a) => {
            let signer = a.signer.map_or_else(String::new, |s| {
                format!(
                    ", signed by key {} (trusted comment: {})",
                    s.key_id, s.trusted_comment
                )
            });
            println!(
                "{name}: valid: serial {}, {} check(s){signer}",
                a.policy.serial,
                a.policy.checks.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            if signature.is_none() {
                eprintln!(
                    "tend: {name}: refused: no signature at {}",
                    sig_path.display()
                );
            } else {
                eprintln!("tend: refused: {e}");
            }
            Ok(ExitCode::from(1))
        }
    }
}
