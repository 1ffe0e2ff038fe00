//! The one place every file of the cache directory goes through: token stores, meta files,
//! locks, the cool-down marker, the provider cache, `clean` and `accounts`.
//!
//! A [`CacheDir`] is the directory opened once, without following a symbolic link, and judged
//! on the open handle (ours, a directory, 0700); every read, write, rename, unlink and listing
//! then works relative to that handle (`openat` and friends). On a shared host another user
//! who can write a parent (a team's `KUBECACHEDIR=/tmp/...`) may swap the directory for a
//! symlink at any moment; a path resolved twice could be two directories, a handle is one.
//! ssh-agent works the same way with its socket directory.
//!
//! Files are opened with `O_NOFOLLOW | O_NONBLOCK`, and only a regular file of our own, of
//! bounded size, is read: no symlink to another of our files, no FIFO that blocks the hot
//! path. Writes are atomic (temp file, fsync, rename), so a reader or a crash sees either the
//! old content or the new, never half of one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use thiserror::Error;

/// What went wrong with one private file or its directory; the path is always named.
#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot use the token cache directory {path}: {source}; check its owner and permissions, or choose another with --token-cache-dir")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write the token cache file {path}: {source}; check free space and permissions of --token-cache-dir")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the token cache file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token cache file {path} is larger than {limit} bytes; remove it")]
    TooLarge { path: PathBuf, limit: u64 },
    /// A cache directory this process must not use.
    #[error("refusing the token cache directory {path}: {why}; remove it (or fix its owner), or choose a directory of your own with --token-cache-dir")]
    Unsafe { path: PathBuf, why: String },
    #[error("the token cache file {path} belongs to another user (uid {owner}); it is ignored: remove it, or fix the owner of --token-cache-dir")]
    ForeignOwner { path: PathBuf, owner: u32 },
    #[error("the token cache file {path} is {kind}, not a regular file; it is ignored: remove it")]
    NotRegular { path: PathBuf, kind: &'static str },
}

/// Token, refresh and provider cache files are far smaller than this.
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// Prefix of the temporary files of atomic writes.
const TEMP_PREFIX: &str = ".tmp-";

/// A cache directory, opened once and checked on the open handle.
pub struct CacheDir {
    path: PathBuf,
    #[cfg(unix)]
    fd: std::os::fd::OwnedFd,
}

/// The directories this process opened, by the path it was given: a path is resolved once
/// per process, so the lock, the token file and the meta file of one run are in the same
/// directory even when someone swaps the name between them.
static OPENED: Mutex<Vec<(PathBuf, Arc<CacheDir>)>> = Mutex::new(Vec::new());

impl CacheDir {
    /// `dir`, created (0700, parents too) when missing, for writers. Refused when it is a
    /// symbolic link, not a directory, or another user's; tightened to 0700 when others may
    /// enter it.
    pub fn create(dir: &Path) -> Result<Arc<CacheDir>, FileError> {
        Self::shared(dir, true).map(|d| d.expect("created"))
    }

    /// `dir` when it exists (`None` when not), with the checks of [`CacheDir::create`]: for
    /// readers (the hot path, `accounts`, `clean`), which neither create nor change it.
    pub fn open(dir: &Path) -> Result<Option<Arc<CacheDir>>, FileError> {
        Self::shared(dir, false)
    }

    fn shared(dir: &Path, create: bool) -> Result<Option<Arc<CacheDir>>, FileError> {
        let mut opened = OPENED.lock().unwrap_or_else(|e| e.into_inner());
        let handle = match opened.iter().find(|(p, _)| p == dir) {
            Some((_, handle)) => handle.clone(),
            None => {
                let Some(handle) = Self::open_checked(dir, create)? else {
                    return Ok(None);
                };
                let handle = Arc::new(handle);
                opened.push((dir.to_path_buf(), handle.clone()));
                handle
            }
        };
        if create {
            handle.tighten()?;
        }
        Ok(Some(handle))
    }

