//! The packages and their systemd units: the units' sandbox exposure and a
//! clean `systemd-analyze verify`; the commented conffiles; the .deb packages
//! installed, upgraded and purged in a copy of the debootstrapped Debian root;
//! the .rpm packages read back with `rpm -qp`, then installed, reinstalled
//! and erased with `rpm --root` in another copy. The packages are built once per
//! run by `scripts/package --no-build` from the binaries already built.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use hardend_tests::{copy_tree, debian_root, have_command, is_root, program, repo_root, require};

const AGENT_EXPOSURE_MAX: f64 = 3.0;
const COLLECTOR_EXPOSURE_MAX: f64 = 2.0;

fn packaging() -> PathBuf {
    repo_root().join("packaging")
}

/// The target directory and the profile the test binaries (and so the
/// programs) were built with: `target/debug` is the dev profile.
fn target_and_profile() -> (PathBuf, &'static str, PathBuf) {
    let hardend = program("hardend");
    let profile_dir = hardend.parent().expect("profile dir").to_path_buf();
    let target = profile_dir.parent().expect("target dir").to_path_buf();
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some("release") => "release",
        other => panic!("programs built with an unknown profile directory {other:?}"),
    };
    (target, profile, profile_dir)
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        text(&out)
    );
    out
}

// ---------------------------------------------------------------- the units

/// The "Overall exposure level" that `systemd-analyze security --offline=true`
/// gives a unit file.
fn exposure(unit: &Path) -> f64 {
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit));
    let all = text(&out);
    let line = all
        .lines()
        .find(|l| l.contains("Overall exposure level for"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{all}"));
    let value = line
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("cannot read {line:?}"));
    value
        .parse()
        .unwrap_or_else(|e| panic!("cannot read the exposure in {line:?}: {e}"))
}

#[test]
fn units_are_sandboxed_within_their_exposure_targets() {
    if !require("systemd-analyze", have_command("systemd-analyze")) {
        return;
    }
    let agent = exposure(&packaging().join("hardend.service"));
    let collector = exposure(&packaging().join("hardend-collector.service"));
    eprintln!(
        "systemd-analyze security: hardend.service {agent}, hardend-collector.service {collector}"
    );
    assert!(
        agent <= AGENT_EXPOSURE_MAX,
        "hardend.service exposure {agent} > {AGENT_EXPOSURE_MAX}"
    );
    assert!(
        collector <= COLLECTOR_EXPOSURE_MAX,
        "hardend-collector.service exposure {collector} > {COLLECTOR_EXPOSURE_MAX}"
    );
}

/// `systemd-analyze verify` resolves every `Exec*=` path and every unit the
/// units name, so it runs on a root made for it: the host's system units, the
/// two units, the built programs at their installed paths and `/bin/kill`.
#[test]
fn units_verify_clean() {
    if !require(
        "systemd-analyze and the host's systemd units",
        have_command("systemd-analyze")
            && Path::new("/usr/lib/systemd/system/sysinit.target").exists(),
    ) {
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let units = root.path().join("usr/lib/systemd/system");
    std::fs::create_dir_all(&units).expect("mkdir units");
    run_ok(
        Command::new("cp")
            .args(["-a", "/usr/lib/systemd/system/."])
            .arg(&units),
    );
    for unit in ["hardend.service", "hardend-collector.service"] {
        std::fs::copy(packaging().join(unit), units.join(unit)).expect("copy unit");
    }
    let bin = root.path().join("usr/bin");
    std::fs::create_dir_all(&bin).expect("mkdir bin");
    for name in ["hardend", "hardend-collector"] {
        std::fs::copy(program(name), bin.join(name)).expect("copy program");
    }
    let kill = Path::new("/bin/kill");
    assert!(kill.exists(), "/bin/kill (procps) is needed by ExecReload");
    std::fs::create_dir_all(root.path().join("bin")).expect("mkdir /bin");
    std::fs::copy(kill, root.path().join("bin/kill")).expect("copy kill");

    // --man=no: the man pages are checked in the packages' file lists.
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.path().display()))
        .args(["--man=no", "hardend.service", "hardend-collector.service"]));
    assert!(
        out.status.success() && out.stderr.is_empty() && out.stdout.is_empty(),
        "systemd-analyze verify ({}):\n{}",
        out.status,
        text(&out)
    );
}

// ----------------------------------------------------------- the conffiles

