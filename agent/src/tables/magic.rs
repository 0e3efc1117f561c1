//! `magic`: what libmagic (`file(1)`) says a file is (osquery's `magic`).
//!
//! One row per `path = ...`: `data` is libmagic's description
//! (`MAGIC_NONE`), `mime_type` and `mime_encoding` its `MAGIC_MIME_TYPE` and
//! `MAGIC_MIME_ENCODING` answers. As in osquery, every path given has a row,
//! even a missing file (libmagic then says `cannot open ...`), and
//! `magic_db_files` is the database used: the `magic_db_files = ...` values
//! joined with `:`, or else the first of osquery's defaults that exists
//! (`/usr/share/misc/magic`, `/usr/share/misc/magic.mgc`,
//! `/usr/share/file/magic/magic`), or else libmagic's built-in default (the
//! column is then empty). The databases are this host's files: they are the
//! tool that reads the machine, not part of it.
//!
//! libmagic opens the file itself, so the table hands it the machine's file
//! through [`Fs::host_path`](crate::os::Fs::host_path) (a recording's copy)
//! after reading it through the seam so a recording captures it; libmagic's
//! messages are reported with the machine's path, not the host's.
//!
//! libmagic is loaded when the table is first queried (`dlopen` of
//! `libmagic.so.1`, or `libmagic.1.dylib` on macOS, through `libloading`),
//! so builds need no headers and a machine without it runs every other
//! table; this one then fails with an error naming the library and package.

use std::path::Path;

use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};

pub static TABLE: TableDef = TableDef {
    name: "magic",
    columns: COLUMNS,
    platforms: Platforms::POSIX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("path").required().index(),
    col::text("magic_db_files").additional(),
    col::text("data"),
    col::text("mime_type"),
    col::text("mime_encoding"),
];

const TABLE_NAME: &str = "magic";

/// osquery's default databases, tried in order.
const DEFAULT_DBS: &[&str] = &[
    "/usr/share/misc/magic",
    "/usr/share/misc/magic.mgc",
    "/usr/share/file/magic/magic",
];

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let api = ffi::api().map_err(|e| TableError::other(TABLE_NAME, e))?;
    let dbs = constraints.eq("magic_db_files");
    let db_files = if dbs.is_empty() {
        DEFAULT_DBS
            .iter()
            .find(|p| Path::new(p).exists())
            .map_or_else(String::new, |p| p.to_string())
    } else {
        dbs.join(":")
    };
    let cookie = ffi::Magic::open(api, (!db_files.is_empty()).then_some(db_files.as_str()))
        .map_err(|e| {
            TableError::other(
                TABLE_NAME,
                format!("loading the magic database {db_files:?}: {e}"),
            )
        })?;
    let mut rows = Vec::new();
    for path in constraints.eq("path") {
        ctx.check_deadline()?;
        let p = Path::new(&path);
        // Read through the seam first, so that a recording holds the file.
        let _ = fs.read(p);
        let host = fs.host_path(p).unwrap_or_else(|| p.to_path_buf());
        let host_text = host.to_string_lossy().into_owned();
        // libmagic names the file in some answers; name the machine's path.
        let local = |s: Option<String>| {
            s.map(|s| {
                if host_text == path {
                    s
                } else {
                    s.replace(&host_text, &path)
                }
            })
        };
        let mut r = RowBuilder::new(COLUMNS);
        r.set("path", path.as_str())
            .set("magic_db_files", db_files.as_str());
        r.set_opt("data", local(cookie.file(&host, ffi::MAGIC_NONE)))
            .set_opt("mime_type", local(cookie.file(&host, ffi::MAGIC_MIME_TYPE)))
            .set_opt(
                "mime_encoding",
                local(cookie.file(&host, ffi::MAGIC_MIME_ENCODING)),
            );
        rows.push(r.build());
    }
    Ok(rows)
}