    /// The directory's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` in this directory, for messages only: files are reached through the
    /// handle.
    pub fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `name` atomically with mode 0600, and removes temp files that
    /// killed writers left.
    pub fn write(&self, name: &str, contents: &[u8]) -> Result<(), FileError> {
        debug_assert!(!name.contains('/'), "{name}");
        let err = |source| FileError::Write {
            path: self.file_path(name),
            source,
        };
        self.write_atomically(name, contents).map_err(err)?;
        self.sweep_stale_temp_files();
        Ok(())
    }

    /// Reads `name`; `Ok(None)` when it does not exist. Only a regular file of this user is
    /// read: tokens planted by someone else must not be handed to kubectl. Bounded: cache
    /// files are a few KiB.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, FileError> {
        debug_assert!(!name.contains('/'), "{name}");
        self.read_file(name)
    }

    /// Deletes `name`; `Ok(false)` when it was not there.
    pub fn remove(&self, name: &str) -> Result<bool, FileError> {
        match self.unlink(name) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(FileError::Write {
                path: self.file_path(name),
                source,
            }),
        }
    }

    /// The names of the entries of this directory (those that are text).
    pub fn names(&self) -> Result<Vec<String>, FileError> {
        self.list().map_err(|source| FileError::Dir {
            path: self.path.clone(),
            source,
        })
    }

    /// Opens (creating, 0600) the lock file `name`: a regular file of this user, never
    /// through a symbolic link.
    pub fn lock_file(&self, name: &str) -> Result<std::fs::File, FileError> {
        debug_assert!(!name.contains('/'), "{name}");
        self.open_lock(name)
    }

    /// A process killed between creating its temp file and renaming it leaves the temp file
    /// behind; nothing reads it, but it holds a token. Writers are rare (a login or refresh),
    /// so each one removes leftovers old enough that no live writer can own them.
    fn sweep_stale_temp_files(&self) {
        const STALE: std::time::Duration = std::time::Duration::from_secs(600);
        let Ok(names) = self.list() else {
            return;
        };
        for name in names.iter().filter(|n| n.starts_with(TEMP_PREFIX)) {
            let stale = self
                .modified(name)
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > STALE);
            if stale {
                let _ = self.unlink(name);
            }
        }
    }
}

