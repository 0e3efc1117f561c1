//! Which lens maps a file, without asking augeas.
//!
//! `aug_init` compiles every module on its load path to learn the files each
//! autoload transform maps (~0.4 s for the ~230 stock modules), even when a
//! query is about one file. This index reads the same modules' sources once
//! per process and works out each autoload transform's lens and filter, so
//! that the table can open augeas with `AUG_NO_MODL_AUTOLOAD` and hand it
//! just the lens the file needs (`aug_transform`).
//!
//! The modules are found as augeas finds them: Tend's lens directory, then
//! `$AUGEAS_LENS_LIB`, then the standard `…/share/augeas/lenses` and its
//! `dist`; of two files with one name, the first on that path wins. These
//! are the host's files (the tool that reads the machine, like libaugeas
//! itself), so they are read with `std::fs`, not through the machine.
//!
//! Only the part of the lens language that filters are written in is
//! evaluated: `module M =`, `autoload x`, `let x = e` and
//! `let f (a:string) … = e`, and in expressions `transform LENS FILTER`,
//! `incl`/`excl` of a string, `.` (joining filters, or strings), brackets,
//! names (local, or `Module.name`), applying a `let` function, string
//! literals and `Sys.getenv`. A module whose transform needs more is listed
//! in [`LensIndex::unresolved`], and a file no resolved transform maps is
//! then [`Lookup::Unknown`] rather than unmapped.
//!
//! Matching follows `aug_load` (augeas' `filter_generate`): a file is mapped
//! when one `incl` glob matches it (glob(3): wildcards match neither `/` nor
//! a leading `.`) and no `excl` does (fnmatch(3) with `FNM_PATHNAME`; an
//! `excl` without `/` is matched against the file's base name, and, as in
//! augeas, every `excl` after such a one is too).

use std::cell::OnceCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// One `incl` or `excl` of a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Glob {
    pub include: bool,
    pub pattern: String,
}

/// A module's autoload transform.
#[derive(Clone, Debug)]
pub struct Transform {
    /// The module's name (`Shellvars`), as in `/augeas/load/<module>`.
    pub module: String,
    /// The lens for `aug_transform`, qualified (`Shellvars.lns`).
    pub lens: String,
    /// The filter's `incl`s and `excl`s, in order, made absolute as augeas
    /// does when loading.
    pub filter: Vec<Glob>,
}

impl Transform {
    /// Whether `aug_load` would load `path` (an absolute path on the
    /// machine) with this transform, if it is a regular file.
    pub fn maps(&self, path: &str) -> bool {
        if !self
            .filter
            .iter()
            .any(|g| g.include && fnmatch(&g.pattern, path, true))
        {
            return false;
        }
        let mut subject = path;
        for g in self.filter.iter().filter(|g| !g.include) {
            if !g.pattern.contains('/') {
                subject = subject.rsplit('/').next().unwrap_or(subject);
            }
            if fnmatch(&g.pattern, subject, false) {
                return false;
            }
        }
        true
    }
}

/// The autoload transforms of every module on the load path.
#[derive(Debug, Default)]
pub struct LensIndex {
    /// The directories searched, in order.
    pub search_path: Vec<PathBuf>,
    pub transforms: Vec<Transform>,
    /// Modules with an autoload transform this index could not work out,
    /// with the reason.
    pub unresolved: Vec<(String, String)>,
    /// Whether augeas' standard lens directory was found.
    pub has_standard: bool,
}

