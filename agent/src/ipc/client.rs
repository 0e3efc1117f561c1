//! The client side, for `tend status`, `tend recheck` and the tray.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::proto::{self, MAX_MESSAGE, Op, Push, Response};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "cannot connect to the Tend service at {endpoint}: {source} (is `tend run` running? `--socket` or TEND_SOCKET names another endpoint)"
    )]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the Tend service closed the connection")]
    Closed,
    #[error("talking to the Tend service: {0}")]
    Io(#[from] std::io::Error),
    #[error("the Tend service sent something that is not a response: {0}")]
    Protocol(String),
    #[error("{message} ({code})")]
    Refused { code: String, message: String },
    #[error("no answer from the Tend service within {0:?}")]
    Timeout(Duration),
}

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<Reader>,
    writer: Writer,
    next_id: u64,
    /// Pushes that arrived while waiting for a response.
    pending_pushes: Vec<Push>,
    /// A line begun: kept across a cancelled read, so [`Client::next_push`]
    /// may be raced in a `select!` without losing half a message.
    partial: Vec<u8>,
}

impl Client {
    /// Connects to the socket (Unix) or named pipe (Windows) at `endpoint`.
    pub async fn connect(endpoint: &str) -> Result<Client, ClientError> {
        let connect_err = |source| ClientError::Connect {
            endpoint: endpoint.to_string(),
            source,
        };
        #[cfg(unix)]
        let (r, w): (Reader, Writer) = {
            let s = tokio::net::UnixStream::connect(endpoint)
                .await
                .map_err(connect_err)?;
            let (r, w) = s.into_split();
            (Box::new(r), Box::new(w))
        };
        #[cfg(windows)]
        let (r, w): (Reader, Writer) = {
            use tokio::net::windows::named_pipe::ClientOptions;
            let mut tries = 0;
            let pipe = loop {
                match ClientOptions::new().open(endpoint) {
                    Ok(p) => break p,
                    // ERROR_PIPE_BUSY: every instance is taken for a moment.
                    Err(e) if e.raw_os_error() == Some(231) && tries < 50 => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    Err(e) => return Err(connect_err(e)),
                }
            };
            let (r, w) = tokio::io::split(pipe);
            (Box::new(r), Box::new(w))
        };
        Ok(Client {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            pending_pushes: Vec::new(),
            partial: Vec::new(),
        })
    }

    async fn read_line(&mut self) -> Result<String, ClientError> {
        let limit = MAX_MESSAGE * 16;
        loop {
            let room = (limit + 1).saturating_sub(self.partial.len()) as u64;
            let n = (&mut self.reader)
                .take(room)
                .read_until(b'\n', &mut self.partial)
                .await?;
            if self.partial.last() == Some(&b'\n') {
                let line = std::mem::take(&mut self.partial);
                return String::from_utf8(line)
                    .map_err(|_| ClientError::Protocol("a message that is not UTF-8".into()));
            }
            if self.partial.len() > limit {
                return Err(ClientError::Protocol(format!(
                    "a message over {limit} bytes"
                )));
            }
            if n == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// Sends `op` and waits (at most `timeout`) for its response's result.
    pub async fn call(
        &mut self,
        op: &Op,
        timeout: Duration,
    ) -> Result<serde_json::Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = proto::request_line(id, op);
        line.push('\n');
        self.writer.write_all(line.as_bytes()).await?;
        self.writer.flush().await?;
        let wait = async {
            loop {
                let text = self.read_line().await?;
                let v: serde_json::Value = serde_json::from_str(&text)
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
                if v.get("push").is_some() {
                    if let Ok(p) = serde_json::from_value::<Push>(v) {
                        self.pending_pushes.push(p);
                    }
                    continue;
                }
                let r: Response =
                    serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))?;
                if r.id != id && r.id != 0 {
                    continue;
                }
                return match (r.ok, r.result, r.error) {
                    (true, Some(result), _) => Ok(result),
                    (true, None, _) => Ok(serde_json::Value::Null),
                    (false, _, Some(e)) => Err(ClientError::Refused {
                        code: e.code,
                        message: e.message,
                    }),
                    (false, _, None) => {
                        Err(ClientError::Protocol("an error without a reason".into()))
                    }
                };
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// The next push (after `subscribe`, or to a session). Cancel-safe.
    pub async fn next_push(&mut self) -> Result<Push, ClientError> {
        if !self.pending_pushes.is_empty() {
            return Ok(self.pending_pushes.remove(0));
        }
        loop {
            let text = self.read_line().await?;
            if let Ok(p) = serde_json::from_str::<Push>(&text) {
                return Ok(p);
            }
        }
    }
}