/// A fresh temp file name: the process, the time and a counter (creation is exclusive, so a
/// collision is retried, never shared).
fn temp_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{TEMP_PREFIX}{:x}-{nanos:x}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(unix)]
mod unix {
    use std::ffi::CString;
    use std::fs::File;
    use std::io::{Error, ErrorKind, Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use super::{temp_name, CacheDir, FileError, MAX_FILE};

    pub fn euid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    fn c_path(path: &Path) -> Result<CString, Error> {
        CString::new(path.as_os_str().as_bytes())
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "the path holds a NUL byte"))
    }

    fn c_name(name: &str) -> Result<CString, Error> {
        CString::new(name)
            .map_err(|_| Error::new(ErrorKind::InvalidInput, "the name holds a NUL byte"))
    }

    fn owned(fd: RawFd) -> Result<OwnedFd, Error> {
        if fd < 0 {
            return Err(Error::last_os_error());
        }
        // SAFETY: a non-negative descriptor just returned by the kernel, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn check(rc: libc::c_int) -> Result<(), Error> {
        if rc < 0 {
            Err(Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn fstat(fd: &OwnedFd) -> Result<libc::stat, Error> {
        // SAFETY: stat is plain data; fstat fills it for a valid descriptor.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        Ok(st)
    }

    fn file_type(st: &libc::stat) -> libc::mode_t {
        st.st_mode & libc::S_IFMT
    }

    /// What a non-regular file is, for the message.
    fn kind(st: &libc::stat) -> &'static str {
        match file_type(st) {
            t if t == libc::S_IFDIR => "a directory",
            t if t == libc::S_IFIFO => "a FIFO",
            t if t == libc::S_IFSOCK => "a socket",
            t if t == libc::S_IFCHR || t == libc::S_IFBLK => "a device",
            t if t == libc::S_IFLNK => "a symbolic link",
            _ => "not a plain file",
        }
    }

    /// Whether an open of the last component failed because it is a symbolic link
    /// (`O_NOFOLLOW`: ELOOP on Linux and macOS, EMLINK on FreeBSD).
    fn is_symlink_refusal(e: &Error) -> bool {
        matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::EMLINK))
    }

    fn open_dir(path: &Path) -> Result<OwnedFd, Error> {
        let c = c_path(path)?;
        // SAFETY: a NUL-terminated path; the flags ask for no file creation.
        owned(unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            )
        })
    }

    impl CacheDir {
        pub(super) fn open_checked(
            dir: &Path,
            create: bool,
        ) -> Result<Option<CacheDir>, FileError> {
            let err = |source| FileError::Dir {
                path: dir.to_path_buf(),
                source,
            };
            let unsafe_dir = |why: &str| FileError::Unsafe {
                path: dir.to_path_buf(),
                why: why.into(),
            };
            let fd = match open_dir(dir) {
                Ok(fd) => fd,
                Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                        use std::os::unix::fs::DirBuilderExt;
                        std::fs::DirBuilder::new()
                            .recursive(true)
                            .mode(0o700)
                            .create(parent)
                            .map_err(err)?;
                    }
                    let c = c_path(dir).map_err(err)?;
                    // SAFETY: a NUL-terminated path. mkdir never follows a symlink at the
                    // last component (EEXIST); whoever raced us to the name is judged below.
                    if unsafe { libc::mkdir(c.as_ptr(), 0o700) } < 0 {
                        let e = Error::last_os_error();
                        if e.kind() != ErrorKind::AlreadyExists {
                            return Err(err(e));
                        }
                    }
                    match open_dir(dir) {
                        Ok(fd) => fd,
                        Err(e) if is_symlink_refusal(&e) => {
                            return Err(unsafe_dir("it is a symbolic link"))
                        }
                        Err(e) => return Err(err(e)),
                    }
                }
                Err(e) if is_symlink_refusal(&e) => {
                    return Err(unsafe_dir("it is a symbolic link"))
                }
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                    // O_NOFOLLOW|O_DIRECTORY on a symlink answers ENOTDIR on some systems:
                    // say which it is (the answer only words the refusal).
                    let link = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_symlink());
                    return Err(if link {
                        unsafe_dir("it is a symbolic link")
                    } else {
                        err(Error::new(
                            ErrorKind::AlreadyExists,
                            "it exists and is not a directory",
                        ))
                    });
                }
                Err(e) => return Err(err(e)),
            };
            let st = fstat(&fd).map_err(err)?;
            if file_type(&st) != libc::S_IFDIR {
                return Err(err(Error::new(
                    ErrorKind::AlreadyExists,
                    "it exists and is not a directory",
                )));
            }
            if st.st_uid != euid() {
                return Err(unsafe_dir(&format!(
                    "it belongs to another user (uid {})",
                    st.st_uid
                )));
            }
            Ok(Some(CacheDir {
                path: dir.to_path_buf(),
                fd,
            }))
        }

        /// Sets the directory back to 0700 when others may enter it, through the handle. For
        /// writers only: a reader (the hot path, `doctor`'s kubectl) changes nothing, and the
        /// files it reads are judged one by one.
        pub(super) fn tighten(&self) -> Result<(), FileError> {
            let err = |source| FileError::Dir {
                path: self.path.clone(),
                source,
            };
            let mode = fstat(&self.fd).map_err(err)?.st_mode & 0o777;
            if mode & 0o077 != 0 {
                crate::warn!(
                    "token cache directory {} had mode {mode:o}; setting it to 700",
                    self.path.display()
                );
                // SAFETY: a valid descriptor of the directory checked at opening.
                check(unsafe { libc::fchmod(self.fd.as_raw_fd(), 0o700) }).map_err(err)?;
            }
            Ok(())
        }

        fn openat(&self, name: &str, flags: libc::c_int) -> Result<OwnedFd, Error> {
            let c = c_name(name)?;
            // SAFETY: a valid directory descriptor and a NUL-terminated name; the mode is
            // read only with O_CREAT.
            owned(unsafe {
                libc::openat(
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0o600 as libc::c_uint,
                )
            })
        }

        /// The checks of a file opened for use: regular, ours.
        fn judge(&self, name: &str, fd: &OwnedFd) -> Result<libc::stat, FileError> {
            let st = fstat(fd).map_err(|source| FileError::Read {
                path: self.file_path(name),
                source,
            })?;
            if file_type(&st) != libc::S_IFREG {
                return Err(FileError::NotRegular {
                    path: self.file_path(name),
                    kind: kind(&st),
                });
            }
            if st.st_uid != euid() {
                return Err(FileError::ForeignOwner {
                    path: self.file_path(name),
                    owner: st.st_uid,
                });
            }
            Ok(st)
        }

        fn refused_open(&self, name: &str, e: Error) -> FileError {
            if is_symlink_refusal(&e) {
                FileError::NotRegular {
                    path: self.file_path(name),
                    kind: "a symbolic link",
                }
            } else {
                FileError::Read {
                    path: self.file_path(name),
                    source: e,
                }
            }
        }

        pub(super) fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, FileError> {
            // O_NONBLOCK: a FIFO planted here must not block the hot path in open().
            let fd = match self.openat(name, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY) {
                Ok(fd) => fd,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(self.refused_open(name, e)),
            };
            let st = self.judge(name, &fd)?;
            let size = st.st_size as u64;
            if size > MAX_FILE {
                return Err(FileError::TooLarge {
                    path: self.file_path(name),
                    limit: MAX_FILE,
                });
            }
            let mut bytes = Vec::with_capacity(size as usize);
            File::from(fd)
                .take(MAX_FILE + 1)
                .read_to_end(&mut bytes)
                .map_err(|source| FileError::Read {
                    path: self.file_path(name),
                    source,
                })?;
            if bytes.len() as u64 > MAX_FILE {
                return Err(FileError::TooLarge {
                    path: self.file_path(name),
                    limit: MAX_FILE,
                });
            }
            Ok(Some(bytes))
        }

        pub(super) fn write_atomically(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
            let mut attempts = 0;
            let (tmp, fd) = loop {
                let tmp = temp_name();
                match self.openat(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL) {
                    Ok(fd) => break (tmp, fd),
                    Err(e) if e.kind() == ErrorKind::AlreadyExists && attempts < 8 => attempts += 1,
                    Err(e) => return Err(e),
                }
            };
            let written = (|| {
                let mut file = File::from(fd);
                file.write_all(contents)?;
                file.sync_all()?;
                let (from, to) = (c_name(&tmp)?, c_name(name)?);
                let dir = self.fd.as_raw_fd();
                // SAFETY: a valid directory descriptor and NUL-terminated names.
                check(unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) })
            })();
            if written.is_err() {
                let _ = self.unlink(&tmp);
            }
            written
        }

        pub(super) fn unlink(&self, name: &str) -> Result<(), Error> {
            let c = c_name(name)?;
            // SAFETY: a valid directory descriptor and a NUL-terminated name.
            check(unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) })
        }

        pub(super) fn list(&self) -> Result<Vec<String>, Error> {
            // A descriptor of its own: readdir moves the offset of the one it reads.
            let fd = self.openat(".", libc::O_RDONLY | libc::O_DIRECTORY)?;
            // SAFETY: fdopendir takes ownership of a valid directory descriptor.
            let dir = unsafe { libc::fdopendir(fd.as_raw_fd()) };
            if dir.is_null() {
                return Err(Error::last_os_error());
            }
            std::mem::forget(fd);
            let mut names = Vec::new();
            loop {
                // SAFETY: `dir` is a valid DIR*; the entry lives until the next readdir.
                let entry = unsafe { libc::readdir(dir) };
                if entry.is_null() {
                    break;
                }
                // SAFETY: d_name is NUL-terminated within the entry.
                let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
                if let Ok(name) = name.to_str() {
                    if name != "." && name != ".." {
                        names.push(name.to_string());
                    }
                }
            }
            // SAFETY: closes the DIR* (and its descriptor) opened above, once.
            unsafe { libc::closedir(dir) };
            Ok(names)
        }

        pub(super) fn modified(&self, name: &str) -> Option<std::time::SystemTime> {
            let c = c_name(name).ok()?;
            // SAFETY: stat is plain data; fstatat fills it, never following a symlink.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            let rc = unsafe {
                libc::fstatat(
                    self.fd.as_raw_fd(),
                    c.as_ptr(),
                    &mut st,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            };
            if rc < 0 {
                return None;
            }
            let secs = u64::try_from(st.st_mtime).ok()?;
            Some(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        }

        pub(super) fn open_lock(&self, name: &str) -> Result<File, FileError> {
            let fd = self
                .openat(name, libc::O_RDWR | libc::O_CREAT | libc::O_NONBLOCK)
                .map_err(|e| self.refused_open(name, e))?;
            self.judge(name, &fd)?;
            Ok(File::from(fd))
        }
    }
}

