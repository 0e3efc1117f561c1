//! `augeas`: configuration files as augeas trees (osquery's `augeas`).
//!
//! Like osquery, Tend asks libaugeas: every node under `/files` becomes a row
//! with its augeas path (`node`), `value` and `label` (empty text when augeas
//! has none, as osquery prints them) and the file it belongs to (`path`).
//!
//! libaugeas is loaded when the table is first queried (`dlopen` of
//! `libaugeas.so.0`, or `libaugeas.0.dylib` on macOS, through `libloading`):
//! the build needs no headers or libclang, cross builds are unaffected, and a
//! machine without the library still runs every other table — this one then
//! fails with an error naming the library and the package that provides it.
//!
//! Loading follows osquery: augeas is opened on the machine's root (for a
//! recording, the recording's `root/` directory, through
//! [`Fs::host_path`](crate::os::Fs::host_path)) with `AUG_NO_LOAD`, and then
//!
//! - `path = ...` or `path LIKE ...`: only those files are loaded
//!   (`aug_load_file`), after reading them through the machine seam so a
//!   recording captures them; the rows are the file's node and every node
//!   below it (`/files<path>` and `/files<path>//*`, osquery's patterns). A
//!   directory's node holds every file below it, so a directory is answered
//!   from a full load;
//! - `node = ...`: the file is worked out from the node (the longest
//!   `/files/...` prefix that is a regular file) and loaded alone; the node
//!   expression is matched as given. When no file can be worked out (a
//!   wildcard, a predicate), everything is loaded;
//! - no constraint: everything is loaded (`aug_load`) and `/files//*` is
//!   listed, as osquery does.
//!
//! After a full load the files that produced rows are read through the
//! machine seam, so that a recording captures them as well.
//!
//! The lenses are augeas' own (its standard directories stay on the load
//! path) plus Tend's, which map files the stock lenses do not (`tend_extra`:
//! `/etc/ufw/ufw.conf`, read by the Linux firewall check). Tend's lens
//! directory is the first that exists of: `$TEND_LENS_DIR`,
//! `<executable's dir>/../share/tend/lenses`, `/usr/share/tend/lenses`,
//! `/usr/lib/tend/lenses`, and, for development builds, the source tree's
//! `agent/lenses`. osquery ships its own copy of the lenses
//! (`/usr/share/osquery/lenses`) and uses `AUG_NO_STDINC`; its copy has no
//! ufw lens, so on osquery the ufw check finds no rows.
//!
//! An invalid `node` expression is an error naming augeas' message (osquery
//! logs it and returns no rows).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::os::FileKind;
use crate::sql::table::{
    Column, Constraints, Platforms, Row, RowBuilder, ScanContext, TableDef, TableError, col,
};
use crate::tables::util::paths::constrained_paths;

pub static TABLE: TableDef = TableDef {
    name: "augeas",
    columns: COLUMNS,
    platforms: Platforms::POSIX,
    generate,
};

pub(crate) static COLUMNS: &[Column] = &[
    col::text("node").index(),
    col::text("value"),
    col::text("label"),
    col::text("path").additional(),
];

const TABLE_NAME: &str = "augeas";

