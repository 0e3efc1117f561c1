//! The JSON-lines sink: one event per line, appended to a file that is
//! rotated by size, as log forwarders (Fluent Bit, Vector, the Splunk
//! universal forwarder) expect: at `max_bytes` the file is renamed to
//! `path.1` (`.1` to `.2`, ..., up to `keep`) and a new one started.
//!
//! A batch is written with one `write` and flushed to disk (`fdatasync`)
//! before the outbox is told it was delivered, so a crash can repeat
//! events (same `uuid`) but never lose one. A line cut short by a power
//! cut is removed when the file is next opened; its event is still pending
//! and is written again.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::daemon::store::Pending;

pub const DEFAULT_MAX_BYTES: u64 = 10 << 20;
pub const DEFAULT_KEEP: u32 = 5;

pub struct FileSink {
    path: PathBuf,
    max_bytes: u64,
    keep: u32,
    file: Option<(File, u64)>,
}

/// The name of the `n`th rotated file.
fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl FileSink {
    pub fn new(path: PathBuf, max_bytes: Option<u64>, keep: Option<u32>) -> FileSink {
        FileSink {
            path,
            max_bytes: max_bytes.unwrap_or(DEFAULT_MAX_BYTES).max(1),
            keep: keep.unwrap_or(DEFAULT_KEEP),
            file: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> io::Result<(File, u64)> {
        if let Some(dir) = self.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        // A cut-short last line is repaired through a plain read-write
        // handle (Windows does not truncate through an append-only one).
        if let Ok(mut f) = OpenOptions::new().read(true).write(true).open(&self.path) {
            let len = f.metadata()?.len();
            repair_tail(&mut f, len)?;
        }
        let mut opts = OpenOptions::new();
        opts.append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o640);
        }
        let f = opts.open(&self.path)?;
        let len = f.metadata()?.len();
        Ok((f, len))
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        for n in (1..self.keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
    }

    /// Appends the batch, one line per event, and flushes it to disk.
    pub fn deliver(&mut self, batch: &[Pending]) -> io::Result<()> {
        let mut text = String::new();
        for e in batch {
            text.push_str(&e.body);
            text.push('\n');
        }
        let result = self.write(text.as_bytes());
        if result.is_err() {
            self.file = None;
        }
        result
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(self.open()?);
        }
        if let Some((_, size)) = &self.file
            && *size > 0
            && size + bytes.len() as u64 > self.max_bytes
        {
            self.rotate()?;
            self.file = Some(self.open()?);
        }
        let Some((f, size)) = &mut self.file else {
            return Err(io::Error::other("the sink file is not open"));
        };
        f.write_all(bytes)?;
        f.sync_data()?;
        *size += bytes.len() as u64;
        Ok(())
    }
}

/// Cuts a last line that has no newline (a write cut short); returns the
/// new length.
fn repair_tail(f: &mut File, len: u64) -> io::Result<u64> {
    if len == 0 {
        return Ok(0);
    }
    let tail = len.min(64 << 10);
    f.seek(SeekFrom::Start(len - tail))?;
    let mut buf = Vec::with_capacity(tail as usize);
    f.take(tail).read_to_end(&mut buf)?;
    if buf.last() == Some(&b'\n') {
        return Ok(len);
    }
    let keep = match buf.iter().rposition(|b| *b == b'\n') {
        Some(i) => len - tail + i as u64 + 1,
        None if tail == len => 0,
        // A line longer than 64 KiB without an end: keep it and start a new line.
        None => {
            f.seek(SeekFrom::End(0))?;
            f.write_all(b"\n")?;
            return Ok(len + 1);
        }
    };
    tracing::warn!(
        "removing a partial line at the end of the event log ({} bytes)",
        len - keep
    );
    f.set_len(keep)?;
    Ok(keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, pad: usize) -> Pending {
        Pending {
            seq,
            uuid: format!("u{seq}"),
            body: format!("{{\"seq\":{seq},\"pad\":\"{}\"}}", "x".repeat(pad)),
        }
    }

    #[test]
    fn appends_lines_and_rotates_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log/events.jsonl");
        let mut s = FileSink::new(path.clone(), Some(250), Some(2));
        for i in 0..10 {
            s.deliver(&[ev(i, 50)]).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        assert!(current.len() <= 250, "{}", current.len());
        assert!(current.ends_with("\"}\n"));
        assert!(rotated(&path, 1).exists());
        assert!(rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        let all: usize = [path.clone(), rotated(&path, 1), rotated(&path, 2)]
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap().lines().count())
            .sum();
        assert!((7..=10).contains(&all), "{all}");
        // Every line is a whole JSON document.
        for l in current.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
    }

    #[test]
    fn a_partial_last_line_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"b\":").unwrap();
        let mut s = FileSink::new(path.clone(), None, None);
        s.deliver(&[ev(1, 0)]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"seq\":1,\"pad\":\"\"}\n");
    }
}
