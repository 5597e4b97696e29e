//! `hardend-collector pki init|issue` as a command: the files it writes,
//! `--days`, and a failing status when it refuses.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use hardend_collector::pki::CertKind;
use hardend_collector::tls::cert_file_identity;

fn collector() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hardend-collector"))
}

#[test]
fn init_and_issue_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pki");
    let init = collector()
        .args(["pki", "init", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    let again = collector()
        .args(["pki", "init", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("refusing to overwrite"), "{stderr}");

    let issue = collector()
        .args(["pki", "issue", "--dir"])
        .arg(&dir)
        .args(["--kind", "console", "--name", "alice", "--days", "7"])
        .output()
        .unwrap();
    assert!(
        issue.status.success(),
        "{}",
        String::from_utf8_lossy(&issue.stderr)
    );
    let key_mode = std::fs::metadata(dir.join("alice.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let id = cert_file_identity(&dir.join("alice.pem")).unwrap();
    assert_eq!((id.kind, id.name.as_str()), (CertKind::Console, "alice"));

    let bad = collector()
        .args(["pki", "issue", "--dir"])
        .arg(&dir)
        .args(["--kind", "agent", "--name", "../../etc/x"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid certificate name"));

    let kind = collector()
        .args(["pki", "issue", "--dir"])
        .arg(&dir)
        .args(["--kind", "root", "--name", "x"])
        .output()
        .unwrap();
    assert_eq!(kind.status.code(), Some(2), "clap refuses an unknown kind");
}