/// Tend's lens directory, or `None` when none is installed.
pub fn lens_dir() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("TEND_LENS_DIR") {
        candidates.push(dir.into());
    }
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        candidates.push(bin.join("../share/tend/lenses"));
    }
    candidates.push("/usr/share/tend/lenses".into());
    candidates.push("/usr/lib/tend/lenses".into());
    candidates.push(concat!(env!("CARGO_MANIFEST_DIR"), "/lenses").into());
    candidates.into_iter().find(|d| d.is_dir())
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let root = fs.host_path(Path::new("/")).ok_or_else(|| {
        TableError::other(
            TABLE_NAME,
            "this machine's files cannot be opened by libaugeas",
        )
    })?;
    let api = ffi::api().map_err(|e| TableError::other(TABLE_NAME, e))?;
    let aug = ffi::Augeas::open(api, &root, lens_dir().as_deref())
        .map_err(|e| TableError::other(TABLE_NAME, format!("initializing augeas: {e}")))?;

    // What to load, and which nodes to list.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut patterns: BTreeSet<String> = BTreeSet::new();
    let mut load_all = false;
    for path in constrained_paths(ctx, constraints, "path", None)? {
        let text = path.to_string_lossy();
        patterns.insert(format!("/files{text}"));
        patterns.insert(format!("/files{text}//*"));
        // A directory's node holds the files below it: load them all.
        if fs
            .metadata(&path, true)
            .is_ok_and(|m| m.kind == FileKind::Dir)
        {
            load_all = true;
        }
        files.push(path);
    }
    for node in constraints.eq("node") {
        match file_of_node(ctx, &node) {
            Some(file) => files.push(file),
            None => load_all = true,
        }
        patterns.insert(node);
    }
    if patterns.is_empty() {
        load_all = true;
        patterns.insert("/files//*".to_string());
    }

    ctx.check_deadline()?;
    if load_all {
        aug.load()
            .map_err(|e| TableError::other(TABLE_NAME, format!("loading files: {e}")))?;
    } else {
        for file in &files {
            // Read through the seam first, so that a recording holds the file.
            let _ = fs.read(file);
            // A file no lens maps has no rows; that is not an error.
            let _ = aug.load_file(file);
        }
    }
    ctx.check_deadline()?;

    let expr = patterns.into_iter().collect::<Vec<_>>().join("|");
    let nodes = aug
        .nodes(&expr)
        .map_err(|e| TableError::other(TABLE_NAME, format!("matching {expr}: {e}")))?;
    let mut rows = Vec::with_capacity(nodes.len());
    let mut seen_files = BTreeSet::new();
    for n in nodes {
        let path = n
            .file
            .as_deref()
            .unwrap_or(&n.node)
            .get("/files".len()..)
            .unwrap_or("")
            .to_string();
        if load_all && n.file.is_some() {
            seen_files.insert(path.clone());
        }
        let mut r = RowBuilder::new(COLUMNS);
        r.set("node", n.node)
            .set("value", n.value.unwrap_or_default())
            .set("label", n.label.unwrap_or_default())
            .set("path", path);
        rows.push(r.build());
    }
    // After a full load, let a recording capture the files that made rows.
    for file in seen_files {
        ctx.check_deadline()?;
        let _ = fs.read(Path::new(&file));
    }
    Ok(rows)
}

/// The file an augeas node lies in: the longest `/files/...` prefix of it
/// that is a regular file on the machine. `None` for expressions (wildcards,
/// predicates, variables) and nodes outside `/files`.
fn file_of_node(ctx: &ScanContext<'_>, node: &str) -> Option<PathBuf> {
    let rest = node.strip_prefix("/files/")?;
    if rest.contains(['*', '[', ']', '$', '|', '(', ')']) {
        return None;
    }
    let fs = ctx.machine.fs.as_ref();
    let mut path = PathBuf::from("/");
    let mut best = None;
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        path.push(part);
        match fs.metadata(&path, true) {
            Ok(m) if m.kind == FileKind::File => best = Some(path.clone()),
            Ok(m) if m.kind == FileKind::Dir => {}
            _ => break,
        }
    }
    best
}

/// libaugeas, loaded at run time.
mod ffi {
    use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
    use std::path::Path;
    use std::sync::OnceLock;

    use libloading::Library;

    const AUG_SAVE_NOOP: c_uint = 1 << 4;
    const AUG_NO_LOAD: c_uint = 1 << 5;
    const AUG_NO_ERR_CLOSE: c_uint = 1 << 8;
    const AUG_NOERROR: c_int = 0;

    #[cfg(target_os = "macos")]
    const LIBRARIES: &[&str] = &[
        "libaugeas.0.dylib",
        "/opt/homebrew/lib/libaugeas.0.dylib",
        "/usr/local/lib/libaugeas.0.dylib",
    ];
    #[cfg(not(target_os = "macos"))]
    const LIBRARIES: &[&str] = &["libaugeas.so.0"];

    #[cfg(target_os = "macos")]
    const PACKAGE: &str = "install augeas with Homebrew (`brew install augeas`)";
    #[cfg(not(target_os = "macos"))]
    const PACKAGE: &str =
        "install the libaugeas0 package (Debian, Ubuntu) or augeas-libs (Fedora, RHEL)";

    type Handle = c_void;

