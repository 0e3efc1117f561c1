//! C libraries loaded when a table first needs them (`dlopen` through
//! `libloading`), so builds need no headers and a machine without the
//! library still runs every other table.

use libloading::Library;

/// Loads the first of `names` that opens and hands it to `resolve` (which
/// looks up the symbols). When none opens, the error names the first and
/// how to get it (`install`, e.g. "install the libmagic1 package"), and
/// lists each attempt's error.
///
/// # Safety
///
/// Opening a library runs its initializers, and `resolve` must declare each
/// symbol with its C prototype: every name must be a library whose
/// initializers only set up its own state (as libaugeas' and libmagic's do),
/// and `resolve` must keep the [`Library`] alive as long as its symbols are
/// used.
pub unsafe fn open_first<T>(
    names: &[&str],
    install: &str,
    resolve: impl FnOnce(Library) -> Result<T, libloading::Error>,
) -> Result<T, String> {
    let mut errors = Vec::new();
    for name in names {
        // SAFETY: the caller vouches for the libraries' initializers.
        match unsafe { Library::new(name) } {
            Ok(lib) => return resolve(lib).map_err(|e| format!("{name}: {e}")),
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(format!(
        "{} could not be loaded ({install}): {}",
        names.first().copied().unwrap_or("the library"),
        errors.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_library_and_the_package_when_none_loads() {
        // SAFETY: no library by these names exists, so nothing is run.
        let r: Result<(), String> = unsafe {
            open_first(
                &["libtend-no-such-library.so.9", "/nonexistent/libx.so"],
                "install tend-nothing",
                |_| Ok(()),
            )
        };
        let e = r.unwrap_err();
        assert!(e.starts_with(
            "libtend-no-such-library.so.9 could not be loaded (install tend-nothing): "
        ));
        assert!(e.contains("; "), "{e}");
    }
}
