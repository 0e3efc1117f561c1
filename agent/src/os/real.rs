//! This machine, through std and libc.

#[cfg(unix)]
use std::ffi::{CStr, CString};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::{
    CommandOutput, Commands, DirEntry, FileKind, FileMeta, Fs, Host, InterfaceAddress, StatFs,
    Uname,
};

/// How long a command may run before it is killed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a command's output that is kept.
const COMMAND_OUTPUT_LIMIT: usize = 16 << 20;

/// The machine this process runs on.
pub struct RealMachine;

fn kind_of(ft: std::fs::FileType) -> FileKind {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_block_device() {
            return FileKind::Block;
        }
        if ft.is_char_device() {
            return FileKind::Char;
        }
        if ft.is_fifo() {
            return FileKind::Fifo;
        }
        if ft.is_socket() {
            return FileKind::Socket;
        }
    }
    if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Unknown
    }
}

#[cfg(unix)]
fn meta_of(m: &std::fs::Metadata) -> FileMeta {
    use std::os::unix::fs::MetadataExt;
    let btime = m
        .created()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    FileMeta {
        kind: kind_of(m.file_type()),
        size: m.size(),
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        inode: m.ino(),
        device: m.dev(),
        nlink: m.nlink(),
        block_size: m.blksize(),
        atime: m.atime(),
        mtime: m.mtime(),
        ctime: m.ctime(),
        btime,
    }
}

#[cfg(not(unix))]
fn meta_of(m: &std::fs::Metadata) -> FileMeta {
    let secs = |t: io::Result<SystemTime>| {
        t.ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64)
    };
    FileMeta {
        kind: kind_of(m.file_type()),
        size: m.len(),
        mode: if m.permissions().readonly() {
            0o444
        } else {
            0o666
        },
        uid: 0,
        gid: 0,
        inode: 0,
        device: 0,
        nlink: 1,
        block_size: 4096,
        atime: secs(m.accessed()),
        mtime: secs(m.modified()),
        ctime: secs(m.modified()),
        btime: secs(m.created()),
    }
}

impl Fs for RealMachine {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<DirEntry>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let kind = entry.file_type().map_or(FileKind::Unknown, kind_of);
            out.push(DirEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind,
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn metadata(&self, path: &Path, follow: bool) -> io::Result<FileMeta> {
        let m = if follow {
            std::fs::metadata(path)?
        } else {
            std::fs::symlink_metadata(path)?
        };
        Ok(meta_of(&m))
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(path)
    }

    fn host_path(&self, path: &Path) -> Option<PathBuf> {
        Some(path.to_path_buf())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

impl Commands for RealMachine {
    fn run(&self, program: &str, args: &[&str]) -> io::Result<CommandOutput> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("LC_ALL", "C")
            .spawn()?;
        // Read both pipes on threads so a chatty command cannot block on a full pipe.
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let out_thread = std::thread::spawn(move || read_capped(stdout.as_mut()));
        let err_thread = std::thread::spawn(move || read_capped(stderr.as_mut()));
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if started.elapsed() > COMMAND_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{program} ran longer than {COMMAND_TIMEOUT:?}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stdout = out_thread.join().unwrap_or_default();
        let stderr = err_thread.join().unwrap_or_default();
        Ok(CommandOutput {
            status: status.code().unwrap_or(-1),
            stdout,
            stderr,
        })
    }
}

fn read_capped(r: Option<&mut impl io::Read>) -> String {
    use io::Read;
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.take(COMMAND_OUTPUT_LIMIT as u64).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(unix)]
fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.to_string_lossy().as_bytes())
        .map_err(|_| io::Error::other("path contains NUL"))
}