#[cfg(not(unix))]
mod portable {
    //! Where there is no `openat` in std (Windows), paths: the cache lives in the user's
    //! profile, whose ACL keeps other accounts out.
    use std::fs::{self, File};
    use std::io::{Error, ErrorKind, Read, Write};
    use std::path::Path;

    use super::{temp_name, CacheDir, FileError, MAX_FILE};

    impl CacheDir {
        pub(super) fn open_checked(
            dir: &Path,
            create: bool,
        ) -> Result<Option<CacheDir>, FileError> {
            let err = |source| FileError::Dir {
                path: dir.to_path_buf(),
                source,
            };
            match fs::symlink_metadata(dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(FileError::Unsafe {
                        path: dir.to_path_buf(),
                        why: "it is a symbolic link".into(),
                    })
                }
                Ok(meta) if !meta.is_dir() => {
                    return Err(err(Error::new(
                        ErrorKind::AlreadyExists,
                        "it exists and is not a directory",
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    fs::create_dir_all(dir).map_err(err)?
                }
                Err(e) => return Err(err(e)),
            }
            Ok(Some(CacheDir {
                path: dir.to_path_buf(),
            }))
        }

        /// The profile's ACL protects the directory; nothing to tighten.
        pub(super) fn tighten(&self) -> Result<(), FileError> {
            Ok(())
        }

        pub(super) fn read_file(&self, name: &str) -> Result<Option<Vec<u8>>, FileError> {
            let path = self.file_path(name);
            let err = |source| FileError::Read {
                path: path.clone(),
                source,
            };
            if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(FileError::NotRegular {
                    path,
                    kind: "a symbolic link",
                });
            }
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(err(e)),
            };
            let meta = file.metadata().map_err(err)?;
            if !meta.is_file() {
                return Err(FileError::NotRegular {
                    path,
                    kind: if meta.is_dir() {
                        "a directory"
                    } else {
                        "not a plain file"
                    },
                });
            }
            let mut bytes = Vec::new();
            file.take(MAX_FILE + 1)
                .read_to_end(&mut bytes)
                .map_err(err)?;
            if bytes.len() as u64 > MAX_FILE {
                return Err(FileError::TooLarge {
                    path,
                    limit: MAX_FILE,
                });
            }
            Ok(Some(bytes))
        }