/// The conffile with its commented settings enabled. A setting is commented
/// as `#key: value`, and the lines that belong to it as `#  key: value` or
/// `#  - item` (two or more spaces); prose is `# text`.
fn uncomment(conffile: &str) -> String {
    fn is_setting(rest: &str) -> bool {
        let key_len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(rest.len());
        rest.starts_with("- ") || (key_len > 0 && rest[key_len..].starts_with(':'))
    }
    conffile
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if is_setting(rest) => rest,
            Some(rest) if rest.starts_with("  ") && is_setting(rest.trim_start()) => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn agent_conffile_changes_nothing_and_documents_every_default() {
    use hardend_policy::config::{
        AgentConfig, CollectorConfig, DEFAULT_AGENT_METRICS_LISTEN,
        DEFAULT_OUTBOX_MAX_DRIFT_EVENTS, MetricsConfig, parse_config,
    };
    let path = packaging().join("hardend.yaml");
    let shipped = std::fs::read_to_string(&path).expect("read hardend.yaml");
    let as_shipped = parse_config(&shipped, &path).expect("the shipped file parses");
    assert_eq!(
        as_shipped,
        AgentConfig::default(),
        "as shipped, the file changes nothing"
    );

    let enabled = uncomment(&shipped);
    let config = parse_config(&enabled, &path)
        .unwrap_or_else(|e| panic!("uncommented, the file must parse: {e:?}\n{enabled}"));
    // Everything but the two example sections is the default.
    let defaults = AgentConfig::default();
    assert_eq!(
        AgentConfig {
            collector: None,
            waivers: Vec::new(),
            metrics: None,
            ..config.clone()
        },
        defaults,
        "a commented value is not the default"
    );
    assert_eq!(
        config.collector,
        Some(CollectorConfig {
            url: "https://collector.example:7443".to_string(),
            ca: "/etc/hardend/ca.pem".into(),
            cert: "/etc/hardend/agent.pem".into(),
            key: "/etc/hardend/agent.key".into(),
            outbox_max_drift_events: DEFAULT_OUTBOX_MAX_DRIFT_EVENTS,
        })
    );
    assert_eq!(config.waivers.len(), 1);
    assert_eq!(
        config.metrics,
        Some(MetricsConfig {
            listen: DEFAULT_AGENT_METRICS_LISTEN
        })
    );
    // Every top-level key of the configuration is documented.
    for key in [
        "root",
        "policies",
        "state_dir",
        "socket",
        "journald",
        "watch",
        "deadlines",
        "collector",
        "waivers",
        "metrics",
    ] {
        assert!(
            shipped.lines().any(|l| l.starts_with(&format!("#{key}:"))),
            "hardend.yaml does not document `{key}`"
        );
    }
}

#[test]
fn collector_conffile_documents_every_default() {
    use hardend_collector::config::{
        CollectorConfig, DEFAULT_METRICS_LISTEN, MetricsConfig, TlsConfig, parse_config,
    };
    let path = packaging().join("collector.yaml");
    let shipped = std::fs::read_to_string(&path).expect("read collector.yaml");
    let tls = TlsConfig {
        ca: "/etc/hardend-collector/ca.pem".into(),
        cert: "/etc/hardend-collector/collector.pem".into(),
        key: "/etc/hardend-collector/collector.key".into(),
    };
    let as_shipped = parse_config(&shipped, &path).expect("the shipped file parses");
    assert_eq!(as_shipped, CollectorConfig::with_tls(tls.clone()));
    let enabled = uncomment(&shipped);
    let config = parse_config(&enabled, &path)
        .unwrap_or_else(|e| panic!("uncommented, the file must parse: {e:?}\n{enabled}"));
    assert_eq!(
        config,
        CollectorConfig {
            metrics: Some(MetricsConfig {
                listen: DEFAULT_METRICS_LISTEN
            }),
            ..CollectorConfig::with_tls(tls)
        },
        "a commented value is not the default"
    );
    for key in [
        "listen",
        "tls",
        "store",
        "deadlines",
        "max_message_bytes",
        "metrics",
    ] {
        assert!(
            shipped
                .lines()
                .any(|l| l.starts_with(&format!("#{key}:")) || l.starts_with(&format!("{key}:"))),
            "collector.yaml does not document `{key}`"
        );
    }
}

// ----------------------------------------------------------- the packages

struct Packages {
    agent_deb: PathBuf,
    collector_deb: PathBuf,
    agent_rpm: PathBuf,
    collector_rpm: PathBuf,
    /// hardend-dist's output the packages were made from.
    dist: PathBuf,
}

/// The four packages, made once per test run from the programs already built
/// (`scripts/package --no-build PROFILE`). `None` when the fast subset was
/// asked for and a packaging tool is missing.
fn packages() -> Option<&'static Packages> {
    static PACKAGES: OnceLock<Option<Packages>> = OnceLock::new();
    PACKAGES
        .get_or_init(|| {
            if !require(
                "cargo-deb and cargo-generate-rpm (scripts/install-deps installs them)",
                have_command("cargo-deb") && have_command("cargo-generate-rpm"),
            ) {
                return None;
            }
            let (target, profile, profile_dir) = target_and_profile();
            let out = run_ok(
                Command::new(repo_root().join("scripts/package"))
                    .args(["--no-build", profile])
                    .env("CARGO_TARGET_DIR", &target),
            );
            let paths: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(PathBuf::from)
                .collect();
            let find = |prefix: &str, ext: &str| {
                paths
                    .iter()
                    .find(|p| {
                        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                        name.starts_with(prefix) && name.ends_with(ext)
                    })
                    .unwrap_or_else(|| {
                        panic!("scripts/package printed no {prefix}*{ext}: {paths:?}")
                    })
                    .clone()
            };
            Some(Packages {
                agent_deb: find("hardend_", ".deb"),
                collector_deb: find("hardend-collector_", ".deb"),
                agent_rpm: find("hardend-0", ".rpm"),
                collector_rpm: find("hardend-collector-0", ".rpm"),
                dist: profile_dir.join("dist"),
            })
        })
        .as_ref()
}

