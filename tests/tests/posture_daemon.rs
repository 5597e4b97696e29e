//! The daemon watches the dpkg database and the apt lists: an `apt-get
//! update` that brings a security fix turns the patch rule to failing, and
//! the `apt-get upgrade` that installs it turns it back to passing, each
//! within a second. The files are replaced by rename, as apt and dpkg do.
//! On an rpm root the same holds for `dnf makecache` (new repodata swapped
//! in by rename, as librepo does) and an rpm upgrade (the real `rpm -U`).

mod daemon_support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use daemon_support::{DaemonProcess, seq_kind_rule};
use hardend_tests::{
    dnf_advisory, dnf_repodata, have_command, program, python_imports, require, rpm_arch,
    rpm_build, rpm_in_root, rpm_register,
};

const POLICY: &str = r#"
policy:
  id: posture-daemon
  title: Patch posture drift test
  version: "1"
rules:
  - id: security-updates-applied
    title: No security update is pending
    severity: high
    check:
      patches: { security_updates_pending: 0 }
  - id: no-reboot-pending
    title: No reboot is pending
    severity: high
    check:
      reboot: { required: false }
"#;

const LISTS: &str = "var/lib/apt/lists";
const SECURITY: &str = "deb.debian.org_debian-security_dists_bookworm-security";

fn status(openssl: &str) -> String {
    format!(
        "Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.36-9+deb12u4\n\nPackage: openssl\nStatus: install ok installed\nArchitecture: amd64\nVersion: {openssl}\n"
    )
}

fn packages(openssl: &str) -> String {
    format!(
        "Package: openssl\nVersion: {openssl}\nArchitecture: amd64\n\nPackage: libc6\nVersion: 2.36-9+deb12u4\nArchitecture: amd64\n"
    )
}

/// Writes `text` next to `path` and renames it into place.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("hardend-new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn apt_update_and_upgrade_flip_the_patch_rule_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).expect("mkdir");
    std::fs::create_dir_all(root.join(LISTS).join("partial")).expect("mkdir");
    std::fs::create_dir_all(root.join("run")).expect("mkdir");
    std::fs::create_dir_all(&policies).expect("mkdir");
    std::fs::write(policies.join("posture.yaml"), POLICY).expect("policy");
    std::fs::write(root.join("var/lib/dpkg/status"), status("3.0.11-1~deb12u1")).expect("status");
    std::fs::write(
        root.join(LISTS).join(format!("{SECURITY}_Release")),
        "Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n",
    )
    .expect("release");
    let list = root
        .join(LISTS)
        .join(format!("{SECURITY}_main_binary-amd64_Packages"));
    std::fs::write(&list, packages("3.0.11-1~deb12u1")).expect("packages");
    let config = dir.path().join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\nwatch: {{ debounce_ms: 20 }}\n",
            root.display(),
            policies.display(),
            dir.path().join("state").display(),
            dir.path().join("run/hardend.sock").display()
        ),
    )
    .expect("config");
    let mut cmd = Command::new(program("hardend"));
    cmd.arg("run").arg("--config").arg(&config);
    let mut daemon = DaemonProcess::spawn(cmd, dir.path(), "posture");
    daemon.wait_notify("READY=1", Duration::from_secs(20));
    assert!(daemon.drift().is_empty(), "{:?}", daemon.lines());

    // `apt-get update`: the security suite now offers a newer openssl.
    let t = Instant::now();
    replace(&list, &packages("3.0.11-1~deb12u2"));
    let alerts = daemon.wait_drift(1, Duration::from_secs(5));
    let update_latency = t.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts),
        vec![(
            1,
            "failing".to_string(),
            "security-updates-applied".to_string()
        )]
    );
    assert!(
        alerts[0]["HARDEND_ACTUAL"].contains("openssl 3.0.11-1~deb12u1 -> 3.0.11-1~deb12u2"),
        "{:?}",
        alerts[0]
    );

    // `apt-get upgrade`: dpkg installs it and asks for a reboot.
    let t = Instant::now();
    replace(
        &root.join("var/lib/dpkg/status"),
        &status("3.0.11-1~deb12u2"),
    );
    let alerts = daemon.wait_drift(2, Duration::from_secs(5));
    let upgrade_latency = t.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts[1..]),
        vec![(
            2,
            "passing".to_string(),
            "security-updates-applied".to_string()
        )]
    );
    std::fs::write(root.join("run/reboot-required"), "").expect("flag");
    let alerts = daemon.wait_drift(3, Duration::from_secs(5));
    assert_eq!(
        seq_kind_rule(&alerts[2..]),
        vec![(3, "failing".to_string(), "no-reboot-pending".to_string())]
    );
    eprintln!(
        "drift latency: apt-get update {update_latency:?}, apt-get upgrade {upgrade_latency:?}"
    );
    assert!(
        update_latency < Duration::from_secs(1) && upgrade_latency < Duration::from_secs(1),
        "update {update_latency:?}, upgrade {upgrade_latency:?}"
    );
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}

