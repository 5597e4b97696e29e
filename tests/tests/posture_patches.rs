//! Pending security updates and reboots on a real debootstrapped bookworm
//! root. Its own apt lists (the bookworm main suite) name no security
//! suite; the test then writes a security suite made from the real lists
//! (the real `Release` relabelled, the real stanza of an installed package
//! with a newer version) and a non-security suite with a newer version too,
//! and finally "upgrades" the package in the dpkg status.

use std::fs;
use std::path::Path;

use hardend_engine::{RuleResult, Status};
use hardend_tests::{copy_tree, debian_root, shipped_policies};

const LISTS: &str = "var/lib/apt/lists";
const MAIN: &str = "deb.debian.org_debian_dists_bookworm";
const SECURITY: &str = "deb.debian.org_debian-security_dists_bookworm-security";
const UPDATES: &str = "deb.debian.org_debian_dists_bookworm-updates";

fn evaluate(root: &Path) -> Vec<RuleResult> {
    let policies =
        hardend_policy::load_paths(&[shipped_policies().join("linux-baseline-patches.yaml")])
            .unwrap_or_else(|e| panic!("shipped policy: {e:?}"));
    hardend::check_policies(
        root,
        &policies,
        &[],
        Some(hardend::jiff::civil::date(2026, 11, 22)),
    )
    .expect("check")
    .results
}

fn rule<'a>(results: &'a [RuleResult], id: &str) -> &'a RuleResult {
    results
        .iter()
        .find(|r| r.rule == id)
        .unwrap_or_else(|| panic!("{id} was not evaluated"))
}

/// The stanza of `package` in a deb822 text (dpkg status or a Packages list).
fn stanza<'a>(text: &'a str, package: &str) -> &'a str {
    let head = format!("Package: {package}\n");
    let start = if text.starts_with(&head) {
        0
    } else {
        text.find(&format!("\n{head}"))
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{package} not in the text"))
    };
    let rest = &text[start..];
    let end = rest.find("\n\n").map(|i| i + 1).unwrap_or(rest.len());
    &rest[..end]
}

fn field<'a>(stanza: &'a str, name: &str) -> &'a str {
    stanza
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or_else(|| panic!("no {name} in {stanza}"))
}

