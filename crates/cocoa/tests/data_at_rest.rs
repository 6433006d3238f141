//! Issue 12, finding 1: under umask 022 the data folder, the SQLite files
//! (with `-wal`/`-shm`) and the secret were readable by every local user.
//! "Folders 0700, files 0600 whatever the umask … a refusal to start on a
//! data folder others can read." Through the real `cocoa serve`.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// `cocoa serve --role all` on `data` under umask 022 (set by `sh`).
fn serve(data: &Path) -> std::process::Command {
    let mut c = support::cocoa();
    let bin = c.get_program().to_owned();
    let mut sh = std::process::Command::new("sh");
    sh.arg("-c")
        .arg("umask 022 && exec \"$0\" serve --role all --listen 127.0.0.1:0 --data \"$1\"")
        .arg(bin)
        .arg(data);
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => sh.env(k, v),
            None => sh.env_remove(k),
        };
    }
    let _ = &mut c;
    sh
}

#[test]
fn data_files_are_private_under_umask_022() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    let mut child = serve(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let listening = line.starts_with("listening on");
    let files: Vec<_> = [
        "issuer.sqlite3",
        "issuer.sqlite3-wal",
        "issuer.sqlite3-shm",
        "keyserver.sqlite3",
        "keyserver.sqlite3-wal",
        "issuer.secret",
    ]
    .iter()
    .map(|f| data.join(f))
    .filter(|p| p.exists())
    .map(|p| (p.clone(), mode(&p)))
    .collect();
    let dir_mode = mode(&data);
    let _ = child.kill();
    let _ = child.wait();
    assert!(listening, "{line}");
    assert_eq!(dir_mode, 0o700, "data folder");
    assert!(
        files.iter().any(|(p, _)| p.ends_with("issuer.sqlite3-wal")),
        "{files:?}"
    );
    for (p, m) in &files {
        assert_eq!(*m, 0o600, "{}", p.display());
    }
}

#[test]
fn a_data_folder_others_can_read_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = serve(&data).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("chmod 700 {}", data.display())),
        "{stderr}"
    );
    assert!(stderr.contains("データフォルダ"), "{stderr}");
    // Nothing was created in the refused folder.
    assert_eq!(std::fs::read_dir(&data).unwrap().count(), 0);
}