        pub(super) fn write_atomically(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
            let tmp = self.file_path(&temp_name());
            let written = (|| {
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp)?;
                file.write_all(contents)?;
                file.sync_all()?;
                drop(file);
                fs::rename(&tmp, self.file_path(name))
            })();
            if written.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            written
        }

        pub(super) fn unlink(&self, name: &str) -> Result<(), Error> {
            fs::remove_file(self.file_path(name))
        }

        pub(super) fn list(&self) -> Result<Vec<String>, Error> {
            Ok(fs::read_dir(&self.path)?
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect())
        }

        pub(super) fn modified(&self, name: &str) -> Option<std::time::SystemTime> {
            fs::symlink_metadata(self.file_path(name))
                .and_then(|m| m.modified())
                .ok()
        }

        pub(super) fn open_lock(&self, name: &str) -> Result<File, FileError> {
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.file_path(name))
                .map_err(|source| FileError::Read {
                    path: self.file_path(name),
                    source,
                })
        }
    }
}

/// The directory and the name of `path`, for callers that hold one path per file (the
/// provider cache).
fn split(path: &Path) -> (&Path, &str) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    (dir, name)
}

/// Writes `contents` to `path` through its directory's [`CacheDir`].
pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), FileError> {
    let (dir, name) = split(path);
    CacheDir::create(dir)?.write(name, contents)
}