impl Host for RealMachine {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    #[cfg(unix)]
    fn local_offset(&self) -> (i64, String) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as libc::time_t);
        // SAFETY: localtime_r writes into the zeroed tm we own; tm_zone points
        // into libc's static zone table, valid for the process's life.
        unsafe {
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&now, &mut tm).is_null() {
                return (0, "UTC".into());
            }
            let zone = if tm.tm_zone.is_null() {
                "UTC".to_string()
            } else {
                CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
            };
            (tm.tm_gmtoff as i64, zone)
        }
    }

    #[cfg(not(unix))]
    fn local_offset(&self) -> (i64, String) {
        (0, "UTC".into())
    }

    #[cfg(unix)]
    fn statfs(&self, path: &Path) -> io::Result<StatFs> {
        let c = cstring(path)?;
        // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path.
        let st = unsafe {
            let mut st: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c.as_ptr(), &mut st) != 0 {
                return Err(io::Error::last_os_error());
            }
            st
        };
        Ok(StatFs {
            blocks_size: st.f_bsize as u64,
            blocks: st.f_blocks as u64,
            blocks_free: st.f_bfree as u64,
            blocks_available: st.f_bavail as u64,
            inodes: st.f_files as u64,
            inodes_free: st.f_ffree as u64,
        })
    }

    #[cfg(not(unix))]
    fn statfs(&self, _path: &Path) -> io::Result<StatFs> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "statfs is not available here",
        ))
    }

    #[cfg(target_os = "linux")]
    fn interfaces(&self) -> io::Result<Vec<InterfaceAddress>> {
        ifaddrs::list()
    }

    #[cfg(not(target_os = "linux"))]
    fn interfaces(&self) -> io::Result<Vec<InterfaceAddress>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "interfaces are not available here",
        ))
    }

    #[cfg(unix)]
    fn uname(&self) -> io::Result<Uname> {
        // SAFETY: uname fills the zeroed struct we own; its fields are NUL-terminated.
        unsafe {
            let mut u: libc::utsname = std::mem::zeroed();
            if libc::uname(&mut u) != 0 {
                return Err(io::Error::last_os_error());
            }
            let s = |f: &[libc::c_char]| CStr::from_ptr(f.as_ptr()).to_string_lossy().into_owned();
            Ok(Uname {
                sysname: s(&u.sysname),
                nodename: s(&u.nodename),
                release: s(&u.release),
                version: s(&u.version),
                machine: s(&u.machine),
            })
        }
    }

    #[cfg(not(unix))]
    fn uname(&self) -> io::Result<Uname> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "uname is not available here",
        ))
    }

    #[cfg(target_os = "linux")]
    fn xattrs(&self, path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        let c = cstring(path)?;
        // SAFETY: each call gets a buffer of the length it is told; a size of 0
        // asks for the needed length only.
        unsafe {
            let len = libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0);
            if len < 0 {
                return Err(io::Error::last_os_error());
            }
            let mut names = vec![0u8; len as usize];
            let len = libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len());
            if len < 0 {
                return Err(io::Error::last_os_error());
            }
            names.truncate(len as usize);
            let mut out = Vec::new();
            for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
                let Ok(cname) = CString::new(name) else {
                    continue;
                };
                let vlen = libc::lgetxattr(c.as_ptr(), cname.as_ptr(), std::ptr::null_mut(), 0);
                if vlen < 0 {
                    continue;
                }
                let mut value = vec![0u8; vlen as usize];
                let vlen = libc::lgetxattr(
                    c.as_ptr(),
                    cname.as_ptr(),
                    value.as_mut_ptr().cast(),
                    value.len(),
                );
                if vlen < 0 {
                    continue;
                }
                value.truncate(vlen as usize);
                out.push((String::from_utf8_lossy(name).into_owned(), value));
            }
            Ok(out)
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn xattrs(&self, _path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "extended attributes are read on Linux only",
        ))
    }
}

#[cfg(target_os = "linux")]
mod ifaddrs {
    use super::InterfaceAddress;
    use std::ffi::CStr;
    use std::io;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// The address in a sockaddr, if it is IPv4 or IPv6.
    ///
    /// SAFETY: `sa` is null or points to a sockaddr of the family it names, as
    /// getifaddrs guarantees.
    unsafe fn addr(sa: *const libc::sockaddr) -> Option<String> {
        if sa.is_null() {
            return None;
        }
        unsafe {
            match (*sa).sa_family as i32 {
                libc::AF_INET => {
                    let sin = &*(sa as *const libc::sockaddr_in);
                    Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)).to_string())
                }
                libc::AF_INET6 => {
                    let sin6 = &*(sa as *const libc::sockaddr_in6);
                    Some(Ipv6Addr::from(sin6.sin6_addr.s6_addr).to_string())
                }
                _ => None,
            }
        }
    }

    pub fn list() -> io::Result<Vec<InterfaceAddress>> {
        let mut out = Vec::new();
        // SAFETY: getifaddrs allocates a list we walk read-only and free once.
        unsafe {
            let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
            if libc::getifaddrs(&mut head) != 0 {
                return Err(io::Error::last_os_error());
            }
            let mut cur = head;
            while !cur.is_null() {
                let ifa = &*cur;
                cur = ifa.ifa_next;
                let Some(address) = addr(ifa.ifa_addr) else {
                    continue;
                };
                let name = CStr::from_ptr(ifa.ifa_name).to_string_lossy().into_owned();
                let mask = addr(ifa.ifa_netmask).unwrap_or_default();
                let other = addr(ifa.ifa_ifu);
                let p2p = ifa.ifa_flags & libc::IFF_POINTOPOINT as u32 != 0;
                out.push(InterfaceAddress {
                    interface: name,
                    address,
                    mask,
                    broadcast: if p2p {
                        String::new()
                    } else {
                        other.clone().unwrap_or_default()
                    },
                    point_to_point: if p2p {
                        other.unwrap_or_default()
                    } else {
                        String::new()
                    },
                    kind: "unknown".into(),
                });
            }
            libc::freeifaddrs(head);
        }
        Ok(out)
    }
}
