//! The accounts and package probes on temporary roots, and a read-only look
//! at this machine's own databases.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

use hardend_facts::Source;
use hardend_probe::RootFs;
use hardend_probe::{accounts, package};

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn each_account_file_fails_on_its_own() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "/etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    write(r, "/etc/group", "total junk\n:::\n");
    let a = accounts::probe(&RootFs::new(r));
    assert_eq!(a.passwd.unwrap()[0].name, "root");
    let shadow = a.shadow.unwrap_err();
    assert!(shadow.message.contains("/etc/shadow"), "{shadow}");
    // A file with no valid entry is still read.
    assert_eq!(a.group.unwrap(), vec![]);
    // Without login.defs the compiled defaults apply.
    assert!(a.login_defs.unwrap().is_empty());
}

#[test]
fn unreadable_login_defs_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir_all(d.path().join("etc/login.defs")).unwrap();
    let a = accounts::probe(&RootFs::new(d.path()));
    assert!(a.login_defs.is_err());
    assert!(a.passwd.is_err());
}

#[test]
fn accounts_sources_are_etc_and_the_four_files() {
    let got = accounts::sources(&RootFs::new("/img"));
    let want: Vec<Source> = [
        "/img/etc",
        "/img/etc/passwd",
        "/img/etc/shadow",
        "/img/etc/group",
        "/img/etc/login.defs",
    ]
    .into_iter()
    .map(|p| Source::Path(p.into()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn this_machines_account_files_parse() {
    let passwd = fs::read_to_string("/etc/passwd").unwrap();
    let entries = accounts::parse_passwd(&passwd);
    let root = entries.iter().find(|e| e.name == "root").unwrap();
    assert_eq!((root.uid, root.gid), (0, 0));
    let defs = fs::read_to_string("/etc/login.defs").unwrap();
    let defs = accounts::parse_login_defs(&defs);
    assert!(defs.contains_key("PASS_MAX_DAYS"), "{defs:?}");
    assert!(defs.contains_key("UID_MIN"), "{defs:?}");
}

/// A status file of `n` packages in the shape dpkg writes, with long descriptions.
fn status_file(n: usize) -> String {
    let mut s = String::new();
    for i in 0..n {
        let status = match i % 10 {
            0 => "deinstall ok config-files",
            1 => "hold ok installed",
            _ => "install ok installed",
        };
        writeln!(
            s,
            "Package: pkg{i}\nStatus: {status}\nPriority: optional\nSection: misc\n\
             Installed-Size: 123\nMaintainer: Someone <someone@example.org>\n\
             Architecture: amd64\nMulti-Arch: foreign\nVersion: 1.{i}-1\n\
             Depends: libc6 (>= 2.34), libfoo{i}\nConffiles:\n /etc/pkg{i}.conf 0123456789abcdef\n\
             Description: package number {i}\n A long description: line one.\n .\n \
             Another paragraph of the description, line two.\n"
        )
        .unwrap();
    }
    s
}

#[test]
fn dpkg_status_under_a_root_with_pending_updates() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "/var/lib/dpkg/status", &status_file(30));
    // dpkg is running: pkg5 is being removed, pkg0 reinstalled.
    write(
        r,
        "/var/lib/dpkg/updates/0002",
        "Package: pkg0\nStatus: install ok installed\nArchitecture: amd64\nVersion: 9\n",
    );
    write(
        r,
        "/var/lib/dpkg/updates/0001",
        "Package: pkg5\nStatus: install ok half-installed\nArchitecture: amd64\nVersion: 1.5-1\n",
    );
    write(
        r,
        "/var/lib/dpkg/updates/tmp.i",
        "Package: pkg7\nStatus: purge ok not-installed\n",
    );
    let p = package::probe(&RootFs::new(r)).unwrap();
    assert_eq!(
        p.databases,
        [
            "/var/lib/dpkg/status",
            "/var/lib/dpkg/updates/0001",
            "/var/lib/dpkg/updates/0002"
        ]
    );
    assert!(!p.installed.contains_key("pkg5"));
    assert!(!p.installed.contains_key("pkg10"));
    assert!(p.installed.contains_key("pkg7"));
    assert!(p.installed.contains_key("pkg11"));
    assert_eq!(p.installed["pkg0"].version, "9");
    assert_eq!(
        p.installed["pkg0"].evidence.path,
        "/var/lib/dpkg/updates/0002"
    );
    let pkg2 = &p.installed["pkg2"];
    assert_eq!(pkg2.version, "1.2-1");
    assert_eq!(pkg2.evidence.path, "/var/lib/dpkg/status");
    // Each stanza is 16 lines and a blank one: pkg2 starts on line 35.
    assert_eq!(pkg2.evidence.line, Some(35));
    assert_eq!(pkg2.evidence.text.as_deref(), Some("Package: pkg2"));
}

#[test]
fn no_database_corrupt_rpmdb_and_old_rpm_formats_are_errors() {
    let d = tempfile::tempdir().unwrap();
    let err = package::probe(&RootFs::new(d.path())).unwrap_err();
    assert!(
        err.message.starts_with("no package database under "),
        "{err}"
    );
    // Older rpm formats are named, never read as empty.
    write(d.path(), "/usr/lib/sysimage/rpm/Packages", "\0\0\0\0");
    let err = package::probe(&RootFs::new(d.path())).unwrap_err();
    assert!(
        err.message
            .contains("rpm Berkeley DB database (/usr/lib/sysimage/rpm/Packages) is not supported"),
        "{err}"
    );
    write(d.path(), "/usr/lib/sysimage/rpm/Packages.db", "\0\0\0\0");
    std::fs::remove_file(d.path().join("usr/lib/sysimage/rpm/Packages")).unwrap();
    let err = package::probe(&RootFs::new(d.path())).unwrap_err();
    assert!(err.message.contains("rpm ndb database"), "{err}");
    // A sqlite file cut after its magic is a corrupt database.
    write(d.path(), "/var/lib/rpm/rpmdb.sqlite", "SQLite format 3\0");
    let err = package::probe(&RootFs::new(d.path())).unwrap_err();
    assert!(err.message.starts_with("rpm database /"), "{err}");
    // With dpkg present, dpkg is read.
    write(d.path(), "/var/lib/dpkg/status", &status_file(3));
    let p = package::probe(&RootFs::new(d.path())).unwrap();
    assert_eq!(p.installed.len(), 2);
}

#[test]
fn package_sources_are_the_database_directories() {
    let got = package::sources(&RootFs::new("/img"));
    assert!(got.contains(&Source::Path("/img/var/lib/dpkg".into())));
    assert!(got.contains(&Source::Path("/img/var/lib/rpm".into())));
}

#[test]
fn a_large_status_file_parses_quickly() {
    let text = status_file(3000);
    assert!(text.len() > 1_000_000);
    let start = Instant::now();
    let recs = package::parse_dpkg_status(text.as_bytes(), "/var/lib/dpkg/status");
    let installed = package::installed_packages(recs);
    let took = start.elapsed();
    assert_eq!(installed.len(), 2700);
    eprintln!("parsed {} bytes in {took:?}", text.len());
}

#[test]
fn this_machines_dpkg_database_has_dpkg() {
    let p = package::probe(&RootFs::new("/")).unwrap();
    let dpkg = &p.installed["dpkg"];
    assert!(!dpkg.version.is_empty());
    assert_eq!(dpkg.evidence.path, "/var/lib/dpkg/status");
    let status = fs::read_to_string("/var/lib/dpkg/status").unwrap();
    let line = dpkg.evidence.line.unwrap() as usize;
    assert_eq!(status.lines().nth(line - 1), Some("Package: dpkg"));
}
