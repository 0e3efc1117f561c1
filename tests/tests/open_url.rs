//! `tend open-url`: a `tend://` link is checked before anything is sent to
//! the service; a bad or forged link is refused with its reason, and
//! nothing reaches the service.

use tend_e2e::{stderr, tend_bin};

fn open_url(url: &str, socket: &str) -> std::process::Output {
    std::process::Command::new(tend_bin())
        .args(["open-url", url, "--socket", socket])
        .env("TEND_LOG", "info")
        .output()
        .expect("tend runs")
}

#[test]
fn bad_links_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("none.sock");
    let socket = socket.to_str().unwrap();
    let cases = [
        (
            "https://evil.example/interaction?execution=e&event=yes&token=AAAAAAAAAAAAAAAAAAAA",
            "scheme is \"https\"",
        ),
        ("tend://run?cmd=rm", "only tend://interaction links"),
        (
            "tend://interaction?execution=e&event=yes",
            "`token` is missing",
        ),
        (
            "tend://interaction?execution=e&event=yes&token=short",
            "`token` is not valid",
        ),
        (
            "tend://interaction?execution=e&event=yes&token=AAAAAAAAAAAAAAAAAAAA&then=x",
            "unknown field `then`",
        ),
        (
            "tend://interaction?execution=e%0Aforged&event=yes&token=AAAAAAAAAAAAAAAAAAAA",
            "`execution` is not valid",
        ),
    ];
    for (url, why) in cases {
        let o = open_url(url, socket);
        assert_eq!(o.status.code(), Some(2), "{url}");
        let err = stderr(&o);
        assert!(err.contains("refused") && err.contains(why), "{url}: {err}");
    }
    // A good link with no service to take it: says so.
    let o = open_url(
        "tend://interaction?execution=e-1&event=yes&token=AAAAAAAAAAAAAAAAAAAA",
        socket,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot connect to the Tend service"),
        "{}",
        stderr(&o)
    );
}