/// The real `Release` of the main suite with its suite fields replaced.
fn relabelled_release(real: &str, suite: &str, codename: &str, label: &str) -> String {
    real.lines()
        .map(|l| {
            if l.starts_with("Suite: ") {
                format!("Suite: {suite}")
            } else if l.starts_with("Codename: ") {
                format!("Codename: {codename}")
            } else if l.starts_with("Label: ") {
                format!("Label: {label}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// A list holding the real stanza of `package` with `version` instead of its own.
fn list_with(real_packages: &str, package: &str, version: &str) -> String {
    let real = stanza(real_packages, package);
    let old = field(real, "Version");
    real.replacen(
        &format!("Version: {old}\n"),
        &format!("Version: {version}\n"),
        1,
    ) + "\n"
}

#[test]
fn security_updates_and_reboots_on_a_real_bookworm_root() {
    let Some(cached) = debian_root() else { return };
    let tmp = copy_tree(&cached);
    let root = tmp.path();
    let lists = root.join(LISTS);
    let status_path = root.join("var/lib/dpkg/status");
    let status = fs::read_to_string(&status_path).expect("dpkg status");
    let installed = field(stanza(&status, "openssh-server"), "Version").to_string();
    let libc = field(stanza(&status, "libc6"), "Version").to_string();

    // 1. The root's own lists: only the main suite, which is no security suite.
    let results = evaluate(root);
    let patches = rule(&results, "patches-security-updates-applied");
    assert_eq!(patches.status, Status::Fail, "{patches:?}");
    assert!(
        patches
            .actual
            .as_deref()
            .unwrap_or_default()
            .contains("no apt list of a security suite"),
        "{patches:?}"
    );
    assert_eq!(
        rule(&results, "patches-no-reboot-pending").status,
        Status::Pass
    );
    assert_eq!(
        rule(&results, "patches-sshd-runs-current-code").status,
        Status::NotApplicable
    );

    // 2. A security suite offering a newer openssh-server, and a
    //    non-security suite offering a newer libc6.
    let real_release =
        fs::read_to_string(lists.join(format!("{MAIN}_Release"))).expect("real Release");
    let real_packages =
        fs::read_to_string(lists.join(format!("{MAIN}_main_binary-amd64_Packages")))
            .expect("real Packages");
    let candidate = format!("{installed}+deb12u99");
    fs::write(
        lists.join(format!("{SECURITY}_Release")),
        relabelled_release(
            &real_release,
            "oldstable-security",
            "bookworm-security",
            "Debian-Security",
        ),
    )
    .expect("write Release");
    fs::write(
        lists.join(format!("{SECURITY}_main_binary-amd64_Packages")),
        list_with(&real_packages, "openssh-server", &candidate)
            + &list_with(&real_packages, "bash", "1.0-1"),
    )
    .expect("write Packages");
    fs::write(
        lists.join(format!("{UPDATES}_Release")),
        relabelled_release(
            &real_release,
            "oldstable-updates",
            "bookworm-updates",
            "Debian",
        ),
    )
    .expect("write Release");
    fs::write(
        lists.join(format!("{UPDATES}_main_binary-amd64_Packages")),
        list_with(&real_packages, "libc6", &format!("{libc}+deb12u99")),
    )
    .expect("write Packages");

    let results = evaluate(root);
    let patches = rule(&results, "patches-security-updates-applied");
    assert_eq!(patches.status, Status::Fail, "{patches:?}");
    assert_eq!(
        patches.actual.as_deref(),
        Some(
            format!("1 pending: openssh-server {installed} -> {candidate} (oldstable-security)")
                .as_str()
        )
    );
    assert_eq!(patches.evidence.len(), 1);
    assert_eq!(
        patches.evidence[0].path,
        format!("/{LISTS}/{SECURITY}_main_binary-amd64_Packages")
    );
    assert_eq!(patches.evidence[0].line, Some(1));

    // 3. Nothing changed: the parsed lists come from the cache.
    let parses = hardend_probe::patches::list_parses();
    let again = evaluate(root);
    assert_eq!(
        hardend_probe::patches::list_parses(),
        parses,
        "an unchanged list was parsed again"
    );
    assert_eq!(
        rule(&again, "patches-security-updates-applied").status,
        Status::Fail
    );

    // 4. "apt-get upgrade": the dpkg status now has the candidate installed.
    let upgraded = status.replacen(
        stanza(&status, "openssh-server"),
        &stanza(&status, "openssh-server").replacen(
            &format!("Version: {installed}\n"),
            &format!("Version: {candidate}\n"),
            1,
        ),
        1,
    );
    assert_ne!(upgraded, status);
    fs::write(&status_path, upgraded).expect("write status");
    let results = evaluate(root);
    let patches = rule(&results, "patches-security-updates-applied");
    assert_eq!(patches.status, Status::Pass, "{patches:?}");
    assert!(
        patches
            .actual
            .as_deref()
            .unwrap_or_default()
            .starts_with("0 pending"),
        "{patches:?}"
    );

    // 5. The upgrade asked for a reboot.
    fs::create_dir_all(root.join("run")).expect("mkdir run");
    fs::write(
        root.join("run/reboot-required"),
        "*** System restart required ***\n",
    )
    .expect("flag");
    fs::write(root.join("run/reboot-required.pkgs"), "libc6\n").expect("pkgs");
    let reboot = evaluate(root);
    let reboot = rule(&reboot, "patches-no-reboot-pending");
    assert_eq!(reboot.status, Status::Fail);
    assert_eq!(
        reboot.actual.as_deref(),
        Some("reboot required: a reboot is required by: libc6")
    );
    fs::remove_file(root.join("run/reboot-required")).expect("unflag");
    assert_eq!(
        rule(&evaluate(root), "patches-no-reboot-pending").status,
        Status::Pass
    );
}
