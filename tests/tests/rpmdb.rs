//! The rpm sqlite database as the real rpm writes it: rpmbuild makes two tiny
//! noarch packages, `rpm --justdb` registers them in a fixture root, and the
//! package probe and `hardend check --root` read them back: verdicts,
//! evidence, rpm's version ordering, a write-ahead log with unmerged
//! transactions, corrupt databases and symlinks out of the root.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hardend_facts::PackageFormat;
use hardend_probe::{RootFs, package};
use hardend_tests::{
    dnf_advisory, dnf_repodata, have_command, program, python_imports, require, rpm_arch,
    rpm_build, rpm_in_root as rpm, rpm_register as register, shipped_policies,
};

const DB_DIR: &str = "var/lib/rpm";
const DB: &str = "var/lib/rpm/rpmdb.sqlite";

/// The two packages every test registers.
struct Rpms {
    alpha: PathBuf,
    beta: PathBuf,
}

/// `hd-alpha` 2:1.2.3-4 and `hd-beta` 1.0^git1-1, built once per test run
/// in the target's temporary directory. `None` only in the fast subset
/// without rpm.
fn rpms() -> Option<&'static Rpms> {
    static BUILT: OnceLock<Option<Rpms>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if !require(
                "rpm and rpmbuild (Debian package `rpm`)",
                have_command("rpm") && have_command("rpmbuild"),
            ) {
                return None;
            }
            let top = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("rpmdb-top-{}", std::process::id()));
            let _ = fs::remove_dir_all(&top);
            fs::create_dir_all(top.join("SPECS")).expect("mkdir SPECS");
            Some(Rpms {
                alpha: build_rpm(&top, "hd-alpha", Some(2), "1.2.3", "4"),
                beta: build_rpm(&top, "hd-beta", None, "1.0^git1", "1"),
            })
        })
        .as_ref()
}

fn build_rpm(top: &Path, name: &str, epoch: Option<u32>, version: &str, release: &str) -> PathBuf {
    rpm_build(top, name, epoch, version, release, "noarch")
}

/// Every file of a directory with its bytes, to prove nothing was written.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .expect("read dir")
        .map(|e| {
            let e = e.expect("entry");
            let bytes = fs::read(e.path()).expect("read file");
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

/// rule id -> (status, actual, message, evidence texts) of `hardend check`
/// with `policy_rules` on `root`.
fn check(
    root: &Path,
    policy_rules: &str,
) -> BTreeMap<String, (String, String, String, Vec<String>)> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    check_results(root, policy_rules)
        .iter()
        .map(|r| {
            let evidence = r["evidence"]
                .as_array()
                .map(|es| es.iter().map(|e| text(&e["text"])).collect())
                .unwrap_or_default();
            (
                text(&r["rule"]),
                (
                    text(&r["status"]),
                    text(&r["actual"]),
                    text(&r["message"]),
                    evidence,
                ),
            )
        })
        .collect()
}

/// The `results` of `hardend check --format json` with `policy_rules` on `root`.
fn check_results(root: &Path, policy_rules: &str) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("rpm.yaml");
    fs::write(
        &policy,
        format!(
            "policy:\n  id: rpm-test\n  title: rpm test\n  version: 1.0.0\nrules:\n{policy_rules}"
        ),
    )
    .expect("write policy");
    check_policy(root, &policy)
}

/// The `results` of `hardend check --format json` with the policy file
/// `policy` on `root`.
fn check_policy(root: &Path, policy: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(program("hardend"))
        .arg("check")
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(policy)
        .args(["--format", "json"])
        .output()
        .expect("run hardend");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "hardend check exited {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    report["results"].as_array().expect("results").clone()
}

const RULES: &str = r#"
  - { id: alpha-present, title: T, severity: high, check: { package: { name: hd-alpha, installed: true } } }
  - { id: telnet-absent, title: T, severity: high, check: { package: { name: telnet-server, installed: false } } }
  - { id: beta-absent, title: T, severity: high, check: { package: { name: hd-beta, installed: false } } }
  - { id: alpha-epoch-wins, title: T, severity: high, check: { package: { name: hd-alpha, installed: true, min_version: "9.9-9" } } }
  - { id: alpha-release-older, title: T, severity: high, check: { package: { name: hd-alpha, installed: true, min_version: "2:1.2.3-5" } } }
  - { id: beta-caret-after-base, title: T, severity: high, check: { package: { name: hd-beta, installed: true, min_version: "1.0" } } }
  - { id: beta-caret-before-next, title: T, severity: high, check: { package: { name: hd-beta, installed: true, min_version: "1.0.1" } } }
  - { id: gamma-min-absent, title: T, severity: high, check: { package: { name: hd-gamma, installed: true, min_version: "1" } } }