/// libmagic, loaded at run time.
mod ffi {
    use std::ffi::{CStr, CString, c_char, c_int, c_void};
    use std::path::Path;
    use std::sync::OnceLock;

    use libloading::Library;

    use crate::tables::util::dylib;

    pub const MAGIC_NONE: c_int = 0x0;
    pub const MAGIC_MIME_TYPE: c_int = 0x10;
    pub const MAGIC_MIME_ENCODING: c_int = 0x400;

    #[cfg(target_os = "macos")]
    const LIBRARIES: &[&str] = &[
        "libmagic.1.dylib",
        "/opt/homebrew/lib/libmagic.1.dylib",
        "/usr/local/lib/libmagic.1.dylib",
    ];
    #[cfg(not(target_os = "macos"))]
    const LIBRARIES: &[&str] = &["libmagic.so.1"];

    #[cfg(target_os = "macos")]
    const PACKAGE: &str = "install libmagic with Homebrew (`brew install libmagic`)";
    #[cfg(not(target_os = "macos"))]
    const PACKAGE: &str =
        "install the libmagic1 package (Debian, Ubuntu) or file-libs (Fedora, RHEL)";

    type Cookie = c_void;

    /// The functions Tend calls, with the library kept loaded.
    pub struct Api {
        _lib: Library,
        open: unsafe extern "C" fn(c_int) -> *mut Cookie,
        close: unsafe extern "C" fn(*mut Cookie),
        load: unsafe extern "C" fn(*mut Cookie, *const c_char) -> c_int,
        file: unsafe extern "C" fn(*mut Cookie, *const c_char) -> *const c_char,
        setflags: unsafe extern "C" fn(*mut Cookie, c_int) -> c_int,
        error: unsafe extern "C" fn(*mut Cookie) -> *const c_char,
    }

    static API: OnceLock<Result<Api, String>> = OnceLock::new();

