//! What the fuzz target `ipc_request` runs (`fuzz/` at the repository
//! root), kept here so a stable test replays the committed corpus through
//! exactly the same code: one request line from an untrusted local peer.

use super::proto::{MAX_MESSAGE, Response, parse_request, request_line};

/// Parses one line as the server does and checks what must always hold: a
/// request that parses survives the trip back to a line and through the
/// parser again unchanged; a refusal has a code and an error response.
/// Panics on a violation.
pub fn ipc_request(data: &[u8]) {
    match parse_request(data) {
        Ok(req) => {
            assert!(data.len() <= MAX_MESSAGE);
            let line = request_line(req.id, &req.op);
            match parse_request(line.as_bytes()) {
                Ok(again) => assert_eq!(again, req, "{line} does not parse back"),
                Err((_, e)) => panic!("{line} does not parse back: {e}"),
            }
        }
        Err((id, e)) => {
            let response = Response::error(id.unwrap_or(0), e.code(), e.to_string());
            assert!(serde_json::to_string(&response).is_ok());
            let _ = e.closes();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every input the fuzzer kept (seeds and what it found) still runs clean.
    #[test]
    fn corpus_regression() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ipc_request");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let result = std::panic::catch_unwind(|| ipc_request(&data));
            assert!(result.is_ok(), "{} fails", path.display());
            n += 1;
        }
        assert!(n >= 4, "only {n} corpus files in {}", dir.display());
    }
}
