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
//! - `path = ...` or `path LIKE ...`: only those files are loaded, after
//!   reading them through the machine seam so a recording captures them; the
//!   rows are the file's node and every node below it (`/files<path>` and
//!   `/files<path>//*`, osquery's patterns). A file that does not exist has
//!   no rows, and augeas is not even opened. A directory's node holds every
//!   file below it, so a directory is answered from a full load;
//! - `node = ...`: the file is worked out from the node (the longest
//!   `/files/...` prefix that is a regular file) and loaded alone; the node
//!   expression is matched as given. A node below a path that does not exist
//!   has no rows; when no file can be worked out (a wildcard, a predicate, a
//!   directory), everything is loaded;
//! - no constraint: everything is loaded (`aug_load`) and `/files//*` is
//!   listed, as osquery does.
//!
//! Loading a few files does not pay for augeas' module autoload, which
//! compiles every lens on the load path (~0.4 s) to learn what each maps:
//! [`lenses`] works out each module's autoload transform from the lens
//! sources once per process, augeas is opened with `AUG_NO_MODL_AUTOLOAD`,
//! and each file is handed the one lens that maps it (`aug_transform`, then
//! `aug_load`), so only that lens's modules are compiled (~5 ms for `Hosts`,
//! ~50 ms for `Shellvars`). A file no lens maps has no rows. When the index
//! cannot tell (several lenses map the file, or a module's transform could not
//! be read) or augeas rejects the lens, the file is loaded as before: a full
//! autoload and `aug_load_file`, which takes the first transform that maps it.
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

mod lenses;

use lenses::Lookup;

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
    let found = candidates.iter().find(|d| d.is_dir()).cloned();
    if found.is_none() {
        // Files only Tend's lenses map (ufw.conf) then give no rows, so a
        // check on them reads as failing: say why, once.
        static WARNED: std::sync::Once = std::sync::Once::new();
        WARNED.call_once(|| {
            tracing::warn!(
                "Tend's augeas lenses are not installed (looked in {candidates:?}; TEND_LENS_DIR names another): files only they map give no rows"
            );
        });
    }
    found
}

/// What a query needs loaded.
#[derive(Debug, PartialEq)]
enum Plan {
    /// Nothing it names exists: no rows, and augeas is not opened.
    Nothing,
    /// These files, which exist and are not directories.
    Files(Vec<PathBuf>),
    /// Everything the lenses map.
    All,
}

/// What to load, and the node expressions to list (joined with `|`).
fn plan(
    ctx: &ScanContext<'_>,
    constraints: &Constraints,
) -> Result<(Plan, BTreeSet<String>), TableError> {
    let fs = ctx.machine.fs.as_ref();
    let mut files: Vec<PathBuf> = Vec::new();
    let mut patterns: BTreeSet<String> = BTreeSet::new();
    let mut load_all = false;
    for path in constrained_paths(ctx, constraints, "path", None)? {
        let text = path.to_string_lossy();
        patterns.insert(format!("/files{text}"));
        patterns.insert(format!("/files{text}//*"));
        match fs.metadata(&path, true) {
            // A directory's node holds the files below it: load them all.
            Ok(m) if m.kind == FileKind::Dir => load_all = true,
            Ok(_) => files.push(path),
            // A file that is not there has no nodes.
            Err(_) => {}
        }
    }
    for node in constraints.eq("node") {
        match file_of_node(ctx, &node) {
            NodeFile::File(file) => files.push(file),
            NodeFile::Missing => {}
            NodeFile::Unknown => load_all = true,
        }
        patterns.insert(node);
    }
    if patterns.is_empty() {
        load_all = true;
        patterns.insert("/files//*".to_string());
    }
    files.sort();
    files.dedup();
    let plan = if load_all {
        Plan::All
    } else if files.is_empty() {
        Plan::Nothing
    } else {
        Plan::Files(files)
    };
    Ok((plan, patterns))
}