"#;

#[test]
fn the_probe_reads_what_rpm_registered() {
    let Some(rpms) = rpms() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    register(root.path(), DB_DIR, &[&rpms.alpha, &rpms.beta]);
    let before = snapshot(&root.path().join(DB_DIR));
    let fact = package::probe(&RootFs::new(root.path())).expect("rpmdb read");
    assert_eq!(fact.format, PackageFormat::Rpm);
    assert_eq!(
        fact.databases,
        vec!["/var/lib/rpm/rpmdb.sqlite".to_string()]
    );
    let names: Vec<_> = fact.installed.keys().map(String::as_str).collect();
    assert_eq!(names, ["hd-alpha", "hd-beta"]);
    let alpha = &fact.installed["hd-alpha"];
    assert_eq!(alpha.version, "2:1.2.3-4");
    assert_eq!(alpha.evidence.path, "/var/lib/rpm/rpmdb.sqlite");
    let text = alpha.evidence.text.as_deref().unwrap_or_default();
    assert!(
        text.starts_with("Packages row ") && text.ends_with(": hd-alpha-2:1.2.3-4.noarch"),
        "{text}"
    );
    assert_eq!(fact.installed["hd-beta"].version, "1.0^git1-1");
    // Reading wrote, created and removed nothing.
    assert_eq!(snapshot(&root.path().join(DB_DIR)), before);
}

#[test]
fn the_fedora_layout_is_read_through_its_symlink_inside_the_root() {
    let Some(rpms) = rpms() else { return };
    for link in ["../../usr/lib/sysimage/rpm", "/usr/lib/sysimage/rpm"] {
        let root = tempfile::tempdir().expect("tempdir");
        register(root.path(), "usr/lib/sysimage/rpm", &[&rpms.alpha]);
        fs::create_dir_all(root.path().join("var/lib")).expect("mkdir");
        std::os::unix::fs::symlink(link, root.path().join(DB_DIR)).expect("symlink");
        let fact = package::probe(&RootFs::new(root.path())).expect("rpmdb read");
        assert_eq!(
            fact.databases,
            vec!["/var/lib/rpm/rpmdb.sqlite".to_string()]
        );
        assert_eq!(fact.installed["hd-alpha"].version, "2:1.2.3-4", "{link}");
    }
}

#[test]
fn hardend_check_gives_rpm_verdicts_and_evidence() {
    let Some(rpms) = rpms() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    register(root.path(), DB_DIR, &[&rpms.alpha, &rpms.beta]);
    let got = check(root.path(), RULES);
    let status = |rule: &str| got[rule].0.as_str();
    assert_eq!(status("alpha-present"), "pass");
    assert!(
        got["alpha-present"].3[0].ends_with("hd-alpha-2:1.2.3-4.noarch"),
        "{got:?}"
    );
    assert_eq!(status("telnet-absent"), "pass");
    assert_eq!(got["telnet-absent"].3, ["no telnet-server"]);
    assert_eq!(status("beta-absent"), "fail");
    assert_eq!(got["beta-absent"].1, "installed 1.0^git1-1");
    // Epoch 2 beats any version without one.
    assert_eq!(status("alpha-epoch-wins"), "pass");
    assert_eq!(status("alpha-release-older"), "fail");
    assert_eq!(
        got["alpha-release-older"].1,
        "installed 2:1.2.3-4 (rpm ordering)"
    );
    // `^` sorts after the base version but before the next one; dpkg's
    // ordering would pass both.
    assert_eq!(status("beta-caret-after-base"), "pass");
    assert_eq!(status("beta-caret-before-next"), "fail");
    assert_eq!(status("gamma-min-absent"), "fail");
}

/// Starts a reader that holds a read transaction on the database (so rpm's
/// checkpoint cannot fold the log into the main file), runs `during`, and
/// kills the reader, leaving the log as a crash would.
fn with_reader_holding_the_log(db: &Path, during: impl FnOnce()) {
    const READER: &str = "import sqlite3, sys\n\
        c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True, isolation_level=None)\n\
        c.execute('BEGIN')\n\
        c.execute('SELECT count(*) FROM Packages').fetchall()\n\
        print('holding', flush=True)\n\
        sys.stdin.read()\n";
    let mut reader = Command::new("python3")
        .args(["-c", READER])
        .arg(db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(reader.stdout.as_mut().expect("stdout")),
        &mut line,
    )
    .expect("reader started");
    assert_eq!(line.trim(), "holding");
    during();
    reader.kill().expect("kill the reader");
    let _ = reader.wait();
}

