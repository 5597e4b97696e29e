//! Tests of the service probe on temporary roots.

use super::*;
use std::fs;
use std::os::unix::fs::symlink;

/// A temporary root with helpers to lay out unit files and links.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new() -> Root {
        Root {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel.trim_start_matches('/'))
    }

    fn file(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    fn link(&self, rel: &str, target: &str) -> &Self {
        let p = self.path(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
        self
    }

    fn fs(&self) -> RootFs {
        RootFs::new(self.dir.path())
    }

    /// Probes one unit alone, and checks that probing it with an index of
    /// the whole root gives the same answer.
    fn probe(&self, unit: &str) -> ServiceFact {
        let fs = self.fs();
        let alone = probe(&fs, unit).unwrap();
        let indexed = probe_with(&fs, unit, &load_index(&fs)).unwrap();
        assert_eq!(alone, indexed, "{unit}: probe and probe_with differ");
        alone
    }
}

const SSH_UNIT: &str = "\
[Unit]
Description=OpenBSD Secure Shell server

[Service]
ExecStart=/usr/sbin/sshd -D

[Install]
WantedBy=multi-user.target
Alias=sshd.service
";

#[test]
fn enabled_through_a_wants_link_in_etc() {
    let root = Root::new();
    root.file("/lib/systemd/system/ssh.service", SSH_UNIT).link(
        "/etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    );
    let fact = root.probe("ssh.service");
    assert_eq!(
        fact.unit_file.as_deref(),
        Some("/lib/systemd/system/ssh.service")
    );
    assert!(!fact.masked);
    assert!(fact.enabled());
    assert_eq!(fact.enabled_by.len(), 1);
    assert_eq!(
        fact.enabled_by[0].path,
        "/etc/systemd/system/multi-user.target.wants/ssh.service"
    );
    assert_eq!(
        fact.enabled_by[0].text.as_deref(),
        Some("-> /lib/systemd/system/ssh.service")
    );
    // An offline root knows nothing about activity of an existing unit.
    assert!(matches!(fact.active, Live::NotApplicable(_)));
}

#[test]
fn a_unit_file_without_links_is_not_enabled() {
    let root = Root::new();
    root.file(
        "/usr/lib/systemd/system/avahi-daemon.service",
        "[Service]\nExecStart=/x\n",
    );
    fs::create_dir_all(root.path("/etc/systemd/system/multi-user.target.wants")).unwrap();
    let fact = root.probe("avahi-daemon.service");
    assert_eq!(
        fact.unit_file.as_deref(),
        Some("/usr/lib/systemd/system/avahi-daemon.service")
    );
    assert!(!fact.enabled());
    assert!(fact.enabled_by.is_empty());
}

#[test]
fn enabled_through_an_alias_link_and_wants_link_named_after_the_alias() {
    let root = Root::new();
    root.file("/lib/systemd/system/ssh.service", SSH_UNIT).link(
        "/etc/systemd/system/sshd.service",
        "/lib/systemd/system/ssh.service",
    );
    let fact = root.probe("ssh.service");
    assert!(fact.enabled(), "{fact:?}");
    assert_eq!(fact.enabled_by[0].path, "/etc/systemd/system/sshd.service");

    // A wants link named after the Alias= is enough on its own.
    let root = Root::new();
    root.file("/lib/systemd/system/ssh.service", SSH_UNIT).link(
        "/etc/systemd/system/multi-user.target.wants/sshd.service",
        "/lib/systemd/system/ssh.service",
    );
    assert!(root.probe("ssh.service").enabled());

    // Asking for the alias finds the real unit through the alias link.
    let root = Root::new();
    root.file("/lib/systemd/system/ssh.service", SSH_UNIT)
        .link(
            "/etc/systemd/system/sshd.service",
            "/lib/systemd/system/ssh.service",
        )
        .link(
            "/etc/systemd/system/multi-user.target.wants/ssh.service",
            "/lib/systemd/system/ssh.service",
        );
    let fact = root.probe("sshd.service");
    assert_eq!(
        fact.unit_file.as_deref(),
        Some("/lib/systemd/system/ssh.service")
    );
    assert!(fact.enabled());
    assert!(
        fact.enabled_by
            .iter()
            .any(|e| e.path == "/etc/systemd/system/multi-user.target.wants/ssh.service")
    );
}

#[test]
fn masked_units_are_not_enabled_whatever_links_exist() {
    let root = Root::new();
    root.file(
        "/lib/systemd/system/telnet.socket",
        "[Socket]\nListenStream=23\n",
    )
    .link(
        "/lib/systemd/system/sockets.target.wants/telnet.socket",
        "../telnet.socket",
    )
    .link("/etc/systemd/system/telnet.socket", "/dev/null");
    let fact = root.probe("telnet.socket");
    assert!(fact.masked);
    assert_eq!(
        fact.unit_file.as_deref(),
        Some("/etc/systemd/system/telnet.socket")
    );
    assert_eq!(
        fact.enabled_by.len(),
        1,
        "the vendor link is still reported"
    );
    assert!(!fact.enabled());

    // An empty file masks too, as in systemd.
    let root = Root::new();
    root.file("/lib/systemd/system/x.service", "[Service]\n")
        .file("/run/systemd/system/x.service", "");
    assert!(root.probe("x.service").masked);
}

#[test]
fn vendor_wants_links_count_as_enabled() {
    let root = Root::new();
    root.file(
        "/usr/lib/systemd/system/telnet.socket",
        "[Socket]\nListenStream=23\n",
    )
    .link(
        "/usr/lib/systemd/system/sockets.target.wants/telnet.socket",
        "../telnet.socket",
    );
    let fact = root.probe("telnet.socket");
    assert!(fact.enabled());
    assert_eq!(
        fact.enabled_by[0].path,
        "/usr/lib/systemd/system/sockets.target.wants/telnet.socket"
    );
}

#[test]
fn template_instances_are_backed_by_their_template() {
    let root = Root::new();
    root.file(
        "/lib/systemd/system/getty@.service",
        "[Service]\nExecStart=/sbin/agetty %I\n",
    )
    .link(
        "/etc/systemd/system/getty.target.wants/getty@tty1.service",
        "/lib/systemd/system/getty@.service",
    );
    let tty1 = root.probe("getty@tty1.service");
    assert_eq!(
        tty1.unit_file.as_deref(),
        Some("/lib/systemd/system/getty@.service")
    );
    assert!(tty1.enabled());
    let tty2 = root.probe("getty@tty2.service");
    assert_eq!(
        tty2.unit_file.as_deref(),
        Some("/lib/systemd/system/getty@.service")
    );
    assert!(!tty2.enabled());

    // Masking the template masks every instance without its own file.
    root.link("/etc/systemd/system/getty@.service", "/dev/null");
    assert!(root.probe("getty@tty2.service").masked);
}

#[test]
fn the_first_unit_directory_wins() {
    let root = Root::new();
    root.file("/lib/systemd/system/a.service", "[Service]\n")
        .file(
            "/etc/systemd/system/a.service",
            "[Service]\nExecStart=/override\n",
        );
    assert_eq!(
        root.probe("a.service").unit_file.as_deref(),
        Some("/etc/systemd/system/a.service")
    );
}

#[test]
fn merged_usr_links_are_reported_once() {
    let root = Root::new();
    root.file("/usr/lib/systemd/system/cron.service", "[Service]\n")
        .link(
            "/usr/lib/systemd/system/multi-user.target.wants/cron.service",
            "../cron.service",
        );
    root.link("/lib", "usr/lib");
    let fact = root.probe("cron.service");
    assert_eq!(fact.enabled_by.len(), 1, "{:?}", fact.enabled_by);
}

#[test]
fn a_missing_unit_is_not_enabled_and_not_active() {
    let root = Root::new();
    fs::create_dir_all(root.path("/etc/systemd/system")).unwrap();
    // A dangling wants link does not make a unit exist.
    root.link(
        "/etc/systemd/system/multi-user.target.wants/telnet.socket",
        "/lib/systemd/system/telnet.socket",
    );
    let fact = root.probe("telnet.socket");
    assert_eq!(fact.unit_file, None);
    assert!(!fact.masked);
    assert!(!fact.enabled());
    assert_eq!(fact.active, Live::Value(Ok(false)));
}

#[test]
fn invalid_unit_names_are_failures_not_paths() {
    let root = Root::new();
    root.file("/etc/passwd.service", "[Service]\n");
    for bad in ["../../passwd.service", "a/b.service", "nosuffix"] {
        let err = probe(&root.fs(), bad).unwrap_err();
        assert!(err.message.contains("invalid unit name"), "{err}");
        assert!(sources(&root.fs(), bad).is_empty());
    }
}

#[test]
fn sources_are_the_existing_unit_and_dependency_directories() {
    let root = Root::new();
    root.file("/lib/systemd/system/ssh.service", SSH_UNIT).link(
        "/etc/systemd/system/multi-user.target.wants/ssh.service",
        "/lib/systemd/system/ssh.service",
    );
    let got = sources(&root.fs(), "ssh.service");
    let want = vec![
        Source::Path(root.path("/etc/systemd/system")),
        Source::Path(root.path("/etc/systemd/system/multi-user.target.wants")),
        Source::Path(root.path("/lib/systemd/system")),
    ];
    assert_eq!(got, want);
}

#[test]
fn systemctl_states_map_to_activity() {
    assert_eq!(is_active_state("active"), Some(true));
    assert_eq!(is_active_state("activating"), Some(true));
    assert_eq!(is_active_state("reloading"), Some(true));
    assert_eq!(is_active_state("inactive"), Some(false));
    assert_eq!(is_active_state("failed"), Some(false));
    assert_eq!(is_active_state(""), None);
    assert_eq!(is_active_state("Failed to connect to bus"), None);
}

/// A root with many units, aliases, templates, masks and links of every
/// kind; every unit (and some that do not exist) probed alone and through
/// one shared index must give the same fact.
#[test]
fn probe_and_probe_with_agree_on_many_units() {
    let root = Root::new();
    let mut units: Vec<String> = Vec::new();
    for i in 0..60 {
        let unit = format!("u{i}.service");
        let vendor = if i % 2 == 0 {
            "/lib/systemd/system"
        } else {
            "/usr/lib/systemd/system"
        };
        let text = if i % 5 == 0 {
            format!("[Service]\nExecStart=/bin/u{i}\n\n[Install]\nAlias=a{i}.service\n")
        } else {
            format!("[Service]\nExecStart=/bin/u{i}\n")
        };
        root.file(&format!("{vendor}/{unit}"), &text);
        match i % 7 {
            0 => {
                root.link(
                    &format!("/etc/systemd/system/multi-user.target.wants/{unit}"),
                    &format!("{vendor}/{unit}"),
                );
            }
            1 => {
                root.link(
                    &format!("{vendor}/sockets.target.requires/{unit}"),
                    &format!("../{unit}"),
                );
            }
            2 => {
                root.link(&format!("/etc/systemd/system/{unit}"), "/dev/null");
            }
            3 => {
                root.link(
                    &format!("/etc/systemd/system/alias{i}.service"),
                    &format!("{vendor}/{unit}"),
                )
                .link(
                    &format!("/run/systemd/system/graphical.target.upholds/alias{i}.service"),
                    &format!("{vendor}/{unit}"),
                );
            }
            4 => {
                root.file(&format!("/run/systemd/system/{unit}"), "");
            }
            5 => {
                root.link(
                    &format!("/etc/systemd/system/default.target.wants/a{i}.service"),
                    &format!("{vendor}/{unit}"),
                );
            }
            _ => {}
        }
        units.push(unit);
    }
    // A linked unit: no unit file of its own, only a wants link to a file
    // elsewhere; a dangling link; a template with an enabled instance.
    root.file("/opt/linked.service", "[Service]\n")
        .link(
            "/etc/systemd/system/multi-user.target.wants/linked.service",
            "/opt/linked.service",
        )
        .link(
            "/etc/systemd/system/multi-user.target.wants/dangling.service",
            "/nowhere/dangling.service",
        )
        .file("/lib/systemd/system/getty@.service", "[Service]\n")
        .link(
            "/etc/systemd/system/getty.target.wants/getty@tty1.service",
            "/lib/systemd/system/getty@.service",
        );
    // A dependency directory that is a symlink, a regular file with a
    // dependency suffix, and names that are not UTF-8 (their lossy form
    // names no file).
    root.link("/etc/systemd/system/timers.target.wants", "/opt/wants")
        .link(
            "/opt/wants/u13.service",
            "/usr/lib/systemd/system/u13.service",
        )
        .file("/etc/systemd/system/bogus.wants", "not a directory\n");
    {
        use std::os::unix::ffi::OsStrExt;
        let odd_dir = std::ffi::OsStr::from_bytes(b"x\xff.wants");
        let etc = root.path("/etc/systemd/system");
        fs::create_dir_all(etc.join(odd_dir)).unwrap();
        symlink(
            "/lib/systemd/system/u8.service",
            etc.join(odd_dir).join("u8.service"),
        )
        .unwrap();
        let odd_alias = std::ffi::OsStr::from_bytes(b"caf\xe9.service");
        symlink("/lib/systemd/system/u10.service", etc.join(odd_alias)).unwrap();
    }
    // A hostile alias that climbs out of the dependency directory.
    root.file(
        "/lib/systemd/system/odd.service",
        "[Install]\nAlias=../odd.service ./x.service\n",
    );
    units.extend(
        [
            "linked.service",
            "dangling.service",
            "getty@tty1.service",
            "getty@tty2.service",
            "odd.service",
            "absent.service",
            "a5.service",
            "alias3.service",
        ]
        .map(String::from),
    );

    let fs = root.fs();
    let index = load_index(&fs);
    let mut enabled = 0;
    let mut masked = 0;
    for unit in &units {
        let alone = probe(&fs, unit);
        let indexed = probe_with(&fs, unit, &index);
        assert_eq!(alone, indexed, "{unit}");
        let fact = alone.unwrap();
        enabled += usize::from(fact.enabled());
        masked += usize::from(fact.masked);
    }
    // The layout above really exercises links and masks.
    assert!(enabled >= 30, "only {enabled} enabled units");
    assert!(masked >= 15, "only {masked} masked units");
}

#[test]
fn one_is_active_answer_is_split_one_state_per_unit() {
    let names = vec![
        "a.service".to_string(),
        "b.service".to_string(),
        "c.socket".to_string(),
    ];
    let states = parse_states("active\ninactive\nreloading\n", &names).expect("three states");
    assert_eq!(states.get("a.service"), Some(&true));
    assert_eq!(states.get("b.service"), Some(&false));
    assert_eq!(states.get("c.socket"), Some(&true));
    // A missing line or an unknown state drops the whole answer, so each
    // unit is asked alone instead of being paired with a wrong line.
    assert!(parse_states("active\ninactive\n", &names).is_none());
    assert!(parse_states("active\nbogus\nfailed\n", &names).is_none());
    assert!(parse_states("", &names).is_none());
}

#[test]
fn prefetching_off_line_asks_nothing_and_changes_nothing() {
    let root = Root::new();
    root.file("/etc/systemd/system/a.service", "[Service]\n");
    let fs = root.fs();
    let mut index = load_index(&fs);
    index.prefetch_activity(&fs, ["a.service", "b.service"]);
    assert!(index.activity.is_empty());
    assert_eq!(
        probe_with(&fs, "a.service", &index).expect("probe"),
        probe(&fs, "a.service").expect("probe")
    );
}