/// The daemon's configuration for `root` and `policies` in `dir`.
fn config(dir: &Path, root: &Path, policies: &Path) -> std::path::PathBuf {
    let config = dir.join("hardend.yaml");
    std::fs::write(
        &config,
        format!(
            "root: {}\npolicies: [{}]\nstate_dir: {}\nsocket: {}\njournald: off\nwatch: {{ debounce_ms: 20 }}\n",
            root.display(),
            policies.display(),
            dir.join("state").display(),
            dir.join("run/hardend.sock").display()
        ),
    )
    .expect("config");
    config
}

#[test]
fn dnf_makecache_and_rpm_upgrade_flip_the_patch_rule() {
    if !require(
        "rpm, rpmbuild (Debian package `rpm`) and the Python module createrepo_c",
        have_command("rpm") && have_command("rpmbuild") && python_imports("createrepo_c"),
    ) {
        return;
    }
    const REPO: &str = "var/cache/dnf/baseos-0123456789abcdef";
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("root");
    let policies = dir.path().join("policies");
    let top = dir.path().join("rpmbuild");
    std::fs::create_dir_all(top.join("SPECS")).expect("mkdir SPECS");
    std::fs::create_dir_all(&policies).expect("mkdir");
    std::fs::write(policies.join("posture.yaml"), POLICY).expect("policy");
    let arch = rpm_arch();
    let old = rpm_build(&top, "openssl", Some(1), "3.0.7", "24.el9", &arch);
    let new = rpm_build(&top, "openssl", Some(1), "3.0.7", "25.el9", &arch);
    rpm_register(&root, "var/lib/rpm", &[&old]);
    let advisory = |release: &str| {
        [dnf_advisory(
            "RHSA-2024:1234",
            "security",
            &[("openssl", "1", "3.0.7", release, &arch)],
        )]
    };
    dnf_repodata(&root, REPO, "gz", &advisory("24.el9"));
    let mut cmd = Command::new(program("hardend"));
    cmd.arg("run")
        .arg("--config")
        .arg(config(dir.path(), &root, &policies));
    let mut daemon = DaemonProcess::spawn(cmd, dir.path(), "posture-rpm");
    daemon.wait_notify("READY=1", Duration::from_secs(20));
    assert!(daemon.drift().is_empty(), "{:?}", daemon.lines());

    // `dnf makecache`: new repodata, made aside and swapped in by rename.
    let staged = format!("{REPO}/tmpdir.hardend");
    dnf_repodata(&root, &staged, "gz", &advisory("25.el9"));
    let t = Instant::now();
    std::fs::rename(
        root.join(REPO).join("repodata"),
        root.join(REPO).join("old"),
    )
    .expect("move the old repodata aside");
    std::fs::rename(
        root.join(&staged).join("repodata"),
        root.join(REPO).join("repodata"),
    )
    .expect("swap the new repodata in");
    let alerts = daemon.wait_drift(1, Duration::from_secs(5));
    let makecache_latency = t.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts),
        vec![(
            1,
            "failing".to_string(),
            "security-updates-applied".to_string()
        )]
    );
    assert!(
        alerts[0]["HARDEND_ACTUAL"]
            .contains("openssl 1:3.0.7-24.el9 -> 1:3.0.7-25.el9 (RHSA-2024:1234)"),
        "{:?}",
        alerts[0]
    );

    // The upgrade, by the real rpm into the root's database.
    let t = Instant::now();
    rpm_in_root(
        &root,
        "var/lib/rpm",
        &[
            "-U".as_ref(),
            "--justdb".as_ref(),
            "--nodeps".as_ref(),
            "--noscripts".as_ref(),
            new.as_os_str(),
        ],
    );
    let alerts = daemon.wait_drift(2, Duration::from_secs(5));
    let upgrade_latency = t.elapsed();
    assert_eq!(
        seq_kind_rule(&alerts[1..]),
        vec![(
            2,
            "passing".to_string(),
            "security-updates-applied".to_string()
        )],
        "{:?}",
        alerts
    );
    eprintln!(
        "drift latency: dnf makecache {makecache_latency:?}, rpm upgrade {upgrade_latency:?}"
    );
    assert!(
        makecache_latency < Duration::from_secs(1) && upgrade_latency < Duration::from_secs(1),
        "makecache {makecache_latency:?}, upgrade {upgrade_latency:?}"
    );
    // Nothing else drifted meanwhile (no error while rpm held its lock).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(daemon.drift().len(), 2, "{:?}", daemon.drift());
    let status = daemon.terminate(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}");
}