    /// libmagic, loaded once per process.
    pub fn api() -> Result<&'static Api, String> {
        API.get_or_init(load).as_ref().map_err(Clone::clone)
    }

    fn load() -> Result<Api, String> {
        // SAFETY: libmagic's initializers only set up the library's own
        // state, and `resolve` declares magic.h's prototypes and keeps the
        // library in the Api.
        unsafe { dylib::open_first(LIBRARIES, PACKAGE, resolve) }
    }

    fn resolve(lib: Library) -> Result<Api, libloading::Error> {
        // SAFETY: each symbol is declared with magic.h's prototype; the
        // pointers are copied out and stay valid because `lib` is kept in the
        // returned Api, which lives in a static and is never unloaded.
        unsafe {
            Ok(Api {
                open: *lib.get(b"magic_open\0")?,
                close: *lib.get(b"magic_close\0")?,
                load: *lib.get(b"magic_load\0")?,
                file: *lib.get(b"magic_file\0")?,
                setflags: *lib.get(b"magic_setflags\0")?,
                error: *lib.get(b"magic_error\0")?,
                _lib: lib,
            })
        }
    }

    /// An open magic cookie, closed on drop. Not shared between threads.
    pub struct Magic {
        api: &'static Api,
        cookie: *mut Cookie,
    }

    impl Drop for Magic {
        fn drop(&mut self) {
            // SAFETY: `cookie` came from magic_open, is non-NULL, and is closed once.
            unsafe { (self.api.close)(self.cookie) }
        }
    }

    impl Magic {
        /// `magic_open(MAGIC_NONE)` and `magic_load(databases)` (NULL: libmagic's default).
        pub fn open(api: &'static Api, databases: Option<&str>) -> Result<Magic, String> {
            let dbs = databases
                .map(CString::new)
                .transpose()
                .map_err(|_| "the database list contains a NUL byte".to_string())?;
            // SAFETY: magic_open takes flags only and returns NULL on failure.
            let cookie = unsafe { (api.open)(MAGIC_NONE) };
            if cookie.is_null() {
                return Err("magic_open failed".into());
            }
            let magic = Magic { api, cookie };
            // SAFETY: a live cookie and a NUL-terminated list (or NULL).
            let rc = unsafe {
                (api.load)(
                    cookie,
                    dbs.as_ref().map_or(std::ptr::null(), |d| d.as_ptr()),
                )
            };
            if rc != 0 {
                return Err(magic.error());
            }
            Ok(magic)
        }

        fn error(&self) -> String {
            // SAFETY: a live cookie; the message is owned by libmagic and
            // copied at once.
            let p = unsafe { (self.api.error)(self.cookie) };
            if p.is_null() {
                return "libmagic reported a failure".into();
            }
            // SAFETY: non-NULL and NUL-terminated.
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }

        /// libmagic's answer for a file with `flags`; `None` when it has none.
        pub fn file(&self, path: &Path, flags: c_int) -> Option<String> {
            let p = CString::new(path.to_string_lossy().as_bytes()).ok()?;
            // SAFETY: a live cookie and a NUL-terminated path; the answer is
            // owned by libmagic and copied before the next call.
            unsafe {
                (self.api.setflags)(self.cookie, flags);
                let answer = (self.api.file)(self.cookie, p.as_ptr());
                if answer.is_null() {
                    return None;
                }
                Some(CStr::from_ptr(answer).to_string_lossy().into_owned())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::os::Machine;
    use crate::sql::Engine;
    use crate::sql::table::Value;
    use crate::tables::util::testing::{fixture, text as t};

    fn engine() -> Option<Engine> {
        if let Err(e) = ffi::api() {
            eprintln!("skipping: {e}");
            return None;
        }
        Some(Engine::new(fixture("magic")).unwrap())
    }

    #[test]
    fn identifies_recorded_files() {
        let Some(engine) = engine() else { return };
        let r = engine
            .query(
                "SELECT path, data, mime_type, mime_encoding FROM magic \
                 WHERE path IN ('/usr/local/bin/backup.sh', '/etc/ssl/logo.png') ORDER BY path",
            )
            .unwrap();
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.rows[0][0], t("/etc/ssl/logo.png"));
        assert_eq!(r.rows[0][2], t("image/png"));
        assert_eq!(r.rows[0][3], t("binary"));
        assert!(matches!(&r.rows[0][1], Value::Text(s) if s.starts_with("PNG image data, 1 x 1")));
        assert_eq!(
            r.rows[1],
            vec![
                t("/usr/local/bin/backup.sh"),
                t("POSIX shell script, ASCII text executable"),
                t("text/x-shellscript"),
                t("us-ascii"),
            ]
        );
    }

    #[test]
    fn missing_files_still_have_a_row_naming_the_machine_path() {
        let Some(engine) = engine() else { return };
        let r = engine
            .query("SELECT data FROM magic WHERE path = '/no/such/file'")
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        let Value::Text(data) = &r.rows[0][0] else {
            panic!("{:?}", r.rows)
        };
        assert!(data.contains("/no/such/file"), "{data}");
        assert!(!data.contains("fixtures"), "{data}");
    }

    #[test]
    fn reports_the_database_it_used() {
        let Some(engine) = engine() else { return };
        let r = engine
            .query("SELECT magic_db_files FROM magic WHERE path = '/usr/local/bin/backup.sh'")
            .unwrap();
        let expected = DEFAULT_DBS
            .iter()
            .find(|p| Path::new(p).exists())
            .copied()
            .unwrap_or("");
        assert_eq!(r.rows, vec![vec![t(expected)]]);
    }

    #[test]
    fn reads_this_machine() {
        if ffi::api().is_err() {
            return;
        }
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT mime_type FROM magic WHERE path = '/etc/passwd'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("text/plain")]]);
    }

    #[test]
    fn requires_a_path() {
        let Some(engine) = engine() else { return };
        assert!(engine.query("SELECT * FROM magic").is_err());
    }
}