/// What the index says about a file.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Exactly one transform maps it.
    One(&'a Transform),
    /// No transform maps it, and the index is complete.
    Unmapped,
    /// Several transforms map it (augeas then refuses to load it on a full
    /// load, and `aug_load_file` takes the first).
    Ambiguous(Vec<&'a Transform>),
    /// No resolved transform maps it, but some modules could not be read.
    Unknown,
}

impl LensIndex {
    /// Whether every module's transform was worked out.
    pub fn is_complete(&self) -> bool {
        self.has_standard && self.unresolved.is_empty()
    }

    pub fn lookup(&self, path: &str) -> Lookup<'_> {
        let found: Vec<&Transform> = self.transforms.iter().filter(|t| t.maps(path)).collect();
        match found.len() {
            0 if self.is_complete() => Lookup::Unmapped,
            0 => Lookup::Unknown,
            1 => Lookup::One(found[0]),
            _ => Lookup::Ambiguous(found),
        }
    }

    /// Reads the modules in `dirs` (earlier directories first).
    pub fn build(dirs: &[PathBuf], has_standard: bool) -> LensIndex {
        let mut sources: Vec<Source> = Vec::new();
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "aug"))
                .collect();
            files.sort();
            for path in files {
                // augeas names a module file by its name up to the first dot.
                let Some(stem) = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .and_then(|n| n.split('.').next())
                    .map(str::to_ascii_lowercase)
                else {
                    continue;
                };
                if by_name.contains_key(&stem) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                by_name.insert(stem, sources.len());
                sources.push(Source {
                    path,
                    text,
                    parsed: OnceCell::new(),
                });
            }
        }
        let eval = Eval {
            sources: &sources,
            by_name: &by_name,
        };
        let mut index = LensIndex {
            search_path: dirs.to_vec(),
            has_standard,
            ..LensIndex::default()
        };
        for (i, source) in sources.iter().enumerate() {
            // Cheap pre-check: most work is tokenizing, and a module without
            // the word cannot autoload.
            if !source.text.contains("autoload") {
                continue;
            }
            let name = source
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            match eval.autoload(i) {
                Ok(Some(t)) => index.transforms.push(t),
                Ok(None) => {}
                Err(e) => index.unresolved.push((name, e)),
            }
        }
        index
    }
}

/// The standard lens directories' parent (`…/share/augeas/lenses`), the
/// first that exists of where libaugeas is installed on this platform.
fn standard_dir() -> Option<PathBuf> {
    #[cfg(target_os = "macos")]
    const CANDIDATES: &[&str] = &[
        "/opt/homebrew/share/augeas/lenses",
        "/usr/local/share/augeas/lenses",
        "/usr/share/augeas/lenses",
    ];
    #[cfg(not(target_os = "macos"))]
    const CANDIDATES: &[&str] = &["/usr/share/augeas/lenses", "/usr/local/share/augeas/lenses"];
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("dist").is_dir())
}

/// augeas' module search path with Tend's lens directory first: the
/// directory given to `aug_init`, `$AUGEAS_LENS_LIB`, the standard ones.
/// The flag says whether the standard directories were found.
pub fn search_path(tend: Option<&Path>) -> (Vec<PathBuf>, bool) {
    let mut dirs: Vec<PathBuf> = tend.map(Path::to_path_buf).into_iter().collect();
    if let Some(env) = std::env::var_os("AUGEAS_LENS_LIB") {
        dirs.extend(std::env::split_paths(&env).filter(|p| !p.as_os_str().is_empty()));
    }
    let standard = standard_dir();
    let found = standard.is_some();
    if let Some(std) = standard {
        dirs.push(std.clone());
        dirs.push(std.join("dist"));
    }
    (dirs, found)
}

/// The index for Tend's lens directory and augeas' own, built once per process.
pub fn index(tend: Option<&Path>) -> &'static LensIndex {
    static INDEX: OnceLock<LensIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let started = std::time::Instant::now();
        let (dirs, has_standard) = search_path(tend);
        let index = LensIndex::build(&dirs, has_standard);
        tracing::debug!(
            transforms = index.transforms.len(),
            unresolved = ?index.unresolved,
            standard = has_standard,
            elapsed_us = started.elapsed().as_micros() as u64,
            "augeas lens index built"
        );
        index
    })
}

