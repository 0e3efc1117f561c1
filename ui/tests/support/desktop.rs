//! A private desktop for the window tests: an Xvfb display, a D-Bus session
//! bus with no service files (so GTK activates no accessibility bus or
//! keyring), and tauri-driver in front of WebKitWebDriver. Every process is
//! stopped when its guard drops: tauri-driver with SIGTERM (so it ends its
//! WebKitWebDriver and the app), the others with SIGTERM then SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process stopped on drop.
pub struct Proc {
    pub name: &'static str,
    child: Child,
}

impl Proc {
    pub fn new(name: &'static str, child: Child) -> Proc {
        Proc { name, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} did not stop on SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The names of `pid`'s descendant processes, zombies left out (from
/// /proc/*/stat).
pub fn descendants(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // (pid, ppid, comm) of every live process.
    let all: Vec<(u32, u32, String)> = dir
        .filter_map(|e| {
            let e = e.ok()?;
            let me: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let mut fields = rest.split_whitespace();
            let state = fields.next()?;
            let ppid: u32 = fields.next()?.parse().ok()?;
            (state != "Z").then_some((me, ppid, comm))
        })
        .collect();
    let mut found = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        for (me, ppid, comm) in &all {
            if *ppid == parent {
                parents.push(*me);
                found.push(comm.clone());
            }
        }
    }
    found
}

/// Sends a key to the window whose title starts with `title` on the
/// (private) `display` (xdotool: focus it, then type through XTEST). GTK
/// has hidden windows of the same name; the one that takes the focus is
/// the one.
pub fn key_to_window(display: &str, title: &str, key: &str) -> Result<(), String> {
    let xdotool = program("xdotool", "Debian's xdotool");
    let out = Command::new(&xdotool)
        .env("DISPLAY", display)
        .args(["search", "--name"])
        .arg(format!("^{title}"))
        .output()
        .map_err(|e| e.to_string())?;
    let windows: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for w in &windows {
        let focused = Command::new(&xdotool)
            .env("DISPLAY", display)
            .args(["windowfocus", "--sync", w, "key", key])
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if focused.success() {
            return Ok(());
        }
    }
    Err(format!("no window {title:?} took the focus ({windows:?})"))
}

/// Starts dunst, a notification server that draws, on `display` and the
/// session bus `bus`, with a fixed look (`dir` holds its config) so the
/// README's picture of a notification is the same on every run.
pub fn dunst(display: &str, bus: &str, dir: &Path, log: &Path) -> Proc {
    let bin = program("dunst", "Debian's dunst");
    let config = dir.join("dunstrc");
    std::fs::write(
        &config,
        r##"[global]
    width = 430
    height = 300
    origin = top-right
    offset = 16x16
    font = DejaVu Sans 11
    format = "<b>%s</b>\n%b"
    markup = full
    padding = 12
    horizontal_padding = 14
    frame_width = 1
    corner_radius = 6
    show_indicators = no
    icon_position = off
[urgency_low]
    background = "#ffffff"
    foreground = "#1f1f1f"
    frame_color = "#9e9e9e"
    timeout = 0
[urgency_normal]
    background = "#ffffff"
    foreground = "#1f1f1f"
    frame_color = "#9e9e9e"
    timeout = 0
[urgency_critical]
    background = "#ffffff"
    foreground = "#1f1f1f"
    frame_color = "#c62828"
    timeout = 0
"##,
    )
    .expect("write the dunst config");
    let child = Command::new(bin)
        .args(["-config"])
        .arg(&config)
        .env("DISPLAY", display)
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(open_log(log))
        .stderr(open_log(log))
        .spawn()
        .expect("dunst starts");
    Proc::new("dunst", child)
}

/// A PNG of the first mapped window whose X class is `class` on `display`
/// (xdotool finds it, ImageMagick's `import` takes it).
pub fn window_png(display: &str, class: &str) -> Result<Vec<u8>, String> {
    let xdotool = program("xdotool", "Debian's xdotool");
    let out = Command::new(&xdotool)
        .env("DISPLAY", display)
        .args(["search", "--onlyvisible", "--class", class])
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    let window = text
        .lines()
        .next()
        .ok_or_else(|| format!("no visible window of class {class:?}"))?;
    let import = program("import", "Debian's imagemagick");
    let png = Command::new(import)
        .env("DISPLAY", display)
        .args(["-window", window, "png:-"])
        .output()
        .map_err(|e| e.to_string())?;
    if !png.status.success() || !png.stdout.starts_with(b"\x89PNG") {
        return Err(format!(
            "import -window {window}: {}",
            String::from_utf8_lossy(&png.stderr)
        ));
    }
    Ok(png.stdout)
}

/// How many distinct colours `png` holds (ImageMagick's `identify`): a
/// blank window has one or two, drawn text dozens (anti-aliasing).
pub fn colours(png: &[u8]) -> Result<usize, String> {
    let identify = program("identify", "Debian's imagemagick");
    let mut child = Command::new(identify)
        .args(["-format", "%k", "png:-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        stdin.write_all(png).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|e| format!("identify: {e}"))
}

/// Keeps a screenshot: in the target dir always, and in `docs/screenshots`
/// when TEND_UPDATE_SCREENSHOTS=1 (to refresh the README's pictures).
pub fn save_screenshot(name: &str, png: &[u8]) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).expect("the screenshots directory");
    std::fs::write(dir.join(name), png).expect("writing a screenshot");
    if std::env::var("TEND_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&docs).expect("docs/screenshots");
        std::fs::write(docs.join(name), png).expect("writing a screenshot under docs");
    }
}

/// Finds a program or explains what installs it.
pub fn program(name: &str, hint: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    });
    let home_cargo = std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".cargo/bin").join(name))
        .filter(|f| f.is_file());
    from_path
        .or(home_cargo)
        .unwrap_or_else(|| panic!("{name} is missing: {hint} (scripts/deps.sh test installs it)"))
}

/// A free TCP port on loopback (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts Xvfb on the first free display number from 90; returns `:N`.
pub fn xvfb(log: &Path) -> (Proc, String) {
    let bin = program("Xvfb", "Debian's xvfb");
    for n in 90..140 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let display = format!(":{n}");
        let child = Command::new(&bin)
            .args([&display, "-screen", "0", "1280x1000x24", "-nolisten", "tcp"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(open_log(log))
            .spawn()
            .expect("Xvfb starts");
        let mut p = Proc {
            name: "Xvfb",
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (p, display);
            }
            if let Ok(Some(_)) = p.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(p);
    }
    panic!("no display could be started; see {}", log.display());
}

/// Starts tauri-driver on `port` with `env`; waits until it listens.
pub fn tauri_driver(port: u16, env: &[(String, String)], log: &Path) -> Proc {
    let driver = program(
        "tauri-driver",
        "`cargo install --locked tauri-driver@2.1.0`",
    );
    let native = program("WebKitWebDriver", "Debian's webkit2gtk-driver");
    let child = Command::new(driver)
        .args(["--port", &port.to_string()])
        .args(["--native-port", &free_port().to_string()])
        .arg("--native-driver")
        .arg(native)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(open_log(log))
        .stderr(open_log(log))
        .spawn()
        .expect("tauri-driver starts");
    let p = Proc {
        name: "tauri-driver",
        child,
    };
    super::webdriver::wait_ready(port, Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", std::fs::read_to_string(log).unwrap_or_default()));
    p
}

fn open_log(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open a log")
}