/// Reads `path` through its directory's [`CacheDir`]; `Ok(None)` when either is missing.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    let (dir, name) = split(path);
    match CacheDir::open(dir)? {
        Some(dir) => dir.read(name),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_write_sweeps_temp_files_left_by_killed_writers_but_not_fresh_ones() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(".tmp-killed");
        let fresh = dir.path().join(".tmp-writing");
        fs::write(&old, "token").unwrap();
        fs::write(&fresh, "token").unwrap();
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        write_private(&dir.path().join("f.json"), b"x").unwrap();
        assert!(!old.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn writes_private_files_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/f.json");
        write_private(&path, b"one").unwrap();
        write_private(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let dmode = fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(dmode, 0o700);
        }
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_and_fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CacheDir::create(dir.path()).unwrap();
        fs::write(dir.path().join("real"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let fifo = std::ffi::CString::new(dir.path().join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            cache.read("link"),
            Err(FileError::NotRegular {
                kind: "a symbolic link",
                ..
            })
        ));
        assert!(matches!(
            cache.read("fifo"),
            Err(FileError::NotRegular { kind: "a FIFO", .. })
        ));
        assert!(matches!(
            cache.lock_file("link"),
            Err(FileError::NotRegular { .. })
        ));
        assert_eq!(cache.read("real").unwrap().unwrap(), b"secret");
        assert_eq!(cache.read("missing").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_renamed_after_opening_keeps_every_operation() {
        let root = tempfile::tempdir().unwrap();
        let first = root.path().join("cache");
        let cache = CacheDir::create(&first).unwrap();
        let moved = root.path().join("moved");
        fs::rename(&first, &moved).unwrap();
        std::os::unix::fs::symlink(root.path().join("elsewhere"), &first).unwrap();
        fs::create_dir(root.path().join("elsewhere")).unwrap();
        cache.write("f.json", b"x").unwrap();
        cache.lock_file("f.lock").unwrap();
        let mut names = cache.names().unwrap();
        names.sort();
        assert_eq!(names, ["f.json", "f.lock"]);
        assert!(cache.remove("f.json").unwrap());
        assert_eq!(
            fs::read_dir(root.path().join("elsewhere")).unwrap().count(),
            0
        );
        // A new process (the registry aside) refuses the symlink.
        assert!(matches!(
            CacheDir::open_checked(&first, true),
            Err(FileError::Unsafe { .. })
        ));
    }
}