/// Shell-style matching as fnmatch(3) with `FNM_PATHNAME` (wildcards and
/// brackets never match `/`), and with `period` also `FNM_PERIOD` (nor a
/// `.` that starts a path component), which is how glob(3) matches.
pub fn fnmatch(pattern: &str, text: &str, period: bool) -> bool {
    // Most patterns start with a literal directory that rules most paths out.
    let literal = pattern.find(['*', '?', '[', '\\']).unwrap_or(pattern.len());
    if !text.starts_with(&pattern[..literal]) {
        return false;
    }
    if literal == pattern.len() {
        return text.len() == literal;
    }
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = text.chars().collect();
    match_from(&p, &s, 0, 0, period)
}

fn match_from(p: &[char], s: &[char], mut pi: usize, mut si: usize, period: bool) -> bool {
    let leading_dot = |si: usize| period && s[si] == '.' && (si == 0 || s[si - 1] == '/');
    while pi < p.len() {
        match p[pi] {
            '*' => {
                while pi < p.len() && p[pi] == '*' {
                    pi += 1;
                }
                if si < s.len() && leading_dot(si) {
                    return false;
                }
                // Any run of characters up to the next '/'.
                let mut end = si;
                loop {
                    if match_from(p, s, pi, end, period) {
                        return true;
                    }
                    if end == s.len() || s[end] == '/' {
                        return false;
                    }
                    end += 1;
                }
            }
            '?' => {
                if si == s.len() || s[si] == '/' || leading_dot(si) {
                    return false;
                }
            }
            '[' => match bracket(p, pi + 1) {
                Some((set, next)) => {
                    if si == s.len() || s[si] == '/' || leading_dot(si) || !set.matches(s[si]) {
                        return false;
                    }
                    pi = next;
                    si += 1;
                    continue;
                }
                None => {
                    if si == s.len() || s[si] != '[' {
                        return false;
                    }
                }
            },
            '\\' if pi + 1 < p.len() => {
                pi += 1;
                if si == s.len() || s[si] != p[pi] {
                    return false;
                }
            }
            c => {
                if si == s.len() || s[si] != c {
                    return false;
                }
            }
        }
        pi += 1;
        si += 1;
    }
    si == s.len()
}

/// A bracket expression's characters.
struct CharSet {
    negated: bool,
    ranges: Vec<(char, char)>,
    classes: Vec<String>,
}

impl CharSet {
    fn matches(&self, c: char) -> bool {
        let hit = self.ranges.iter().any(|&(a, b)| a <= c && c <= b)
            || self.classes.iter().any(|class| match class.as_str() {
                "alpha" => c.is_alphabetic(),
                "digit" => c.is_ascii_digit(),
                "alnum" => c.is_alphanumeric(),
                "upper" => c.is_uppercase(),
                "lower" => c.is_lowercase(),
                "space" => c.is_whitespace(),
                "blank" => c == ' ' || c == '\t',
                "punct" => c.is_ascii_punctuation(),
                "xdigit" => c.is_ascii_hexdigit(),
                "cntrl" => c.is_control(),
                "print" => !c.is_control(),
                "graph" => !c.is_control() && c != ' ',
                _ => false,
            });
        hit != self.negated
    }
}

