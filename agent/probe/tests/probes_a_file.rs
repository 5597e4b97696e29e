//! The file probe on temporary roots: kinds, modes, owner names from the
//! root's own account files, symlinks that stay inside the root, content.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use hardend_facts::{FileFact, FileKind};
use hardend_probe::RootFs;
use hardend_probe::file::probe;

/// A root whose passwd and group name this process's uid and gid with names
/// the host does not use, so a test can tell them from host NSS answers.
fn root() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    fs::create_dir_all(r.join("etc")).unwrap();
    fs::write(r.join("etc/probe-owner"), "").unwrap();
    let md = fs::metadata(r.join("etc/probe-owner")).unwrap();
    fs::write(
        r.join("etc/passwd"),
        format!(
            "junk line\nfixture-owner:x:{}:{}::/:/bin/sh\nsecond:x:{}:0::/:/bin/sh\n",
            md.uid(),
            md.gid(),
            md.uid()
        ),
    )
    .unwrap();
    fs::write(
        r.join("etc/group"),
        format!("fixture-group:x:{}:\n", md.gid()),
    )
    .unwrap();
    d
}

fn write(root: &Path, path: &str, text: &[u8], mode: u32) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
}

fn get(root: &Path, path: &str, content: bool) -> FileFact {
    probe(&RootFs::new(root), path, content).unwrap()
}

#[test]
fn regular_file_mode_owner_and_group_come_from_the_root() {
    let d = root();
    write(d.path(), "/etc/shadow", b"root:*:1:::::::\n", 0o640);
    let f = get(d.path(), "/etc/shadow", false);
    let st = f.stat.unwrap();
    assert_eq!(st.kind, FileKind::File);
    assert_eq!(st.mode, 0o640);
    assert_eq!(st.owner.as_deref(), Some("fixture-owner"));
    assert_eq!(st.group.as_deref(), Some("fixture-group"));
    assert_eq!(f.path, "/etc/shadow");
    assert!(f.lines.is_none());
}

#[test]
fn special_bits_are_kept() {
    let d = root();
    write(d.path(), "/usr/bin/su", b"", 0o4755);
    fs::create_dir_all(d.path().join("tmp")).unwrap();
    fs::set_permissions(d.path().join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(
        get(d.path(), "/usr/bin/su", false).stat.unwrap().mode,
        0o4755
    );
    let tmp = get(d.path(), "/tmp", true);
    let st = tmp.stat.unwrap();
    assert_eq!((st.kind, st.mode), (FileKind::Directory, 0o1777));
    // Content of a directory is not read.
    assert!(tmp.lines.is_none());
}

#[test]
fn ids_missing_from_the_root_have_no_names() {
    let d = root();
    fs::write(
        d.path().join("etc/passwd"),
        "other:x:4242:4242::/:/bin/sh\n",
    )
    .unwrap();
    fs::remove_file(d.path().join("etc/group")).unwrap();
    let st = get(d.path(), "/etc/probe-owner", false).stat.unwrap();
    assert_eq!(st.owner, None);
    assert_eq!(st.group, None);
}

#[test]
fn missing_paths_do_not_exist() {
    let d = root();
    for p in [
        "/etc/nothing",
        "/no/such/dir/file",
        "/etc/passwd/below-a-file",
    ] {
        let f = get(d.path(), p, true);
        assert!(f.stat.is_none(), "{p}");
        assert!(f.lines.is_none(), "{p}");
    }
}

#[test]
fn symlinks_are_followed_inside_the_root() {
    let d = root();
    let r = d.path();
    write(r, "/usr/share/motd", b"Authorized use only\n", 0o600);
    symlink("/usr/share/motd", r.join("etc/motd")).unwrap();
    let f = get(r, "/etc/motd", true);
    let st = f.stat.unwrap();
    assert_eq!((st.kind, st.mode), (FileKind::File, 0o600));
    assert_eq!(f.lines.unwrap().unwrap(), vec!["Authorized use only"]);
}

#[test]
fn dangling_symlinks_are_symlinks() {
    let d = root();
    let r = d.path();
    // The host has /etc/hostname; the root does not, so this link dangles.
    symlink("/etc/hostname", r.join("etc/dangling")).unwrap();
    symlink("loop-b", r.join("etc/loop-a")).unwrap();
    symlink("loop-a", r.join("etc/loop-b")).unwrap();
    for p in ["/etc/dangling", "/etc/loop-a"] {
        let f = get(r, p, true);
        let st = f.stat.unwrap();
        assert_eq!(st.kind, FileKind::Symlink, "{p}");
        assert!(f.lines.is_none(), "{p}");
    }
}

#[test]
fn relative_symlinks_cannot_climb_out_of_the_root() {
    let d = root();
    let r = d.path();
    write(r, "/etc/issue", b"inside\n", 0o644);
    symlink("../../../../../../../../etc/issue", r.join("etc/up")).unwrap();
    let f = get(r, "/etc/up", true);
    assert_eq!(f.lines.unwrap().unwrap(), vec!["inside"]);
}

#[test]
fn content_is_split_into_lines_and_invalid_utf8_is_replaced() {
    let d = root();
    write(
        d.path(),
        "/etc/issue.net",
        b"Debian \\n\r\nbad \xff byte\nlast",
        0o644,
    );
    let lines = get(d.path(), "/etc/issue.net", true)
        .lines
        .unwrap()
        .unwrap();
    assert_eq!(lines, vec!["Debian \\n", "bad \u{fffd} byte", "last"]);
}

#[test]
fn content_too_large_is_a_content_error_but_metadata_stays() {
    let d = root();
    let p = d.path().join("etc/huge");
    let f = fs::File::create(&p).unwrap();
    f.set_len(hardend_probe::root::MAX_FILE_BYTES + 1).unwrap();
    let fact = get(d.path(), "/etc/huge", true);
    assert_eq!(fact.stat.unwrap().kind, FileKind::File);
    let err = fact.lines.unwrap().unwrap_err();
    assert!(err.message.contains("/etc/huge"), "{err}");
}

#[test]
fn unreadable_account_files_make_the_fact_an_error() {
    let d = root();
    let r = d.path();
    fs::remove_file(r.join("etc/passwd")).unwrap();
    fs::create_dir(r.join("etc/passwd")).unwrap();
    let err = probe(&RootFs::new(r), "/etc/probe-owner", false).unwrap_err();
    assert!(err.message.contains("/etc/passwd"), "{err}");
}