/// The paths of the files and links a .deb installs, as absolute paths.
fn deb_files(deb: &Path) -> BTreeSet<String> {
    let out = run_ok(Command::new("dpkg-deb").arg("--contents").arg(deb));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect()
}

/// Every path below `root` (files, directories, links), relative to it.
fn tree(root: &Path) -> BTreeSet<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            out.insert(path.strip_prefix(root).expect("below root").to_path_buf());
            if entry.file_type().expect("file type").is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// Asserts that `root` holds exactly the paths of `before`, but for new
/// paths below one of `allowed`.
fn assert_tree_unchanged(root: &Path, before: &BTreeSet<PathBuf>, allowed: &[&str]) {
    let after = tree(root);
    let added: Vec<_> = after
        .difference(before)
        .filter(|p| !allowed.iter().any(|a| p.starts_with(a)))
        .collect();
    let removed: Vec<_> = before.difference(&after).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the package left {added:?} and took {removed:?}"
    );
}

/// A private copy of the debootstrapped root, with a policy-rc.d that keeps
/// maintainer scripts from starting services, and the packages in /tmp.
/// `None` when the fast subset was asked for and it cannot be had.
fn debian_copy() -> Option<tempfile::TempDir> {
    if !require(
        "root, chroot and dpkg-deb",
        is_root() && have_command("chroot") && have_command("dpkg-deb"),
    ) {
        return None;
    }
    let cached = debian_root()?;
    let copy = copy_tree(&cached);
    let rc = copy.path().join("usr/sbin/policy-rc.d");
    std::fs::write(&rc, "#!/bin/sh\nexit 101\n").expect("policy-rc.d");
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    Some(copy)
}

/// `chroot ROOT dpkg ARGS...`; the output, which must be a success.
fn dpkg(root: &Path, args: &[&str]) -> String {
    text(&run_ok(
        Command::new("chroot").arg(root).arg("dpkg").args(args),
    ))
}

/// Copies `deb` into the root's /tmp and returns its path inside the root.
fn stage(root: &Path, deb: &Path, name: &str) -> String {
    std::fs::copy(deb, root.join("tmp").join(name)).expect("copy the package");
    format!("/tmp/{name}")
}