fn generate(ctx: &ScanContext<'_>, constraints: &Constraints) -> Result<Vec<Row>, TableError> {
    let fs = ctx.machine.fs.as_ref();
    let (plan, patterns) = plan(ctx, constraints)?;
    let files = match plan {
        Plan::Nothing => return Ok(Vec::new()),
        Plan::Files(files) => Some(files),
        Plan::All => None,
    };
    let load_all = files.is_none();
    let root = fs.host_path(Path::new("/")).ok_or_else(|| {
        TableError::other(
            TABLE_NAME,
            "this machine's files cannot be opened by libaugeas",
        )
    })?;
    let lens_dir = lens_dir();
    let lens_dir = lens_dir.as_deref();

    // Read through the seam first, so that a recording holds the files.
    for file in files.iter().flatten() {
        let _ = fs.read(file);
    }
    ctx.check_deadline()?;
    let targeted = match &files {
        Some(files) => {
            load_targeted(&root, lens_dir, files).map_err(|e| TableError::other(TABLE_NAME, e))?
        }
        None => Targeted::Fallback,
    };
    let aug = match targeted {
        Targeted::Loaded(aug) => aug,
        Targeted::NoLens => return Ok(Vec::new()),
        Targeted::Fallback => {
            let api = ffi::api().map_err(|e| TableError::other(TABLE_NAME, e))?;
            let aug = ffi::Augeas::open(api, &root, lens_dir, true)
                .map_err(|e| TableError::other(TABLE_NAME, format!("initializing augeas: {e}")))?;
            ctx.check_deadline()?;
            match &files {
                None => aug
                    .load()
                    .map_err(|e| TableError::other(TABLE_NAME, format!("loading files: {e}")))?,
                Some(files) => {
                    for file in files {
                        // A file no lens maps has no rows; that is not an error.
                        let _ = aug.load_file(file);
                    }
                }
            }
            aug
        }
    };
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

/// How loading only the lenses some files need went.
enum Targeted {
    /// The files are loaded.
    Loaded(ffi::Augeas),
    /// No lens maps any of them: they have no nodes.
    NoLens,
    /// The index cannot tell, or augeas rejected the lens: load the usual way.
    Fallback,
}

/// Opens augeas without its module autoload and maps each file with the one
/// lens that the [`lenses`] index says maps it. libaugeas is not even loaded
/// when no lens maps any of the files.
fn load_targeted(
    root: &Path,
    lens_dir: Option<&Path>,
    files: &[PathBuf],
) -> Result<Targeted, String> {
    let index = lenses::index(lens_dir);
    let mut plan: Vec<(&str, &Path)> = Vec::new();
    for file in files {
        let text = file.to_string_lossy();
        match index.lookup(&text) {
            Lookup::One(t) => plan.push((&t.lens, file)),
            Lookup::Unmapped => {
                tracing::debug!(file = %text, "augeas: no lens maps this file");
            }
            Lookup::Ambiguous(ts) => {
                let modules: Vec<&str> = ts.iter().map(|t| t.module.as_str()).collect();
                tracing::debug!(
                    file = %text,
                    ?modules,
                    "augeas: several lenses map this file; loading every lens"
                );
                return Ok(Targeted::Fallback);
            }
            Lookup::Unknown => {
                tracing::debug!(
                    file = %text,
                    unresolved = ?index.unresolved,
                    search_path = ?index.search_path,
                    standard_lenses = index.has_standard,
                    "augeas: the lens index is incomplete and has no lens for this file; \
                     loading every lens"
                );
                return Ok(Targeted::Fallback);
            }
        }
    }
    if plan.is_empty() {
        return Ok(Targeted::NoLens);
    }
    let api = ffi::api()?;
    let aug = ffi::Augeas::open(api, root, lens_dir, false)
        .map_err(|e| format!("initializing augeas: {e}"))?;
    for (lens, file) in plan {
        aug.transform(lens, &glob_escape(&file.to_string_lossy()))
            .map_err(|e| format!("mapping {} with {lens}: {e}", file.display()))?;
    }
    aug.load().map_err(|e| format!("loading files: {e}"))?;
    // A lens augeas cannot find or compile is reported on its transform.
    let errors = aug
        .nodes("/augeas/load/*/error")
        .map_err(|e| format!("reading augeas' load errors: {e}"))?;
    if !errors.is_empty() {
        let errors: Vec<String> = errors
            .into_iter()
            .map(|n| format!("{}: {}", n.node, n.value.unwrap_or_default()))
            .collect();
        tracing::debug!(
            ?errors,
            "augeas: a targeted lens failed; loading every lens"
        );
        return Ok(Targeted::Fallback);
    }
    Ok(Targeted::Loaded(aug))
}

/// `path` as a glob(3) pattern that matches only itself.
fn glob_escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The file an augeas node lies in.
#[derive(Debug, PartialEq)]
enum NodeFile {
    /// The longest `/files/...` prefix of the node that is a regular file.
    File(PathBuf),
    /// The node names a path below one that does not exist: no node.
    Missing,
    /// An expression (wildcards, predicates, variables), a node outside
    /// `/files`, or a directory's node.
    Unknown,
}

fn file_of_node(ctx: &ScanContext<'_>, node: &str) -> NodeFile {
    let Some(rest) = node.strip_prefix("/files/") else {
        return NodeFile::Unknown;
    };
    if rest.contains(['*', '[', ']', '$', '|', '(', ')', '\\']) || node.contains("//") {
        return NodeFile::Unknown;
    }
    let fs = ctx.machine.fs.as_ref();
    let mut path = PathBuf::from("/");
    for part in rest.split('/').filter(|p| !p.is_empty()) {
        if part == "." || part == ".." {
            return NodeFile::Unknown;
        }
        path.push(part);
        match fs.metadata(&path, true) {
            Ok(m) if m.kind == FileKind::Dir => {}
            Ok(m) if m.kind == FileKind::File => return NodeFile::File(path),
            // A fifo or device: augeas loads regular files only.
            Ok(_) => return NodeFile::Missing,
            Err(_) => return NodeFile::Missing,
        }
    }
    NodeFile::Unknown
}

/// libaugeas, loaded at run time.
mod ffi {
    use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
    use std::path::Path;
    use std::sync::OnceLock;

    use libloading::Library;

    use crate::tables::util::dylib;

    // augeas.h's `enum aug_flags`.
    const AUG_SAVE_NOOP: c_uint = 1 << 4;
    const AUG_NO_LOAD: c_uint = 1 << 5;
    const AUG_NO_MODL_AUTOLOAD: c_uint = 1 << 6;
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
        transform: unsafe extern "C" fn(*mut Handle, *const c_char, *const c_char, c_int) -> c_int,
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
        // SAFETY: libaugeas' ELF/Mach-O initializers only set up the
        // library's own state, and `resolve` declares augeas.h's prototypes
        // and keeps the library in the Api.
        unsafe { dylib::open_first(LIBRARIES, PACKAGE, resolve) }
    }

    fn resolve(lib: Library) -> Result<Api, libloading::Error> {
        // SAFETY: each symbol is declared with the C prototype augeas.h gives
        // it (augeas >= 1.11 for aug_ns_attr, >= 1.13 for aug_load_file,
        // aug_transform is older); the
        // pointers are copied out and stay valid because `lib` is kept in
        // the returned Api, which lives in a static and is never unloaded.
        unsafe {
            Ok(Api {
                init: *lib.get(b"aug_init\0")?,
                close: *lib.get(b"aug_close\0")?,
                load: *lib.get(b"aug_load\0")?,
                load_file: *lib.get(b"aug_load_file\0")?,
                transform: *lib.get(b"aug_transform\0")?,
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
        /// `aug_init(root, loadpath, AUG_NO_LOAD | AUG_NO_ERR_CLOSE |
        /// AUG_SAVE_NOOP)`, plus `AUG_NO_MODL_AUTOLOAD` unless `autoload`
        /// (then no module is compiled until a transform names its lens).
        pub fn open(
            api: &'static Api,
            root: &Path,
            lenses: Option<&Path>,
            autoload: bool,
        ) -> Result<Augeas, String> {
            let root = path_cstring(root)?;
            let loadpath = lenses.map(path_cstring).transpose()?;
            let mut flags = AUG_NO_LOAD | AUG_NO_ERR_CLOSE | AUG_SAVE_NOOP;
            if !autoload {
                flags |= AUG_NO_MODL_AUTOLOAD;
            }
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

        /// Maps the files matching `glob` with `lens` (`Module.lens`) on the
        /// next load (`aug_transform(lens, glob, excl = 0)`).
        pub fn transform(&self, lens: &str, glob: &str) -> Result<(), String> {
            let l = cstring(lens)?;
            let g = cstring(glob)?;
            // SAFETY: a live handle and NUL-terminated strings, copied by augeas.
            let rc = unsafe { (self.api.transform)(self.handle, l.as_ptr(), g.as_ptr(), 0) };
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
    use crate::sql::table::{Constraint, Op, Value};
    use crate::tables::util::testing::{fixture, text as t};

    const SEED: &str = "SELECT COUNT(*) AS passed FROM augeas WHERE path = '/etc/ufw/ufw.conf' \
                        AND label = 'ENABLED' AND value = 'yes';";

    /// The fixture machine, or `None` (with a note) when libaugeas is missing.
    fn engine(which: &str) -> Option<Engine> {
        if let Err(e) = ffi::api() {
            eprintln!("skipping: {e}");
            return None;
        }
        Some(Engine::new(fixture(&format!("augeas/{which}"))).unwrap())
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

    fn plan_for(machine: &Machine, column: &str, value: &str) -> Plan {
        let ctx = ScanContext {
            machine,
            deadline: None,
            used: None,
        };
        let constraints = Constraints(vec![Constraint {
            column: column.into(),
            op: Op::Eq,
            value: t(value),
        }]);
        plan(&ctx, &constraints).unwrap().0
    }

    #[test]
    fn plans_only_the_files_a_query_names() {
        let m = fixture("augeas/ufw_enabled");
        let ufw = PathBuf::from("/etc/ufw/ufw.conf");
        assert_eq!(plan_for(&m, "path", "/etc/ufw/nothing.conf"), Plan::Nothing);
        assert_eq!(
            plan_for(&m, "path", "/etc/ufw/ufw.conf"),
            Plan::Files(vec![ufw.clone()])
        );
        assert_eq!(plan_for(&m, "path", "/etc/ufw"), Plan::All);
        assert_eq!(
            plan_for(&m, "node", "/files/etc/ufw/ufw.conf/ENABLED"),
            Plan::Files(vec![ufw])
        );
        assert_eq!(plan_for(&m, "node", "/files/etc/nothing/x"), Plan::Nothing);
        assert_eq!(plan_for(&m, "node", "/files//ENABLED"), Plan::All);
        assert_eq!(plan_for(&m, "node", "/files/etc/ufw"), Plan::All);
    }

    #[test]
    fn a_missing_file_has_no_rows() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        let r = engine
            .query("SELECT COUNT(*) FROM augeas WHERE path = '/etc/ufw/nothing.conf'")
            .unwrap();
        assert_eq!(r.rows, vec![vec![Value::Integer(0)]]);
    }

    #[test]
    fn targeted_loads_match_the_full_load() {
        let Some(engine) = engine("ufw_enabled") else {
            return;
        };
        for file in ["/etc/ufw/ufw.conf", "/etc/default/ufw"] {
            let sorted = |sql: String| {
                let mut rows = engine.query(&sql).unwrap().rows;
                rows.sort_by_key(|r| format!("{r:?}"));
                rows
            };
            // `path || ''` is no constraint SQLite can push down: a full scan.
            let targeted = sorted(format!("SELECT * FROM augeas WHERE path = '{file}'"));
            let full = sorted(format!("SELECT * FROM augeas WHERE path || '' = '{file}'"));
            assert!(targeted.len() > 3, "{file}: {targeted:?}");
            assert_eq!(targeted, full, "{file}");
        }
    }

    #[test]
    fn escapes_globs() {
        assert_eq!(glob_escape("/etc/a[1]*?\\b"), "/etc/a\\[1\\]\\*\\?\\\\b");
        assert_eq!(glob_escape("/etc/hosts"), "/etc/hosts");
    }

    /// The lens index against augeas' own mapping, where augtool is installed:
    /// every autoload transform augeas sets up (`/augeas/load/<module>`), with
    /// the same lens module and the same incl/excl in the same order.
    #[test]
    fn the_lens_index_agrees_with_augeas() {
        let Some(dir) = lens_dir() else { return };
        let dir_text = dir.to_string_lossy().into_owned();
        let Ok(out) = Machine::real().commands.run(
            "augtool",
            &["-L", "-I", dir_text.as_str(), "print", "/augeas/load"],
        ) else {
            eprintln!("skipping: no augtool");
            return;
        };
        assert_eq!(out.status, 0, "{}", out.stderr);
        let mut truth: std::collections::BTreeMap<String, Vec<lenses::Glob>> = Default::default();
        for line in out.stdout.lines() {
            let Some((key, value)) = line.split_once(" = ") else {
                continue;
            };
            let value = value.trim_matches('"').to_string();
            let mut parts = key.trim_start_matches("/augeas/load/").split('/');
            let (Some(module), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let entry = truth.entry(module.to_string()).or_default();
            let include = kind.starts_with("incl");
            if include || kind.starts_with("excl") {
                entry.push(lenses::normalize(lenses::Glob {
                    include,
                    pattern: value,
                }));
            }
        }
        let index = lenses::index(Some(&dir));
        let mut agree = 0;
        let mut differ = Vec::new();
        for (module, filter) in &truth {
            match index.transforms.iter().find(|x| &x.module == module) {
                Some(x) if &x.filter == filter => agree += 1,
                Some(x) => differ.push(format!("{module}: {:?} != {filter:?}", x.filter)),
                None => differ.push(format!("{module}: not in the index")),
            }
        }
        let extra: Vec<&str> = index
            .transforms
            .iter()
            .map(|x| x.module.as_str())
            .filter(|m| !truth.contains_key(*m))
            .collect();
        eprintln!(
            "lens index: {agree} of {} augeas transforms agree; unresolved: {:?}",
            truth.len(),
            index.unresolved
        );
        assert!(differ.is_empty(), "{differ:#?}");
        assert!(extra.is_empty(), "{extra:?}");
        assert!(index.is_complete(), "{:?}", index.unresolved);

        let lens_for = |path: &str| match index.lookup(path) {
            Lookup::One(x) => x.lens.clone(),
            other => format!("{other:?}"),
        };
        assert_eq!(lens_for("/etc/ufw/ufw.conf"), "Tend_extra.lns");
        assert_eq!(lens_for("/etc/default/ufw"), "Shellvars.lns");
        assert_eq!(lens_for("/etc/hosts"), "Hosts.lns");
        assert_eq!(lens_for("/etc/ssh/sshd_config"), "Sshd.lns");
        assert!(matches!(
            index.lookup("/etc/default/ufw.dpkg-old"),
            Lookup::Unmapped
        ));
        assert!(matches!(index.lookup("/nowhere/file"), Lookup::Unmapped));
    }
}