#[test]
fn unmerged_write_ahead_log_content_is_read_and_left_alone() {
    let Some(rpms) = rpms() else { return };
    if !require("python3", have_command("python3")) {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    register(root.path(), DB_DIR, &[&rpms.alpha]);
    let db = root.path().join(DB);
    with_reader_holding_the_log(&db, || {
        rpm(
            root.path(),
            DB_DIR,
            &[
                "-i".as_ref(),
                "--justdb".as_ref(),
                "--nodeps".as_ref(),
                "--noscripts".as_ref(),
                rpms.beta.as_os_str(),
            ],
        );
    });
    let wal = fs::metadata(root.path().join(format!("{DB}-wal"))).expect("-wal");
    assert!(wal.len() > 0, "the log should hold hd-beta's transaction");

    let before = snapshot(&root.path().join(DB_DIR));
    let fact = package::probe(&RootFs::new(root.path())).expect("rpmdb read");
    assert!(fact.installed.contains_key("hd-beta"), "{fact:?}");
    assert!(fact.installed.contains_key("hd-alpha"));
    assert_eq!(
        snapshot(&root.path().join(DB_DIR)),
        before,
        "the probe wrote"
    );

    // The main file alone does not have hd-beta: the log was what said so.
    let alone = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(alone.path().join(DB_DIR)).expect("mkdir");
    fs::copy(&db, alone.path().join(DB)).expect("copy");
    let fact = package::probe(&RootFs::new(alone.path())).expect("main file read");
    assert!(!fact.installed.contains_key("hd-beta"));
    assert!(fact.installed.contains_key("hd-alpha"));
    assert_eq!(
        fs::read_dir(alone.path().join(DB_DIR)).expect("ls").count(),
        1,
        "no -wal or -shm created next to a lone database"
    );

    // Log content without its -shm index: refused rather than created.
    fs::copy(
        root.path().join(format!("{DB}-wal")),
        alone.path().join(format!("{DB}-wal")),
    )
    .expect("copy -wal");
    let err = package::probe(&RootFs::new(alone.path())).expect_err("refused");
    assert!(err.message.contains("-shm is missing"), "{err}");
    assert_eq!(
        fs::read_dir(alone.path().join(DB_DIR)).expect("ls").count(),
        2
    );
}

#[test]
fn a_corrupt_database_and_a_truncated_header_are_errors() {
    let Some(rpms) = rpms() else { return };
    if !require("python3", have_command("python3")) {
        return;
    }
    let rule = "  - { id: alpha-present, title: T, severity: high, check: { package: { name: hd-alpha, installed: true } } }\n";

    // Pages after the first overwritten.
    let root = tempfile::tempdir().expect("tempdir");
    register(root.path(), DB_DIR, &[&rpms.alpha]);
    let db = root.path().join(DB);
    let mut bytes = fs::read(&db).expect("read db");
    for b in bytes.iter_mut().skip(4096) {
        *b = 0xa5;
    }
    fs::write(&db, &bytes).expect("corrupt db");
    let err = package::probe(&RootFs::new(root.path())).expect_err("corrupt");
    assert!(err.message.starts_with("rpm database "), "{err}");
    let got = check(root.path(), rule);
    assert_eq!(got["alpha-present"].0, "error", "{got:?}");

    // One header blob cut short by ten bytes.
    let root = tempfile::tempdir().expect("tempdir");
    register(root.path(), DB_DIR, &[&rpms.alpha, &rpms.beta]);
    let db = root.path().join(DB);
    let status = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1])\n\
             c.execute(\"UPDATE Packages SET blob = substr(blob, 1, length(blob) - 10) \
             WHERE hnum = (SELECT max(hnum) FROM Packages)\")\n\
             c.commit()\n",
        ])
        .arg(&db)
        .status()
        .expect("run python3");
    assert!(status.success());
    let err = package::probe(&RootFs::new(root.path())).expect_err("truncated header");
    assert!(
        err.message.contains("bytes but its index and data need"),
        "{err}"
    );
    let got = check(root.path(), rule);
    assert_eq!(got["alpha-present"].0, "error", "{got:?}");
    assert!(got["alpha-present"].2.contains("Packages row"), "{got:?}");
}