/// A later release of `deb`: the same package with `version`, and with its
/// shipped `conffile` changed when `change_conffile` is set.
fn next_release(deb: &Path, version: &str, conffile: &str, change_conffile: bool, out: &Path) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("pkg");
    run_ok(Command::new("dpkg-deb").arg("-R").arg(deb).arg(&tree));
    let control = tree.join("DEBIAN/control");
    let fields = std::fs::read_to_string(&control).expect("control");
    let fields: String = fields
        .lines()
        .map(|l| {
            if l.starts_with("Version: ") {
                format!("Version: {version}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&control, fields).expect("write control");
    if change_conffile {
        let path = tree.join(conffile.trim_start_matches('/'));
        let mut body = std::fs::read_to_string(&path).expect("conffile");
        body.push_str(&format!("# changed in {version}\n"));
        std::fs::write(&path, body).expect("write conffile");
    }
    run_ok(Command::new("dpkg-deb").arg("-b").arg(&tree).arg(out));
}

/// The line of `name` in the root's `etc/group` or `etc/passwd` (`db`).
fn account_line(root: &Path, db: &str, name: &str) -> Option<String> {
    std::fs::read_to_string(root.join(db))
        .unwrap_or_else(|e| panic!("{db}: {e}"))
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
}

fn group_line(root: &Path, name: &str) -> Option<String> {
    account_line(root, "etc/group", name)
}

fn passwd_line(root: &Path, name: &str) -> Option<String> {
    account_line(root, "etc/passwd", name)
}

/// Removes what the test itself put into the root, so that after a purge the
/// tree can be compared with the tree before the install.
fn unstage(root: &Path, names: &[&str]) {
    for name in names {
        std::fs::remove_file(root.join("tmp").join(name)).expect("remove the staged package");
    }
}

#[test]
fn agent_deb_installs_upgrades_keeping_the_edited_conffile_and_purges_clean() {
    let Some(pkgs) = packages() else { return };
    let Some(copy) = debian_copy() else { return };
    let root = copy.path();
    // The root has no journald: a journalctl that notes its arguments shows
    // whether the maintainer scripts update the catalog when it is there.
    let journalctl = root.join("usr/bin/journalctl");
    std::fs::write(
        &journalctl,
        "#!/bin/sh\necho \"$*\" >> /var/log/journalctl-calls\n",
    )
    .expect("journalctl");
    std::fs::set_permissions(&journalctl, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let calls_file = root.join("var/log/journalctl-calls");
    let calls = || std::fs::read_to_string(&calls_file).unwrap_or_default();
    let before = tree(root);

    let deb = stage(root, &pkgs.agent_deb, "hardend.deb");
    dpkg(root, &["-i", &deb]);
    assert_eq!(
        calls(),
        "--update-catalog\n",
        "postinst updates the catalog"
    );

    // The group of the local API, the files, the enabled unit.
    let group = group_line(root, "hardend").expect("postinst creates the group hardend");
    assert!(group.starts_with("hardend:x:"), "{group}");
    let shipped: BTreeSet<String> = std::fs::read_dir(repo_root().join("policies"))
        .expect("policies")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    let installed: BTreeSet<String> = std::fs::read_dir(root.join("usr/share/hardend/policies"))
        .expect("installed policies")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(installed, shipped);
    for (installed, source) in [
        ("etc/hardend/hardend.yaml", "hardend.yaml"),
        ("usr/lib/systemd/system/hardend.service", "hardend.service"),
        ("usr/lib/systemd/catalog/hardend.catalog", "hardend.catalog"),
    ] {
        assert_eq!(
            std::fs::read(root.join(installed)).unwrap_or_else(|e| panic!("{installed}: {e}")),
            std::fs::read(packaging().join(source)).expect("packaging file"),
            "{installed} differs from packaging/{source}"
        );
    }
    let bin = root.join("usr/bin/hardend");
    assert_eq!(
        std::fs::metadata(&bin)
            .expect("usr/bin/hardend")
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    for path in [
        "usr/share/man/man1/hardend.1.gz",
        "usr/share/man/man1/hardend-check.1.gz",
        "usr/share/bash-completion/completions/hardend",
        "usr/share/zsh/vendor-completions/_hardend",
        "usr/share/fish/vendor_completions.d/hardend.fish",
        "usr/share/doc/hardend/README.md",
    ] {
        assert!(root.join(path).is_file(), "{path} is not installed");
    }
    let policies_d = std::fs::metadata(root.join("etc/hardend/policies.d")).expect("policies.d");
    assert!(policies_d.is_dir());
    assert_eq!(policies_d.permissions().mode() & 0o777, 0o750);
    let wants = root.join("etc/systemd/system/multi-user.target.wants/hardend.service");
    assert!(
        std::fs::symlink_metadata(&wants).is_ok(),
        "the unit is not enabled (no {})",
        wants.display()
    );

    // The host's hardend checks the installed root with the installed
    // policies and the installed configuration.
    let out = run(Command::new(program("hardend"))
        .arg("check")
        .arg("--root")
        .arg(root)
        .arg("--config")
        .arg(root.join("etc/hardend/hardend.yaml"))
        .arg("--policy")
        .arg(root.join("usr/share/hardend/policies"))
        .args(["--format", "json"]));
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "hardend check on the installed root: {}\n{}",
        out.status,
        text(&out)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    let total = report["summary"]["total"].as_u64().expect("total");
    assert!(total >= 200, "only {total} results");
    let pass = report["summary"]["pass"].as_u64().expect("pass");
    assert!(
        pass > 0,
        "nothing passes on a Debian root: {}",
        report["summary"]
    );
    let ids: BTreeSet<&str> = report["policies"]
        .as_array()
        .expect("policies")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        shipped.len(),
        "not every installed policy was loaded: {ids:?}"
    );

    // The operator edits the conffile.
    let conffile = root.join("etc/hardend/hardend.yaml");
    let mut edited = std::fs::read_to_string(&conffile).expect("conffile");
    edited.push_str("journald: off   # edited by the operator\n");
    std::fs::write(&conffile, &edited).expect("edit conffile");

    // An upgrade whose conffile is unchanged keeps the edit without a word.
    let dir = tempfile::tempdir().expect("tempdir");
    let v2 = dir.path().join("v2.deb");
    next_release(
        &pkgs.agent_deb,
        "99.0.0-2",
        "/etc/hardend/hardend.yaml",
        false,
        &v2,
    );
    let v2_in = stage(root, &v2, "hardend-v2.deb");
    let said = dpkg(root, &["-i", "--force-confold", &v2_in]);
    assert!(said.contains("Unpacking hardend (99.0.0-2) over"), "{said}");
    assert_eq!(
        std::fs::read_to_string(&conffile).expect("conffile"),
        edited
    );
    assert!(!root.join("etc/hardend/hardend.yaml.dpkg-dist").exists());

    // An upgrade that ships a changed conffile keeps the edit, says so, and
    // leaves the new version next to it.
    let v3 = dir.path().join("v3.deb");
    next_release(
        &pkgs.agent_deb,
        "99.0.0-3",
        "/etc/hardend/hardend.yaml",
        true,
        &v3,
    );
    let v3_in = stage(root, &v3, "hardend-v3.deb");
    let said = dpkg(root, &["-i", "--force-confold", &v3_in]);
    assert!(
        said.contains("Configuration file '/etc/hardend/hardend.yaml'")
            && said.contains("Modified (by you or by a script) since installation"),
        "dpkg did not say it kept the edited conffile:\n{said}"
    );
    assert_eq!(
        std::fs::read_to_string(&conffile).expect("conffile"),
        edited
    );
    let dist = std::fs::read_to_string(root.join("etc/hardend/hardend.yaml.dpkg-dist"))
        .expect("the new conffile is kept as .dpkg-dist");
    assert!(dist.ends_with("# changed in 99.0.0-3\n"), "{dist}");

    // Remove keeps the configuration; purge removes everything.
    let updates = calls().lines().count();
    dpkg(root, &["--remove", "hardend"]);
    assert!(!bin.exists(), "remove left the binary");
    assert_eq!(
        calls().lines().count(),
        updates + 1,
        "postrm updates the catalog"
    );
    assert_eq!(
        std::fs::read_to_string(&conffile).expect("remove keeps the conffile"),
        edited
    );
    assert!(
        group_line(root, "hardend").is_some(),
        "remove keeps the group"
    );
    std::fs::create_dir_all(root.join("var/lib/hardend")).expect("state as the daemon leaves it");
    std::fs::write(root.join("var/lib/hardend/state.json"), "{}").expect("state file");
    dpkg(root, &["--purge", "hardend"]);
    assert!(
        group_line(root, "hardend").is_none(),
        "purge leaves the group"
    );
    unstage(root, &["hardend.deb", "hardend-v2.deb", "hardend-v3.deb"]);
    std::fs::remove_file(&calls_file).expect("remove the journalctl notes");
    assert_tree_unchanged(root, &before, &[]);
}

#[test]
fn collector_deb_installs_enabled_not_started_and_purges_clean() {
    let Some(pkgs) = packages() else { return };
    let Some(copy) = debian_copy() else { return };
    let root = copy.path();
    let before = tree(root);

    let deb = stage(root, &pkgs.collector_deb, "collector.deb");
    let said = dpkg(root, &["-i", &deb]);
    assert!(
        said.contains("installed and enabled, but not started") && said.contains("pki issue"),
        "postinst does not say what to do:\n{said}"
    );
    let user = passwd_line(root, "hardend-collector").expect("the collector's user");
    let fields: Vec<&str> = user.split(':').collect();
    assert_eq!(fields[5], "/var/lib/hardend-collector", "{user}");
    assert_eq!(fields[6], "/usr/sbin/nologin", "{user}");
    let uid: u32 = fields[2].parse().expect("uid");
    assert!(uid < 1000, "not a system user: {user}");
    assert!(group_line(root, "hardend-collector").is_some());
    for path in [
        "usr/bin/hardend-collector",
        "usr/bin/hardenctl",
        "usr/lib/systemd/system/hardend-collector.service",
        "etc/hardend-collector/collector.yaml",
        "usr/share/man/man1/hardend-collector.1.gz",
        "usr/share/man/man1/hardenctl.1.gz",
        "usr/share/bash-completion/completions/hardenctl",
        "usr/share/zsh/vendor-completions/_hardend-collector",
        "usr/share/fish/vendor_completions.d/hardenctl.fish",
    ] {
        assert!(root.join(path).is_file(), "{path} is not installed");
    }
    assert!(
        std::fs::symlink_metadata(
            root.join("etc/systemd/system/multi-user.target.wants/hardend-collector.service")
        )
        .is_ok(),
        "the collector's unit is not enabled"
    );
    // The installed programs run in the installed root.
    let out = run_ok(
        Command::new("chroot")
            .arg(root)
            .args(["/usr/bin/hardenctl", "--help"]),
    );
    assert!(text(&out).contains("hardenctl"), "{}", text(&out));

    dpkg(root, &["--purge", "hardend-collector"]);
    assert!(
        passwd_line(root, "hardend-collector").is_none(),
        "purge leaves the user"
    );
    assert!(
        group_line(root, "hardend-collector").is_none(),
        "purge leaves the group"
    );
    unstage(root, &["collector.deb"]);
    assert_tree_unchanged(root, &before, &[]);
}

/// Every man page and completion hardend-dist writes is in exactly one of the
/// two packages, gzipped.
#[test]
fn every_man_page_and_completion_is_in_exactly_one_deb() {
    let Some(pkgs) = packages() else { return };
    if !require(
        "dpkg-deb and tar",
        have_command("dpkg-deb") && have_command("tar"),
    ) {
        return;
    }
    let agent = deb_files(&pkgs.agent_deb);
    let collector = deb_files(&pkgs.collector_deb);
    let both: Vec<_> = agent.intersection(&collector).collect();
    assert!(both.is_empty(), "in both packages: {both:?}");

    let man: BTreeSet<String> = std::fs::read_dir(pkgs.dist.join("man"))
        .expect("dist/man")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .map(|n| format!("/usr/share/man/man1/{n}"))
        .collect();
    assert!(man.iter().all(|m| m.ends_with(".1.gz")), "{man:?}");
    let packaged: BTreeSet<String> = agent
        .iter()
        .chain(&collector)
        .filter(|p| p.starts_with("/usr/share/man/"))
        .cloned()
        .collect();
    assert_eq!(
        packaged, man,
        "man pages packaged vs written by hardend-dist"
    );

    for (shell, dir, name) in [
        ("bash", "/usr/share/bash-completion/completions", "{}"),
        ("zsh", "/usr/share/zsh/vendor-completions", "_{}"),
        ("fish", "/usr/share/fish/vendor_completions.d", "{}.fish"),
    ] {
        for program in ["hardend", "hardend-collector", "hardenctl"] {
            let file = name.replace("{}", program);
            assert!(
                pkgs.dist
                    .join("completions")
                    .join(shell)
                    .join(&file)
                    .is_file(),
                "hardend-dist wrote no {shell} completion {file}"
            );
            let dest = format!("{dir}/{file}");
            let owner = if program == "hardend" {
                &agent
            } else {
                &collector
            };
            assert!(owner.contains(&dest), "{dest} is not packaged");
        }
    }
}

/// `rpm -qp` on both packages: their files (configuration files marked
/// noreplace) and their scriptlets.
#[test]
fn rpms_hold_the_files_and_scriptlets() {
    let Some(pkgs) = packages() else { return };
    if !require("rpm (Debian's rpm package)", have_command("rpm")) {
        return;
    }
    let query = |rpm: &Path, args: &[&str]| -> String {
        String::from_utf8_lossy(&run_ok(Command::new("rpm").arg("-qp").args(args).arg(rpm)).stdout)
            .into_owned()
    };
    let lines = |s: String| -> BTreeSet<String> { s.lines().map(str::to_string).collect() };

    // The same files as the .deb, except the zsh directory (RHEL's zsh reads
    // site-functions) and cargo-deb's copyright file.
    let debish = |files: BTreeSet<String>| -> BTreeSet<String> {
        files
            .into_iter()
            .filter(|f| !f.ends_with("/copyright"))
            .map(|f| {
                f.replace(
                    "/usr/share/zsh/vendor-completions/",
                    "/usr/share/zsh/site-functions/",
                )
            })
            .collect()
    };
    let agent_files = lines(query(&pkgs.agent_rpm, &["-l"]));
    let collector_files = lines(query(&pkgs.collector_rpm, &["-l"]));
    assert_eq!(
        agent_files,
        debish(deb_files(&pkgs.agent_deb)),
        "hardend.rpm vs hardend.deb"
    );
    assert_eq!(
        collector_files,
        debish(deb_files(&pkgs.collector_deb)),
        "hardend-collector.rpm vs hardend-collector.deb"
    );
    assert_eq!(
        lines(query(&pkgs.agent_rpm, &["-c"])),
        BTreeSet::from(["/etc/hardend/hardend.yaml".to_string()])
    );
    assert_eq!(
        lines(query(&pkgs.collector_rpm, &["-c"])),
        BTreeSet::from(["/etc/hardend-collector/collector.yaml".to_string()])
    );
    // noreplace: an upgrade never overwrites an edited configuration file.
    let flags = query(
        &pkgs.agent_rpm,
        &["--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\\n]"],
    );
    assert!(
        flags.lines().any(|l| l == "/etc/hardend/hardend.yaml cn"),
        "hardend.yaml is not a noreplace config file:\n{flags}"
    );

    let scripts = query(&pkgs.agent_rpm, &["--scripts"]);
    for (scriptlet, needle) in [
        ("preinstall", "groupadd -r hardend"),
        (
            "postinstall",
            "systemctl --no-reload enable hardend.service",
        ),
        ("postinstall", "systemctl start hardend.service"),
        ("postinstall", "journalctl --update-catalog"),
        ("preuninstall", "disable --now hardend.service"),
        ("postuninstall", "try-restart hardend.service"),
    ] {
        let body = scriptlet_body(&scripts, scriptlet);
        assert!(
            body.contains(needle),
            "hardend %{scriptlet} lacks `{needle}`:\n{body}"
        );
    }
    let scripts = query(&pkgs.collector_rpm, &["--scripts"]);
    for (scriptlet, needle) in [
        ("preinstall", "useradd -r -g hardend-collector"),
        (
            "postinstall",
            "systemctl --no-reload enable hardend-collector.service",
        ),
        ("preuninstall", "disable --now hardend-collector.service"),
        ("postuninstall", "try-restart hardend-collector.service"),
    ] {
        let body = scriptlet_body(&scripts, scriptlet);
        assert!(
            body.contains(needle),
            "hardend-collector %{scriptlet} lacks `{needle}`:\n{body}"
        );
    }
    assert!(
        !scriptlet_body(&scripts, "postinstall")
            .lines()
            .any(|l| l.trim_start().starts_with("systemctl start")),
        "the collector must not be started before it has certificates"
    );
    // Every scriptlet is valid sh.
    for rpm in [&pkgs.agent_rpm, &pkgs.collector_rpm] {
        let scripts = query(rpm, &["--scripts"]);
        for scriptlet in ["preinstall", "postinstall", "preuninstall", "postuninstall"] {
            let body = scriptlet_body(&scripts, scriptlet);
            run_ok(Command::new("sh").args(["-n", "-c", &body]));
        }
    }
}

/// The body of one scriptlet in `rpm -qp --scripts` output.
fn scriptlet_body(scripts: &str, name: &str) -> String {
    let mut body = String::new();
    let mut inside = false;
    for line in scripts.lines() {
        // `NAME scriptlet:` or `NAME scriptlet (using PROG):`.
        if let Some((head, _)) = line.split_once(" scriptlet")
            && !head.contains(' ')
            && line.ends_with(':')
        {
            inside = head == name;
            continue;
        }
        if inside {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(
        !body.trim().is_empty(),
        "no {name} scriptlet in:\n{scripts}"
    );
    body
}

/// `rpm --root` on a copy of the Debian root runs the .rpm's scriptlets for
/// real (with the root's sh, getent, groupadd and useradd): install (then
/// `installed` checks what the scriptlets did), a reinstall that keeps the
/// edited configuration file `conffile`, and an erase that leaves only that
/// edit (as .rpmsave) and the directories that other packages own on RHEL.
fn rpm_installs_reinstalls_and_erases(
    rpm_file: &Path,
    name: &str,
    conffile: &str,
    installed: impl Fn(&Path),
) {
    if !require("rpm (Debian's rpm package)", have_command("rpm")) {
        return;
    }
    let Some(copy) = debian_copy() else { return };
    let root = copy.path();
    let before = tree(root);
    let rpm = |args: &[&str]| -> String {
        text(&run_ok(
            Command::new("rpm")
                .arg("--root")
                .arg(root)
                .args(args)
                .arg(rpm_file),
        ))
    };
    run_ok(Command::new("rpm").arg("--root").arg(root).arg("--initdb"));
    // --nodeps: the Debian root's libraries are not in the rpm database.
    rpm(&["-i", "--nodeps"]);
    installed(root);
    let files = run_ok(Command::new("rpm").arg("-qlp").arg(rpm_file));
    let files: Vec<String> = String::from_utf8_lossy(&files.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    for file in &files {
        assert!(
            root.join(file.trim_start_matches('/')).is_file(),
            "{file} is not installed"
        );
    }

    let conffile = root.join(conffile);
    let mut edited = std::fs::read_to_string(&conffile).expect("conffile");
    edited.push_str("# edited by the operator\n");
    std::fs::write(&conffile, &edited).expect("edit conffile");
    rpm(&["--reinstall", "--nodeps"]);
    assert_eq!(
        std::fs::read_to_string(&conffile).expect("conffile"),
        edited
    );

    run_ok(
        Command::new("rpm")
            .arg("--root")
            .arg(root)
            .args(["-e", name]),
    );
    for file in &files {
        assert!(
            !root.join(file.trim_start_matches('/')).exists(),
            "erase left {file}"
        );
    }
    let mut saved = conffile.clone().into_os_string();
    saved.push(".rpmsave");
    let saved = PathBuf::from(saved);
    assert_eq!(
        std::fs::read_to_string(&saved).expect("the edit is kept as .rpmsave"),
        edited
    );
    std::fs::remove_file(&saved).expect("remove .rpmsave");
    let config_dir = conffile.parent().expect("the configuration directory");
    std::fs::remove_dir(config_dir)
        .expect("only the .rpmsave was left in the configuration directory");

    // What stays: rpm's own database (Debian's rpm keeps it in /root/.rpmdb),
    // the accounts the scriptlets made (an rpm's users and groups outlive it,
    // as on RHEL: they are lines in files that were there before), and
    // directories that belong to systemd, fish, zsh and bash-completion on
    // RHEL, which this root lacks.
    let shared = [
        "root/.rpmdb",
        "usr/lib/systemd/catalog",
        "usr/share/fish",
        "usr/share/zsh",
        "usr/share/bash-completion",
    ];
    assert_tree_unchanged(root, &before, &shared);
    // Only directories stay among the shared paths.
    for path in tree(root).difference(&before) {
        if !path.starts_with("root/.rpmdb") {
            assert!(
                root.join(path).is_dir(),
                "erase left the file {}",
                path.display()
            );
        }
    }
}

#[test]
fn agent_rpm_installs_reinstalls_and_erases_in_a_debian_root() {
    let Some(pkgs) = packages() else { return };
    rpm_installs_reinstalls_and_erases(
        &pkgs.agent_rpm,
        "hardend",
        "etc/hardend/hardend.yaml",
        |root| {
            assert!(
                group_line(root, "hardend").is_some(),
                "%pre creates the group hardend"
            );
            let policies_d =
                std::fs::metadata(root.join("etc/hardend/policies.d")).expect("policies.d");
            assert_eq!(policies_d.permissions().mode() & 0o777, 0o750);
        },
    );
}

#[test]
fn collector_rpm_installs_reinstalls_and_erases_in_a_debian_root() {
    let Some(pkgs) = packages() else { return };
    rpm_installs_reinstalls_and_erases(
        &pkgs.collector_rpm,
        "hardend-collector",
        "etc/hardend-collector/collector.yaml",
        |root| {
            let user = passwd_line(root, "hardend-collector").expect("%pre creates the user");
            let fields: Vec<&str> = user.split(':').collect();
            assert_eq!(fields[5], "/var/lib/hardend-collector", "{user}");
            assert_eq!(fields[6], "/sbin/nologin", "{user}");
            let uid: u32 = fields[2].parse().expect("uid");
            assert!(uid < 1000, "not a system user: {user}");
            assert!(group_line(root, "hardend-collector").is_some());
            // The installed programs run in the installed root.
            let out = run_ok(
                Command::new("chroot")
                    .arg(root)
                    .args(["/usr/bin/hardenctl", "--help"]),
            );
            assert!(text(&out).contains("hardenctl"), "{}", text(&out));
        },
    );
}