/// Parses the bracket expression starting after `[` at `start`; `None` when
/// it is not closed (the `[` is then an ordinary character).
fn bracket(p: &[char], start: usize) -> Option<(CharSet, usize)> {
    let mut i = start;
    let mut set = CharSet {
        negated: false,
        ranges: Vec::new(),
        classes: Vec::new(),
    };
    if i < p.len() && (p[i] == '!' || p[i] == '^') {
        set.negated = true;
        i += 1;
    }
    let first = i;
    loop {
        let mut c = *p.get(i)?;
        if c == ']' && i > first {
            return Some((set, i + 1));
        }
        if c == '[' && p.get(i + 1) == Some(&':') {
            let rest: String = p[i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                set.classes.push(rest[..end].to_string());
                i += 2 + rest[..end].chars().count() + 2;
                continue;
            }
        }
        if c == '\\' {
            i += 1;
            c = *p.get(i)?;
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let mut end = p[i + 2];
            let mut skip = 3;
            if end == '\\' {
                end = *p.get(i + 3)?;
                skip = 4;
            }
            set.ranges.push((c, end));
            i += skip;
        } else {
            set.ranges.push((c, c));
            i += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Reading modules.

struct Source {
    path: PathBuf,
    text: String,
    parsed: OnceCell<Result<Parsed, String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ident,
    Str,
    Regex,
    Sym(u8),
    Number,
}

/// A token: its kind and byte range (12 bytes; a module has thousands).
#[derive(Clone, Copy, Debug)]
struct Tok {
    kind: Kind,
    start: u32,
    end: u32,
}

/// A `let`: its name, parameters and where its body starts.
struct Let {
    /// Token index of the name.
    name: usize,
    /// Token indices of the parameters' names.
    params: Vec<usize>,
    /// Token index of the `let` keyword.
    at: usize,
    /// Token index of the first token of the body.
    body: usize,
}

struct Parsed {
    module: String,
    toks: Vec<Tok>,
    lets: Vec<Let>,
    autoload: Option<String>,
}

impl Parsed {
    fn text<'a>(&self, src: &'a str, i: usize) -> &'a str {
        self.toks
            .get(i)
            .map_or("", |t| &src[t.start as usize..t.end as usize])
    }

    /// The last `let name` (before token `before`, if given).
    fn find_let(&self, src: &str, name: &str, before: Option<usize>) -> Option<usize> {
        self.lets
            .iter()
            .rposition(|l| self.text(src, l.name) == name && before.is_none_or(|b| l.at < b))
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    if u32::try_from(text.len()).is_err() {
        return Err("too large".into());
    }
    // Offsets fit in u32: checked above.
    let tok = |kind, start: usize, end: usize| Tok {
        kind,
        start: start as u32,
        end: end as u32,
    };
    let b = text.as_bytes();
    let mut toks = Vec::with_capacity(text.len() / 6);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'(' && b.get(i + 1) == Some(&b'*') {
            // Comments nest.
            let mut depth = 0usize;
            loop {
                if i + 1 >= b.len() {
                    return Err("unterminated comment".into());
                }
                if b[i] == b'(' && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b[i + 1] == b')' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'"' || c == b'/' {
            let start = i;
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            if i >= b.len() {
                return Err("unterminated string or regexp".into());
            }
            i += 1;
            let kind = if c == b'"' { Kind::Str } else { Kind::Regex };
            toks.push(tok(kind, start, i));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            let ident_end = |mut j: usize| {
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                j
            };
            i = ident_end(i);
            // `Module.name` is one token.
            if c.is_ascii_uppercase()
                && b.get(i) == Some(&b'.')
                && b.get(i + 1)
                    .is_some_and(|n| n.is_ascii_alphabetic() || *n == b'_')
            {
                i = ident_end(i + 1);
            }
            toks.push(tok(Kind::Ident, start, i));
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            toks.push(tok(Kind::Number, start, i));
        } else {
            // Multi-byte UTF-8 characters appear only in strings and comments
            // of valid modules; take the whole character.
            let len = text[i..].chars().next().map_or(1, char::len_utf8);
            toks.push(tok(Kind::Sym(c), i, i + len));
            i += len;
        }
    }
    Ok(toks)
}

fn parse(text: &str) -> Result<Parsed, String> {
    let toks = tokenize(text)?;
    let mut parsed = Parsed {
        module: String::new(),
        toks,
        lets: Vec::new(),
        autoload: None,
    };
    let t = |i: usize| parsed.text(text, i);
    let is_sym = |i: usize, c: u8| parsed.toks.get(i).is_some_and(|t| t.kind == Kind::Sym(c));
    let is_ident = |i: usize| parsed.toks.get(i).is_some_and(|t| t.kind == Kind::Ident);
    let mut lets = Vec::new();
    let mut module = None;
    let mut autoload = None;
    let mut i = 0;
    while i < parsed.toks.len() {
        match t(i) {
            "module" if module.is_none() && is_ident(i + 1) && is_sym(i + 2, b'=') => {
                module = Some(t(i + 1).to_string());
                i += 3;
            }
            "autoload" if is_ident(i + 1) => {
                autoload = Some(t(i + 1).to_string());
                i += 2;
            }
            "let" if is_ident(i + 1) => {
                let at = i;
                let name = i + 1;
                let mut j = i + 2;
                let mut params = Vec::new();
                // `(name : type)` parameters; the type may itself be bracketed.
                while is_sym(j, b'(') && is_ident(j + 1) && is_sym(j + 2, b':') {
                    params.push(j + 1);
                    let mut depth = 1;
                    j += 3;
                    while j < parsed.toks.len() && depth > 0 {
                        if is_sym(j, b'(') {
                            depth += 1;
                        } else if is_sym(j, b')') {
                            depth -= 1;
                        }
                        j += 1;
                    }
                }
                if is_sym(j, b'=') {
                    lets.push(Let {
                        name,
                        params,
                        at,
                        body: j + 1,
                    });
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    parsed.module = module.ok_or("no `module Name =` declaration")?;
    parsed.lets = lets;
    parsed.autoload = autoload;
    Ok(parsed)
}

/// augeas' string escapes (`\\`, `\"`, `\n`, `\t`, `\r`); others are kept.
fn unescape(quoted: &str) -> String {
    let inner = &quoted[1..quoted.len().saturating_sub(1).max(1)];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Evaluating filters.

/// A value of the evaluated subset.
#[derive(Clone, Debug)]
enum Val {
    Str(String),
    /// A filter, and whether it was made by the expression being evaluated
    /// (rather than taken from a name), which decides how `.` orders it.
    Filter(Vec<Glob>, bool),
    /// A `let` with parameters: (source index, let index).
    Func(usize, usize),
    Transform(String, Vec<Glob>),
}

type Env = Vec<(String, Val)>;

/// How deep names may refer to names (a module referring to itself in a
/// loop is an error, not a hang).
const MAX_DEPTH: usize = 64;

struct Eval<'a> {
    sources: &'a [Source],
    by_name: &'a HashMap<String, usize>,
}

/// A position in a module's tokens.
struct Cursor<'a> {
    src: usize,
    text: &'a str,
    parsed: &'a Parsed,
    pos: usize,
    depth: usize,
}

impl<'a> Cursor<'a> {
    fn text(&self) -> &'a str {
        self.parsed.text(self.text, self.pos)
    }
    fn kind(&self) -> Option<Kind> {
        self.parsed.toks.get(self.pos).map(|t| t.kind)
    }
    fn unexpected(&self) -> String {
        let line = self
            .parsed
            .toks
            .get(self.pos)
            .map_or(0, |t| self.text[..t.start as usize].lines().count() + 1);
        format!("unsupported syntax at line {line} ({:?})", self.text())
    }
}

impl<'a> Eval<'a> {
    fn parsed(&self, src: usize) -> Result<&'a Parsed, String> {
        let source = &self.sources[src];
        source
            .parsed
            .get_or_init(|| parse(&source.text))
            .as_ref()
            .map_err(|e| format!("{}: {e}", source.path.display()))
    }

    fn cursor(&self, src: usize, pos: usize, depth: usize) -> Result<Cursor<'a>, String> {
        if depth > MAX_DEPTH {
            return Err("names refer to each other too deeply".into());
        }
        Ok(Cursor {
            src,
            text: &self.sources[src].text,
            parsed: self.parsed(src)?,
            pos,
            depth,
        })
    }

    /// The autoload transform of a module, if it has one.
    fn autoload(&self, src: usize) -> Result<Option<Transform>, String> {
        let parsed = self.parsed(src)?;
        let Some(name) = &parsed.autoload else {
            return Ok(None);
        };
        let Some(l) = parsed.find_let(&self.sources[src].text, name, None) else {
            return Err(format!("autoload names `{name}`, which is not defined"));
        };
        match self.binding(src, l, 0)? {
            Val::Transform(lens, filter) => {
                let lens = if lens.contains('.') {
                    lens
                } else {
                    format!("{}.{lens}", parsed.module)
                };
                Ok(Some(Transform {
                    module: parsed.module.clone(),
                    lens,
                    filter: filter.into_iter().map(normalize).collect(),
                }))
            }
            other => Err(format!("autoload `{name}` is not a transform ({other:?})")),
        }
    }

    /// The value of a module's `let` (a function for one with parameters).
    fn binding(&self, src: usize, l: usize, depth: usize) -> Result<Val, String> {
        let parsed = self.parsed(src)?;
        let the_let = &parsed.lets[l];
        if !the_let.params.is_empty() {
            return Ok(Val::Func(src, l));
        }
        let mut c = self.cursor(src, the_let.body, depth + 1)?;
        self.expr(&mut c, &Vec::new())
    }

    /// `app ('.' app)*`
    fn expr(&self, c: &mut Cursor<'a>, env: &Env) -> Result<Val, String> {
        let mut value = self.app(c, env)?;
        while c.kind() == Some(Kind::Sym(b'.')) {
            c.pos += 1;
            let right = self.app(c, env)?;
            value = match (value, right) {
                (Val::Str(a), Val::Str(b)) => Val::Str(a + &b),
                // augeas' compile_concat appends the left filter to the right
                // one when the right one is new (it owns it), and the right
                // one to the left one otherwise; with `.` grouping to the
                // left, `incl a . incl b . Util.stdexcl` is [b, a, stdexcl…].
                (Val::Filter(a, _), Val::Filter(mut b, true)) => {
                    b.extend(a);
                    Val::Filter(b, true)
                }
                (Val::Filter(mut a, _), Val::Filter(b, false)) => {
                    a.extend(b);
                    Val::Filter(a, true)
                }
                (a, b) => return Err(format!("cannot join {a:?} and {b:?}")),
            };
        }
        Ok(value)
    }

    /// An application: `incl s`, `excl s`, `transform lens filter`,
    /// `Sys.getenv s`, `f a b`, or a plain atom.
    fn app(&self, c: &mut Cursor<'a>, env: &Env) -> Result<Val, String> {
        if c.kind() != Some(Kind::Ident) {
            return self.atom(c, env);
        }
        match c.text() {
            word @ ("incl" | "excl") => {
                let include = word == "incl";
                c.pos += 1;
                match self.atom(c, env)? {
                    Val::Str(pattern) => Ok(Val::Filter(vec![Glob { include, pattern }], true)),
                    other => Err(format!("{word} of {other:?}")),
                }
            }
            "transform" => {
                c.pos += 1;
                if c.kind() != Some(Kind::Ident) {
                    return Err(c.unexpected());
                }
                let lens = c.text().to_string();
                c.pos += 1;
                match self.atom(c, env)? {
                    Val::Filter(filter, _) => Ok(Val::Transform(lens, filter)),
                    other => Err(format!("transform with filter {other:?}")),
                }
            }
            "Sys.getenv" => {
                c.pos += 1;
                match self.atom(c, env)? {
                    Val::Str(name) => std::env::var(&name)
                        .map(Val::Str)
                        .map_err(|_| format!("Sys.getenv(\"{name}\"): not set")),
                    other => Err(format!("Sys.getenv of {other:?}")),
                }
            }
            _ => match self.atom(c, env)? {
                Val::Func(src, l) => {
                    let parsed = self.parsed(src)?;
                    let the_let = &parsed.lets[l];
                    let text = &self.sources[src].text;
                    let mut inner: Env = Vec::with_capacity(the_let.params.len());
                    for &p in &the_let.params {
                        inner.push((parsed.text(text, p).to_string(), self.atom(c, env)?));
                    }
                    let mut body = self.cursor(src, the_let.body, c.depth + 1)?;
                    self.expr(&mut body, &inner)
                }
                value => Ok(value),
            },
        }
    }

    /// A string, `( expr )`, or a name.
    fn atom(&self, c: &mut Cursor<'a>, env: &Env) -> Result<Val, String> {
        match c.kind() {
            Some(Kind::Str) => {
                let s = unescape(c.text());
                c.pos += 1;
                Ok(Val::Str(s))
            }
            Some(Kind::Sym(b'(')) => {
                c.pos += 1;
                let v = self.expr(c, env)?;
                if c.kind() != Some(Kind::Sym(b')')) {
                    return Err(c.unexpected());
                }
                c.pos += 1;
                Ok(v)
            }
            Some(Kind::Ident) => {
                let name = c.text().to_string();
                let at = c.pos;
                c.pos += 1;
                self.resolve(c, &name, at, env)
            }
            _ => Err(c.unexpected()),
        }
    }

    /// A name: a parameter, a `let` of this module defined before `at`, or
    /// `Module.name`.
    fn resolve(&self, c: &Cursor<'a>, name: &str, at: usize, env: &Env) -> Result<Val, String> {
        // A value taken from a name is shared with the name.
        let shared = |v: Val| match v {
            Val::Filter(f, _) => Val::Filter(f, false),
            other => other,
        };
        if let Some((_, v)) = env.iter().rev().find(|(n, _)| n == name) {
            return Ok(shared(v.clone()));
        }
        if let Some((module, local)) = name.split_once('.') {
            let Some(&src) = self.by_name.get(&module.to_ascii_lowercase()) else {
                return Err(format!("module {module} is not on the load path"));
            };
            let parsed = self.parsed(src)?;
            let l = parsed
                .find_let(&self.sources[src].text, local, None)
                .ok_or_else(|| format!("{name} is not defined"))?;
            return self.binding(src, l, c.depth).map(shared);
        }
        let l = c
            .parsed
            .find_let(c.text, name, Some(at))
            .ok_or_else(|| format!("{name} is not defined before its use"))?;
        self.binding(c.src, l, c.depth).map(shared)
    }
}

/// augeas makes an `incl`, and an `excl` naming a directory, absolute
/// (`transform_validate`).
pub fn normalize(g: Glob) -> Glob {
    if !g.pattern.starts_with('/') && (g.include || g.pattern.contains('/')) {
        Glob {
            include: g.include,
            pattern: format!("/{}", g.pattern),
        }
    } else {
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incl(p: &str) -> Glob {
        Glob {
            include: true,
            pattern: p.into(),
        }
    }
    fn excl(p: &str) -> Glob {
        Glob {
            include: false,
            pattern: p.into(),
        }
    }

    #[test]
    fn fnmatch_follows_glob_and_pathname_rules() {
        assert!(fnmatch("/etc/default/*", "/etc/default/ufw", true));
        assert!(!fnmatch("/etc/default/*", "/etc/default/sub/ufw", true));
        assert!(!fnmatch("/etc/default/*", "/etc/default/.hidden", true));
        assert!(fnmatch("/etc/default/.*", "/etc/default/.hidden", true));
        assert!(fnmatch(".*", ".hidden", false));
        assert!(fnmatch("*~", "ufw~", false));
        assert!(!fnmatch("*.bak", "/etc/default/ufw.bak", false));
        assert!(fnmatch("/etc/ip*tables", "/etc/ip6tables", true));
        assert!(fnmatch(
            "/etc/strongswan.d/**/*.conf",
            "/etc/strongswan.d/x/y.conf",
            true
        ));
        assert!(!fnmatch(
            "/etc/strongswan.d/**/*.conf",
            "/etc/strongswan.d/y.conf",
            true
        ));
        assert!(fnmatch("/etc/rc?.d/S[0-9][!a]*", "/etc/rc2.d/S01b", true));
        assert!(!fnmatch("/etc/rc?.d/S[0-9][!a]*", "/etc/rc2.d/S0a", true));
        assert!(fnmatch("#*#", "#x#", false));
        assert!(fnmatch("/a/\\*", "/a/*", true));
        assert!(!fnmatch("/a/\\*", "/a/b", true));
        assert!(fnmatch("/a/[[:digit:]]", "/a/7", true));
        assert!(fnmatch("/a/[", "/a/[", true));
    }

    #[test]
    fn basename_excludes_apply_to_every_later_exclude() {
        let t = Transform {
            module: "M".into(),
            lens: "M.lns".into(),
            filter: vec![
                incl("/etc/m/*"),
                incl("/etc/m/sub/*"),
                excl("*.bak"),
                excl("/etc/m/skip"),
            ],
        };
        assert!(t.maps("/etc/m/a"));
        assert!(!t.maps("/etc/m/a.bak"));
        assert!(!t.maps("/etc/m/.a"));
        assert!(t.maps("/etc/m/sub/b"));
        // As in augeas, after "*.bak" the path excludes see only the base name.
        assert!(t.maps("/etc/m/skip"));
    }

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    #[test]
    fn evaluates_filters_functions_and_other_modules() {
        let dir = std::env::temp_dir().join(format!("tend-lens-index-{}", std::process::id()));
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        write(
            &b,
            "util.aug",
            "module Util =\n let stdexcl = (excl \"*~\") . (excl \"*.bak\")\n",
        );
        write(
            &b,
            "shadowed.aug",
            "module Shadowed = autoload xfm\nlet lns = del /x/ \"x\"\nlet xfm = transform lns (incl \"/b\")\n",
        );
        write(
            &a,
            "shadowed.aug",
            "module Shadowed = autoload xfm\nlet lns = del /x/ \"x\"\nlet xfm = transform lns (incl \"/a\")\n",
        );
        write(
            &a,
            "multi.aug",
            "(* A comment (* nested, with \"quotes *) and autoload *)\n\
             module Multi =\n  autoload xfm\n\
             let lns = [ key /[^\\/ ]+/ . del /\\// \"/\" ]\n\
             let d (n:string) = incl (\"/etc/multi/\" . n)\n\
             let filter = d \"*.conf\" . excl \"/etc/multi/no.conf\" . Util.stdexcl\n\
             test lns get \"a/\" = { \"a\" }\n\
             let xfm = transform lns filter\n",
        );
        write(
            &a,
            "broken.aug",
            "module Broken = autoload xfm\nlet xfm = transform lns (incl (Unknown.thing))\n",
        );
        write(
            &a,
            "plain.aug",
            "module Plain =\n let lns = del /x/ \"x\"\n",
        );
        write(
            &a,
            "other.aug",
            "module Other = autoload xfm\nlet lns = del /x/ \"x\"\n\
             let xfm = transform lns (incl \"/etc/multi/two.conf\")\n",
        );
        let index = LensIndex::build(&[a, b], true);
        std::fs::remove_dir_all(&dir).unwrap();

        let multi = index
            .transforms
            .iter()
            .find(|t| t.module == "Multi")
            .unwrap();
        assert_eq!(multi.lens, "Multi.lns");
        // augeas' order: a new right operand of `.` comes first, a named one last.
        assert_eq!(
            multi.filter,
            vec![
                excl("/etc/multi/no.conf"),
                incl("/etc/multi/*.conf"),
                excl("*.bak"),
                excl("*~"),
            ]
        );
        let shadowed: Vec<_> = index
            .transforms
            .iter()
            .filter(|t| t.module == "Shadowed")
            .collect();
        assert_eq!(shadowed.len(), 1);
        assert_eq!(shadowed[0].filter, vec![incl("/a")]);
        assert!(!index.transforms.iter().any(|t| t.module == "Plain"));
        assert_eq!(index.unresolved.len(), 1, "{:?}", index.unresolved);
        assert_eq!(index.unresolved[0].0, "broken");

        assert!(matches!(index.lookup("/etc/multi/x.conf"), Lookup::One(t) if t.module == "Multi"));
        assert!(matches!(
            index.lookup("/etc/multi/two.conf"),
            Lookup::Ambiguous(ts) if ts.len() == 2
        ));
        // The index is incomplete (Broken), so an unmapped file is unknown.
        assert!(matches!(
            index.lookup("/etc/multi/no.conf"),
            Lookup::Unknown
        ));
    }
}