#[test]
fn a_database_symlinked_out_of_the_root_is_refused() {
    let Some(rpms) = rpms() else { return };
    let outside = tempfile::tempdir().expect("tempdir");
    register(outside.path(), DB_DIR, &[&rpms.alpha]);
    let target = outside.path().join(DB);
    let escape = format!("../../../../../../../..{}", target.display());
    for link in [target.display().to_string(), escape] {
        let root = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(root.path().join(DB_DIR)).expect("mkdir");
        std::os::unix::fs::symlink(&link, root.path().join(DB)).expect("symlink");
        let err = package::probe(&RootFs::new(root.path())).expect_err("refused");
        assert!(
            err.message.contains("which does not exist inside the root"),
            "{link}: {err}"
        );
        let got = check(
            root.path(),
            "  - { id: alpha-absent, title: T, severity: high, check: { package: { name: hd-alpha, installed: false } } }\n",
        );
        assert_eq!(got["alpha-absent"].0, "error", "{link}: {got:?}");
    }
}

/// A small deterministic generator (no dependency needed for this).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }

    fn part(&mut self) -> String {
        const ALPHABET: &[u8] = b"0123456789000111abczXY..~~^^_+";
        let len = 1 + self.below(7);
        (0..len)
            .map(|_| char::from(ALPHABET[self.below(ALPHABET.len())]))
            .collect()
    }

    fn evr(&mut self) -> String {
        let mut out = String::new();
        if self.below(4) == 0 {
            out.push_str(&format!("{}:", self.below(3)));
        }
        out.push_str(&self.part());
        if self.below(3) != 0 {
            out.push('-');
            out.push_str(&self.part());
        }
        out
    }
}