    /// The functions Tend calls, with the library kept loaded.
    pub struct Api {
        _lib: Library,
        init: unsafe extern "C" fn(*const c_char, *const c_char, c_uint) -> *mut Handle,
        close: unsafe extern "C" fn(*mut Handle),
        load: unsafe extern "C" fn(*mut Handle) -> c_int,
        load_file: unsafe extern "C" fn(*mut Handle, *const c_char) -> c_int,
        defvar: unsafe extern "C" fn(*mut Handle, *const c_char, *const c_char) -> c_int,
        matches: unsafe extern "C" fn(*const Handle, *const c_char, *mut *mut *mut c_char) -> c_int,
        ns_attr: unsafe extern "C" fn(
            *const Handle,
            *const c_char,
            c_int,
            *mut *const c_char,
            *mut *const c_char,
            *mut *mut c_char,
        ) -> c_int,
        error: unsafe extern "C" fn(*mut Handle) -> c_int,
        error_message: unsafe extern "C" fn(*mut Handle) -> *const c_char,
        error_details: unsafe extern "C" fn(*mut Handle) -> *const c_char,
    }

    static API: OnceLock<Result<Api, String>> = OnceLock::new();

    /// libaugeas, loaded once per process.
    pub fn api() -> Result<&'static Api, String> {
        API.get_or_init(load).as_ref().map_err(Clone::clone)
    }

    fn load() -> Result<Api, String> {
        let mut errors = Vec::new();
        for name in LIBRARIES {
            // SAFETY: loading libaugeas runs its ELF/Mach-O initializers, which
            // only set up the library's own state; nothing else is affected.
            match unsafe { Library::new(name) } {
                Ok(lib) => return resolve(lib).map_err(|e| format!("{name}: {e}")),
                Err(e) => errors.push(e.to_string()),
            }
        }
        Err(format!(
            "{} could not be loaded ({PACKAGE}): {}",
            LIBRARIES[0],
            errors.join("; ")
        ))
    }

    fn resolve(lib: Library) -> Result<Api, libloading::Error> {
        // SAFETY: each symbol is declared with the C prototype augeas.h gives
        // it (augeas >= 1.11 for aug_ns_attr, >= 1.13 for aug_load_file); the
        // pointers are copied out and stay valid because `lib` is kept in
        // the returned Api, which lives in a static and is never unloaded.
        unsafe {
            Ok(Api {
                init: *lib.get(b"aug_init\0")?,
                close: *lib.get(b"aug_close\0")?,
                load: *lib.get(b"aug_load\0")?,
                load_file: *lib.get(b"aug_load_file\0")?,
                defvar: *lib.get(b"aug_defvar\0")?,
                matches: *lib.get(b"aug_match\0")?,
                ns_attr: *lib.get(b"aug_ns_attr\0")?,
                error: *lib.get(b"aug_error\0")?,
                error_message: *lib.get(b"aug_error_message\0")?,
                error_details: *lib.get(b"aug_error_details\0")?,
                _lib: lib,
            })
        }
    }

    fn cstring(s: &str) -> Result<CString, String> {
        CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
    }

    fn path_cstring(p: &Path) -> Result<CString, String> {
        cstring(&p.to_string_lossy())
    }

    /// Copies a C string that may be NULL.
    ///
    /// SAFETY: `p` is NULL or points to a NUL-terminated string that stays
    /// valid for the duration of the call.
    unsafe fn text(p: *const c_char) -> Option<String> {
        if p.is_null() {
            None
        } else {
            // SAFETY: non-NULL and NUL-terminated, per the function's contract.
            Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
        }
    }

    /// One matched node.
    pub struct Node {
        pub node: String,
        pub value: Option<String>,
        pub label: Option<String>,
        /// `/files/...` of the file the node belongs to; `None` for directories.
        pub file: Option<String>,
    }

    /// An open augeas handle, closed on drop. Not shared between threads.
    pub struct Augeas {
        api: &'static Api,
        handle: *mut Handle,
    }

    impl Drop for Augeas {
        fn drop(&mut self) {
            // SAFETY: `handle` came from aug_init, is non-NULL, and is closed once.
            unsafe { (self.api.close)(self.handle) }
        }
    }

    impl Augeas {
        /// `aug_init(root, loadpath, AUG_NO_LOAD | AUG_NO_ERR_CLOSE | AUG_SAVE_NOOP)`.
        pub fn open(
            api: &'static Api,
            root: &Path,
            lenses: Option<&Path>,
        ) -> Result<Augeas, String> {
            let root = path_cstring(root)?;
            let loadpath = lenses.map(path_cstring).transpose()?;
            let flags = AUG_NO_LOAD | AUG_NO_ERR_CLOSE | AUG_SAVE_NOOP;
            // SAFETY: both strings are NUL-terminated and outlive the call;
            // a NULL loadpath means "the standard directories only".
            let handle = unsafe {
                (api.init)(
                    root.as_ptr(),
                    loadpath.as_ref().map_or(std::ptr::null(), |l| l.as_ptr()),
                    flags,
                )
            };
            if handle.is_null() {
                return Err("aug_init failed".into());
            }
            let aug = Augeas { api, handle };
            aug.check()?;
            Ok(aug)
        }

        /// The handle's error, if it has one.
        fn check(&self) -> Result<(), String> {
            // SAFETY: a live handle; the messages are owned by augeas and
            // copied before any other call.
            unsafe {
                if (self.api.error)(self.handle) == AUG_NOERROR {
                    return Ok(());
                }
                let message = text((self.api.error_message)(self.handle)).unwrap_or_default();
                match text((self.api.error_details)(self.handle)) {
                    Some(d) if !d.is_empty() => Err(format!("{message}: {d}")),
                    _ => Err(message),
                }
            }
        }

        fn status(&self, rc: c_int) -> Result<(), String> {
            if rc < 0 {
                self.check()?;
                return Err("augeas reported a failure".into());
            }
            Ok(())
        }

        /// Loads every file the lenses map (`aug_load`).
        pub fn load(&self) -> Result<(), String> {
            // SAFETY: a live handle.
            let rc = unsafe { (self.api.load)(self.handle) };
            self.status(rc)
        }

        /// Loads one file (`aug_load_file`); an error when no lens maps it.
        pub fn load_file(&self, file: &Path) -> Result<(), String> {
            let f = path_cstring(file)?;
            // SAFETY: a live handle and a NUL-terminated path.
            let rc = unsafe { (self.api.load_file)(self.handle, f.as_ptr()) };
            self.status(rc)
        }

        /// Every node matching `expr`, with its value, label and file.
        pub fn nodes(&self, expr: &str) -> Result<Vec<Node>, String> {
            let var = cstring("matches")?;
            let e = cstring(expr)?;
            // SAFETY: a live handle and NUL-terminated strings.
            let rc = unsafe { (self.api.defvar)(self.handle, var.as_ptr(), e.as_ptr()) };
            self.status(rc)?;
            let all = cstring("$matches")?;
            let mut list: *mut *mut c_char = std::ptr::null_mut();
            // SAFETY: a live handle; augeas allocates `list` and its strings
            // with malloc and hands them to us.
            let n = unsafe { (self.api.matches)(self.handle, all.as_ptr(), &mut list) };
            if n < 0 || list.is_null() {
                self.status(n)?;
                return Ok(Vec::new());
            }
            let mut out = Vec::with_capacity(n as usize);
            let mut failure = None;
            for i in 0..n {
                // SAFETY: `list` holds `n` entries, each a malloc'ed string
                // (or NULL) that we own and free exactly once.
                let node = unsafe {
                    let p = *list.add(i as usize);
                    let s = text(p);
                    libc::free(p.cast());
                    s
                };
                let Some(node) = node else { continue };
                if failure.is_some() {
                    continue;
                }
                let mut value: *const c_char = std::ptr::null();
                let mut label: *const c_char = std::ptr::null();
                let mut file: *mut c_char = std::ptr::null_mut();
                // SAFETY: a live handle, the variable defined above and an
                // index below its size; value and label are owned by augeas
                // and copied before the next call; file is malloc'ed for us.
                let attrs = unsafe {
                    let rc = (self.api.ns_attr)(
                        self.handle,
                        var.as_ptr(),
                        i,
                        &mut value,
                        &mut label,
                        &mut file,
                    );
                    let got = (rc >= 0).then(|| (text(value), text(label), text(file)));
                    libc::free(file.cast());
                    got
                };
                match attrs {
                    Some((value, label, file)) => out.push(Node {
                        node,
                        value,
                        label,
                        file,
                    }),
                    None => {
                        failure = Some(
                            self.check()
                                .err()
                                .unwrap_or_else(|| "aug_ns_attr failed".into()),
                        )
                    }
                }
            }
            // SAFETY: the array itself was malloc'ed by aug_match; its
            // entries were freed above.
            unsafe { libc::free(list.cast()) };
            match failure {
                Some(e) => Err(e),
                None => Ok(out),
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

    const SEED: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' \
                        AND label = 'ENABLED' AND value = 'yes';";

    /// The fixture machine, or `None` (with a note) when libaugeas is missing.
    fn engine(which: &str) -> Option<Engine> {
        if let Err(e) = ffi::api() {
            eprintln!("skipping: {e}");
            return None;
        }
        let dir = format!(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../tests/fixtures/tables/augeas/{}"
            ),
            which
        );
        Some(Engine::new(Machine::snapshot(Path::new(&dir)).unwrap()).unwrap())
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn finds_the_lens_directory() {
        let dir = lens_dir().expect("the source tree's lenses");
        assert!(dir.join("tend_extra.aug").is_file());
    }

    #[test]
    fn seed_query_passes_when_ufw_is_enabled() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        assert_eq!(
            engine.query(SEED).unwrap().rows,
            vec![vec![Value::Integer(1)]]
        );
    }

    #[test]
    fn seed_query_fails_when_ufw_is_disabled() {
        let Some(engine) = engine("ufw_disabled") else {
            return;
        };
        assert_eq!(
            engine.query(SEED).unwrap().rows,
            vec![vec![Value::Integer(0)]]
        );
    }

    #[test]
    fn rows_are_osquery_rows() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        let r = engine
            .query("SELECT node, value, label, path FROM augeas WHERE path = '/etc/ufw/ufw.conf'")
            .unwrap();
        assert!(r.rows.contains(&vec![
            t("/files/etc/ufw/ufw.conf/ENABLED"),
            t("yes"),
            t("ENABLED"),
            t("/etc/ufw/ufw.conf"),
        ]));
        // The file's own node comes too, with empty value (osquery's "/files<path>").
        assert!(r.rows.contains(&vec![
            t("/files/etc/ufw/ufw.conf"),
            t(""),
            t("ufw.conf"),
            t("/etc/ufw/ufw.conf")
        ]));
        assert!(r.rows.contains(&vec![
            t("/files/etc/ufw/ufw.conf/LOGLEVEL"),
            t("low"),
            t("LOGLEVEL"),
            t("/etc/ufw/ufw.conf"),
        ]));
    }

    #[test]
    fn node_constraint_loads_the_file_it_names() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        let r = engine
            .query("SELECT value, path FROM augeas WHERE node = '/files/etc/ufw/ufw.conf/ENABLED'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("yes"), t("/etc/ufw/ufw.conf")]]);
    }

    #[test]
    fn stock_lenses_still_work() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        // /etc/default/ufw is mapped by augeas' own Shellvars lens.
        let r = engine
            .query("SELECT value FROM augeas WHERE path = '/etc/default/ufw' AND label = 'DEFAULT_INPUT_POLICY'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("\"DROP\"")]]);
    }

    #[test]
    fn a_directory_path_is_its_node() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        let r = engine
            .query("SELECT node, value, label FROM augeas WHERE path = '/etc/ufw'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("/files/etc/ufw"), t(""), t("ufw")]]);
    }

    #[test]
    fn reads_this_machine() {
        if ffi::api().is_err() || !Path::new("/etc/hosts").is_file() {
            return;
        }
        let engine = Engine::new(Machine::real()).unwrap();
        let r = engine
            .query("SELECT COUNT(*) FROM augeas WHERE path = '/etc/hosts' AND label = 'ipaddr'")
            .unwrap();
        assert!(
            matches!(r.rows[0][0], Value::Integer(n) if n > 0),
            "{:?}",
            r.rows
        );
    }

    #[test]
    fn unconstrained_scan_lists_every_mapped_file() {
        let Some(engine) = engine("ufw_disabled") else {
            return;
        };
        let r = engine
            .query("SELECT DISTINCT path FROM augeas WHERE label = 'ENABLED'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![t("/etc/ufw/ufw.conf")]]);
    }
}
