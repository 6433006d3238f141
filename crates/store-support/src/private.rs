//! Data at rest readable by its owner only (issue 12, finding 1): "folders
//! 0700, files 0600 whatever the umask (exports excepted: they are public),
//! a refusal to start on a data folder others can read (as ssh does for
//! keys)".
//!
//! SQLite gives its `-wal` and `-shm` files the permissions of the database
//! file, so creating the database file 0600 before SQLite opens it keeps all
//! three private.

use std::path::{Path, PathBuf};

/// A data folder or file that other local users can read or write.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// The folder grants group or other users access.
    #[error(
        "データフォルダ {dir} は他の利用者も読めます（権限 {mode:o}）。`chmod 700 {dir}` を実行してから起動してください。 / \
         The data folder {dir} can be read by other users (mode {mode:o}): run `chmod 700 {dir}` and start again."
    )]
    Exposed {
        /// The folder.
        dir: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Creating or inspecting the folder or file failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PrivateError + '_ {
    move |source| PrivateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates `dir` (and missing parents) 0700 whatever the umask; an existing
/// folder is left as it is (see [`check_private_dir`]).
pub fn create_private_dir(dir: &Path) -> Result<(), PrivateError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir).map_err(io(dir))?;
    #[cfg(unix)]
    {
        // `mode` is masked by the umask: set the bits explicitly.
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    }
    Ok(())
}

/// Refuses a folder that group or other users can read, write or enter.
pub fn check_private_dir(dir: &Path) -> Result<(), PrivateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)
            .map_err(io(dir))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(PrivateError::Exposed {
                dir: dir.to_owned(),
                mode,
            });
        }
    }
    Ok(())
}

/// Creates `path` 0600 when missing, and sets an existing file (and, for a
/// SQLite database, its `-wal`, `-shm` and `-journal`) to 0600.
///
/// An existing file is only `chmod`ed, never opened: SQLite's locks are
/// POSIX advisory locks, which a process loses on *every* descriptor of the
/// file when it closes *any* one of them ("do not open and close a database
/// file while SQLite holds it", sqlite.org/howtocorrupt.html §2.2), so an
/// open-and-close here, beside a pool of the same process, let another
/// process write under it and the exporter then read a torn page (disk I/O
/// error 522). A missing file is created exclusively (no pool can hold it).
pub fn private_file(path: &Path) -> Result<(), PrivateError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        if !path.exists() {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
            {
                Ok(_) => {}
                // Created meanwhile by someone else: chmod it below.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(path)(e)),
            }
        }
        let mut all = vec![path.to_owned()];
        for suffix in ["-wal", "-shm", "-journal"] {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            all.push(PathBuf::from(s));
        }
        for p in all.iter().filter(|p| p.exists()) {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600)).map_err(io(p))?;
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
    }
    Ok(())
}

/// Writes `bytes` to a new file `path`, mode 0600 (refused when it exists:
/// a kept secret is never overwritten).
pub fn write_private_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes `bytes` to `path`, mode 0600, replacing it atomically (a new
/// file beside it, synced, then renamed over it: a crash leaves the old
/// content or the new, never half of it).
pub fn write_private_replace(path: &Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    write_private_new(&tmp, bytes.as_ref())?;
    std::fs::rename(&tmp, path)
}

/// The file of a SQLite URL (`sqlite://path?…`, `sqlite:path`), `None` for
/// an in-memory database or another backend.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|q| q == "mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

#[cfg(all(test, unix))]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_and_files_are_private_and_an_open_folder_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        check_private_dir(&dir).unwrap();
        let db = dir.join("x.sqlite3");
        private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = dir.join("x.sqlite3-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&db).unwrap();
        assert_eq!(mode(&wal), 0o600);
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = check_private_dir(&dir).unwrap_err().to_string();
        assert!(e.contains(&format!("chmod 700 {}", dir.display())), "{e}");
        assert!(e.contains("データフォルダ"), "{e}");
    }

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///d/k.sqlite3?mode=rwc"),
            Some(PathBuf::from("/d/k.sqlite3"))
        );
        assert_eq!(sqlite_file("sqlite:k.db"), Some(PathBuf::from("k.db")));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }
}