#[test]
fn rpm_version_ordering_agrees_with_rpm_itself() {
    if !require("rpm (Debian package `rpm`)", have_command("rpm")) {
        return;
    }
    let mut rng = Lcg(0x5eed);
    let mut pairs = Vec::new();
    for i in 0..3000 {
        let a = rng.evr();
        // Every other pair differs from its first version in one place, so
        // long equal prefixes get compared too.
        let b = if i % 2 == 0 {
            rng.evr()
        } else {
            let mut b: Vec<char> = a.chars().collect();
            let at = rng.below(b.len());
            b[at] = rng.part().chars().next().unwrap_or('1');
            b.into_iter().collect::<String>()
        };
        // rpm parses `-` and `:` as separators: keep the pair well formed.
        if b.matches(':').count() > 1 || b.starts_with(':') || b.ends_with('-') || b.contains(":-")
        {
            continue;
        }
        pairs.push((a, b));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pairs");
    let text: String = pairs.iter().map(|(a, b)| format!("{a} {b}\n")).collect();
    fs::write(&file, text).expect("write pairs");
    let out = Command::new("rpm")
        .arg("--define")
        .arg(format!("_hardend_pairs {}", file.display()))
        .arg("--eval")
        .arg(
            "%{lua: for line in io.lines(rpm.expand('%_hardend_pairs')) do \
             local a, b = line:match('^(%S+) (%S+)$'); \
             print(rpm.vercmp(a, b) .. '\\n') end}",
        )
        .output()
        .expect("run rpm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.trim().parse().expect("rpm.vercmp result"))
        .collect();
    assert_eq!(answers.len(), pairs.len());
    let mut disagreements = Vec::new();
    for ((a, b), want) in pairs.iter().zip(answers) {
        let got = hardend_facts::rpmver::compare(a, b) as i32;
        if got != want.signum() {
            disagreements.push(format!("{a} vs {b}: rpm {want}, hardend {got}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {} pairs disagree:\n{}",
        disagreements.len(),
        pairs.len(),
        disagreements.join("\n")
    );
}

/// `openssl` 1:3.0.7-24.el9 and `bash` 5.1-6 of the build host's
/// architecture, and that architecture, built once per test run.
fn patch_rpms() -> Option<&'static (PathBuf, PathBuf, String)> {
    static BUILT: OnceLock<Option<(PathBuf, PathBuf, String)>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            rpms()?;
            let arch = rpm_arch();
            let top = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("rpmdb-patches-top-{}", std::process::id()));
            let _ = fs::remove_dir_all(&top);
            fs::create_dir_all(top.join("SPECS")).expect("mkdir SPECS");
            let openssl = rpm_build(&top, "openssl", Some(1), "3.0.7", "24.el9", &arch);
            let bash = rpm_build(&top, "bash", None, "5.1", "6", &arch);
            Some((openssl, bash, arch))
        })
        .as_ref()
}

/// The 1-based line of the `<package>` element of `name` and `arch` in a
/// gzip-compressed updateinfo, decompressed by gzip itself.
fn package_line(file: &Path, name: &str, arch: &str) -> u64 {
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(file)
        .output()
        .expect("run gzip");
    assert!(out.status.success(), "gzip -dc {}", file.display());
    let text = String::from_utf8(out.stdout).expect("UTF-8 XML");
    let at = text
        .lines()
        .position(|l| {
            l.contains(&format!("<package name=\"{name}\""))
                && l.contains(&format!("arch=\"{arch}\""))
        })
        .unwrap_or_else(|| panic!("no {name}.{arch} in {text}"));
    at as u64 + 1
}

const PATCHES_RULE: &str = "  - { id: patches, title: T, severity: high, check: { patches: { security_updates_pending: 0 } } }\n";

#[test]
fn pending_security_updates_come_from_dnf_advisories() {
    let Some((openssl, bash, arch)) = patch_rpms() else {
        return;
    };
    let Some(rpms) = rpms() else { return };
    if !require(
        "the Python module createrepo_c (pip install createrepo-c) and gzip",
        python_imports("createrepo_c") && have_command("gzip"),
    ) {
        return;
    }
    const BASEOS: &str = "var/cache/dnf/baseos-1a2b3c4d5e6f7a8b";
    const APPSTREAM: &str = "var/cache/libdnf5/appstream-9f8e7d6c5b4a3f2e";
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    register(root, DB_DIR, &[openssl, bash, &rpms.alpha]);
    let arch = arch.as_str();
    let baseos = |openssl_release: &str| {
        [
            dnf_advisory(
                "RHSA-2024:1234",
                "security",
                &[
                    ("openssl", "1", "3.0.7", openssl_release, arch),
                    ("openssl", "1", "3.0.7", openssl_release, "src"),
                ],
            ),
            // A newer bash, but not a security fix.
            dnf_advisory(
                "RHBA-2024:0001",
                "bugfix",
                &[("bash", "0", "5.1", "7", arch)],
            ),
        ]
    };
    let gz = dnf_repodata(root, BASEOS, "gz", &baseos("25.el9"));
    // dnf 5's cache, zstd: an older openssl fix, a newer hd-alpha of another
    // architecture than the installed noarch one, and a package not installed.
    let other_arch = if arch == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let zst = dnf_repodata(
        root,
        APPSTREAM,
        "zst",
        &[dnf_advisory(
            "FEDORA-2024-0001",
            "security",
            &[
                ("openssl", "1", "3.0.7", "20.el9", arch),
                ("hd-alpha", "2", "1.2.3", "9", other_arch),
                // Not installed yet.
                ("hd-beta", "0", "1.0.1", "1", "noarch"),
                ("curl", "0", "8.0", "1", arch),
            ],
        )],
    );
    // yum's layout, xz: a fix for bash, but of the other architecture.
    const YUM: &str = "var/cache/yum/x86_64/9/updates";
    let xz = dnf_repodata(
        root,
        YUM,
        "xz",
        &[dnf_advisory(
            "RHSA-2024:0777",
            "security",
            &[("bash", "0", "5.1", "9", other_arch)],
        )],
    );
    assert!(gz.ends_with("-updateinfo.xml.gz") && zst.ends_with("-updateinfo.xml.zst"));
    assert!(xz.ends_with("-updateinfo.xml.xz"));

    // 1. openssl, and only openssl, is pending, named by its advisory.
    let results = check_results(root, PATCHES_RULE);
    let r = &results[0];
    assert_eq!(r["status"], "fail", "{r}");
    assert_eq!(
        r["actual"],
        "1 pending: openssl 1:3.0.7-24.el9 -> 1:3.0.7-25.el9 (RHSA-2024:1234)"
    );
    let evidence = r["evidence"].as_array().expect("evidence");
    assert_eq!(evidence.len(), 1, "{r}");
    assert_eq!(evidence[0]["path"], gz.as_str());
    let line = package_line(&root.join(gz.trim_start_matches('/')), "openssl", arch);
    assert_eq!(evidence[0]["line"], line, "{r}");
    assert_eq!(
        evidence[0]["text"],
        "openssl 1:3.0.7-24.el9 installed, 1:3.0.7-25.el9 in RHSA-2024:1234"
    );
    // The shipped rule applies to rpm hosts and says the same.
    let shipped = check_policy(
        root,
        &shipped_policies().join("linux-baseline-patches.yaml"),
    );
    let rule = shipped
        .iter()
        .find(|r| r["rule"] == "patches-security-updates-applied")
        .expect("the shipped patches rule");
    assert_eq!(rule["status"], "fail", "{rule}");
    assert_eq!(rule["actual"], r["actual"]);
    // The three caches were read (zstd and xz too), and parsed once.
    let fs = RootFs::new(root);
    let fact = hardend_probe::patches::probe(&fs).expect("patches fact");
    assert_eq!(fact.format, PackageFormat::Rpm);
    assert_eq!(fact.security_lists, [gz.clone(), zst.clone(), xz.clone()]);
    assert_eq!(fact.installed_count, 3);
    assert_eq!(fact.pending[0].severity.as_deref(), Some("Important"));
    let parses = hardend_probe::patches::rpm::updateinfo_parses();
    hardend_probe::patches::probe(&fs).expect("patches fact");
    assert_eq!(hardend_probe::patches::rpm::updateinfo_parses(), parses);
    // The files keep only the installed names' packages, so installing a
    // package parses them again: hd-beta is then pending; erasing it
    // restores the first verdict.
    rpm(
        root,
        DB_DIR,
        &[
            "-i".as_ref(),
            "--justdb".as_ref(),
            "--nodeps".as_ref(),
            rpms.beta.as_os_str(),
        ],
    );
    let fact = hardend_probe::patches::probe(&fs).expect("patches fact");
    assert_eq!(hardend_probe::patches::rpm::updateinfo_parses(), parses + 3);
    let pending: Vec<(&str, &str)> = fact
        .pending
        .iter()
        .map(|p| (p.package.as_str(), p.suite.as_str()))
        .collect();
    assert_eq!(
        pending,
        [
            ("hd-beta", "FEDORA-2024-0001"),
            ("openssl", "RHSA-2024:1234")
        ]
    );
    rpm(
        root,
        DB_DIR,
        &[
            "-e".as_ref(),
            "--justdb".as_ref(),
            "--nodeps".as_ref(),
            "hd-beta".as_ref(),
        ],
    );
    let fact = hardend_probe::patches::probe(&fs).expect("patches fact");
    assert_eq!(fact.pending.len(), 1);
    // The watcher is told of the rpm database and each repository's metadata.
    let sources = hardend_probe::patches::sources(&fs);
    for dir in [
        "var/lib/rpm",
        "var/cache/dnf",
        &format!("{BASEOS}/repodata"),
        &format!("{APPSTREAM}/repodata"),
        "var/cache/yum/x86_64",
        "var/cache/yum/x86_64/9",
    ] {
        assert!(
            sources.contains(&hardend_facts::Source::Path(root.join(dir))),
            "{dir} not in {sources:?}"
        );
    }

    // 2. The advisory offers what is installed: nothing is pending.
    let gz = dnf_repodata(root, BASEOS, "gz", &baseos("24.el9"));
    let r = &check_results(root, PATCHES_RULE)[0];
    assert_eq!(r["status"], "pass", "{r}");
    // The replaced file (a new checksum, so a new name) left the cache.
    hardend_probe::patches::probe(&fs).expect("patches fact");
    assert_eq!(hardend_probe::patches::rpm::updateinfo_cached(), 3);
    assert_eq!(
        r["actual"],
        "0 pending (3 installed packages against 3 security updateinfo files)"
    );

    // 3. A corrupt updateinfo is an error, never a pass.
    fs::write(
        root.join(gz.trim_start_matches('/')),
        b"\x1f\x8b\x08\x00not gzip at all",
    )
    .expect("corrupt");
    let r = &check_results(root, PATCHES_RULE)[0];
    assert_eq!(r["status"], "error", "{r}");
    let message = r["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&gz) && message.contains("corrupt"),
        "{message}"
    );

    // 4. No cached advisories at all: the host cannot learn of security fixes.
    fs::remove_dir_all(root.join("var/cache/dnf")).expect("rm dnf cache");
    fs::remove_dir_all(root.join("var/cache/libdnf5")).expect("rm libdnf5 cache");
    fs::remove_dir_all(root.join("var/cache/yum")).expect("rm yum cache");
    let r = &check_results(root, PATCHES_RULE)[0];
    assert_eq!(r["status"], "fail", "{r}");
    let actual = r["actual"].as_str().unwrap_or_default();
    assert!(
        actual.starts_with("no dnf updateinfo")
            && actual.ends_with("cannot learn of security fixes"),
        "{actual}"
    );
}
