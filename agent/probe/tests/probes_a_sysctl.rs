//! The sysctl probe on temporary roots: systemd-sysctl ordering, shadowing,
//! masking, globs, and the live value.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use hardend_facts::FactKey;
use hardend_facts::Source;
use hardend_probe::sysctl::{self, load_config, probe, probe_with, sources};
use hardend_probe::{Probe, RootFs};

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn link(root: &Path, path: &str, target: &str) {
    let p = root.join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

/// The configured value and where it came from, as `value@path:line`.
fn configured(root: &Path, key: &str) -> Option<String> {
    let fact = probe(&RootFs::new(root), key);
    fact.configured.unwrap().map(|c| {
        format!(
            "{}@{}:{}",
            c.value,
            c.evidence.path,
            c.evidence.line.unwrap()
        )
    })
}

#[test]
fn earlier_directory_shadows_the_same_name_in_a_later_one() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/usr/lib/sysctl.d/50-net.conf",
        "net.ipv4.ip_forward = 1\n",
    );
    write(
        r,
        "/run/sysctl.d/50-net.conf",
        "net.ipv4.tcp_syncookies = 1\n",
    );
    write(
        r,
        "/etc/sysctl.d/50-net.conf",
        "# ours\nnet.ipv4.ip_forward = 0\n",
    );
    assert_eq!(
        configured(r, "net.ipv4.ip_forward").as_deref(),
        Some("0@/etc/sysctl.d/50-net.conf:2")
    );
    // The /run file is shadowed too, so its key is not configured at all.
    assert_eq!(configured(r, "net.ipv4.tcp_syncookies"), None);
}

#[test]
fn files_apply_in_name_order_across_directories() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/10-admin.conf",
        "net.ipv4.ip_forward = 0\n",
    );
    write(
        r,
        "/usr/lib/sysctl.d/90-vendor.conf",
        "net.ipv4.ip_forward = 1\n",
    );
    write(r, "/lib/sysctl.d/20-x.conf", "net.ipv4.ip_forward = 2\n");
    assert_eq!(
        configured(r, "net.ipv4.ip_forward").as_deref(),
        Some("1@/usr/lib/sysctl.d/90-vendor.conf:1")
    );
    let cfg = load_config(&RootFs::new(r)).unwrap();
    assert_eq!(
        cfg.files(),
        [
            "/etc/sysctl.d/10-admin.conf",
            "/lib/sysctl.d/20-x.conf",
            "/usr/lib/sysctl.d/90-vendor.conf"
        ]
    );
}

#[test]
fn later_assignment_in_one_file_wins() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/60-a.conf",
        "net.ipv4.ip_forward = 1\n; comment\nnet/ipv4/ip_forward=0\n",
    );
    assert_eq!(
        configured(r, "net.ipv4.ip_forward").as_deref(),
        Some("0@/etc/sysctl.d/60-a.conf:3")
    );
}

#[test]
fn dev_null_symlink_masks_a_vendor_file() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/usr/lib/sysctl.d/50-default.conf",
        "net.ipv4.ip_forward = 1\n",
    );
    link(r, "/etc/sysctl.d/50-default.conf", "/dev/null");
    assert_eq!(configured(r, "net.ipv4.ip_forward"), None);
    // Masking is by the link's target, not by what the root keeps at /dev/null.
    write(r, "/dev/null", "net.ipv4.ip_forward = 7\n");
    assert_eq!(configured(r, "net.ipv4.ip_forward"), None);
    // A dangling symlink contributes nothing but shadows as well.
    write(
        r,
        "/usr/lib/sysctl.d/51-gone.conf",
        "net.ipv4.tcp_syncookies = 0\n",
    );
    link(r, "/etc/sysctl.d/51-gone.conf", "/nowhere/51-gone.conf");
    assert_eq!(configured(r, "net.ipv4.tcp_syncookies"), None);
}

#[test]
fn dash_prefix_still_assigns_and_dash_alone_excludes_from_globs() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/70-rp.conf",
        "-net.ipv4.conf.all.rp_filter = 1\n\
         net.ipv4.conf.*.accept_redirects = 0\n\
         -net.ipv4.conf.lo.accept_redirects\n",
    );
    assert_eq!(
        configured(r, "net.ipv4.conf.all.rp_filter").as_deref(),
        Some("1@/etc/sysctl.d/70-rp.conf:1")
    );
    assert_eq!(
        configured(r, "net.ipv4.conf.eth0.accept_redirects").as_deref(),
        Some("0@/etc/sysctl.d/70-rp.conf:2")
    );
    assert_eq!(configured(r, "net.ipv4.conf.lo.accept_redirects"), None);
}

#[test]
fn an_explicit_key_beats_a_later_glob() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/10-a.conf",
        "net.ipv4.conf.all.rp_filter = 1\n",
    );
    write(
        r,
        "/etc/sysctl.d/90-b.conf",
        "net.ipv4.conf.*.rp_filter = 2\n",
    );
    assert_eq!(
        configured(r, "net.ipv4.conf.all.rp_filter").as_deref(),
        Some("1@/etc/sysctl.d/10-a.conf:1")
    );
    assert_eq!(
        configured(r, "net.ipv4.conf.default.rp_filter").as_deref(),
        Some("2@/etc/sysctl.d/90-b.conf:1")
    );
}

#[test]
fn interface_names_with_dots_use_the_slash_form() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/10-vlan.conf",
        "net.ipv4.conf.eth0/100.rp_filter = 1\n",
    );
    write(r, "/proc/sys/net/ipv4/conf/eth0.100/rp_filter", "2\n");
    for key in [
        "net.ipv4.conf.eth0/100.rp_filter",
        "net/ipv4/conf/eth0.100/rp_filter",
    ] {
        let fact = probe(&RootFs::new(r), key);
        assert_eq!(fact.live.unwrap().as_deref(), Some("2"), "{key}");
        assert_eq!(fact.live_path, "/proc/sys/net/ipv4/conf/eth0.100/rp_filter");
        assert_eq!(fact.configured.unwrap().unwrap().value, "1", "{key}");
    }
}

#[test]
fn sysctl_conf_alone_is_applied_after_sysctl_d() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "/etc/sysctl.conf", "net.ipv4.ip_forward=1\n");
    write(r, "/etc/sysctl.d/99-zz.conf", "net.ipv4.ip_forward=0\n");
    assert_eq!(
        configured(r, "net.ipv4.ip_forward").as_deref(),
        Some("1@/etc/sysctl.conf:1")
    );
}

#[test]
fn sysctl_conf_through_the_debian_symlink_is_read_once_in_place() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.conf",
        "#\n# Debian's file\nnet.ipv4.ip_forward=1\nnet.ipv4.tcp_syncookies=0\n",
    );
    link(r, "/etc/sysctl.d/99-sysctl.conf", "../sysctl.conf");
    write(r, "/etc/sysctl.d/99-zz.conf", "net.ipv4.ip_forward=0\n");
    // systemd applies sysctl.conf as 99-sysctl.conf, before 99-zz.conf, and
    // not a second time at the end.
    assert_eq!(
        configured(r, "net.ipv4.ip_forward").as_deref(),
        Some("0@/etc/sysctl.d/99-zz.conf:1")
    );
    assert_eq!(
        configured(r, "net.ipv4.tcp_syncookies").as_deref(),
        Some("0@/etc/sysctl.conf:4")
    );
    let cfg = load_config(&RootFs::new(r)).unwrap();
    assert_eq!(
        cfg.files(),
        ["/etc/sysctl.conf", "/etc/sysctl.d/99-zz.conf"]
    );
}

#[test]
fn only_conf_files_that_are_not_hidden_count() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "/etc/sysctl.d/README.sysctl", "net.ipv4.ip_forward=1\n");
    write(r, "/etc/sysctl.d/.hidden.conf", "net.ipv4.ip_forward=1\n");
    write(
        r,
        "/etc/sysctl.d/10-x.conf.dpkg-old",
        "net.ipv4.ip_forward=1\n",
    );
    assert_eq!(configured(r, "net.ipv4.ip_forward"), None);
}

#[test]
fn live_value_is_folded_and_absent_is_none() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/proc/sys/net/ipv4/ip_local_port_range",
        "32768\t60999\n",
    );
    let fs = RootFs::new(r);
    let fact = probe(&fs, "net.ipv4.ip_local_port_range");
    assert_eq!(fact.live.unwrap().as_deref(), Some("32768 60999"));
    assert_eq!(fact.live_path, "/proc/sys/net/ipv4/ip_local_port_range");
    let fact = probe(&fs, "net.ipv4.ip_forward");
    assert_eq!(fact.live.unwrap(), None);
    assert_eq!(fact.configured.unwrap(), None);
}

#[test]
fn unreadable_live_file_or_config_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    // A directory where a value file should be cannot be read (EISDIR), even as root.
    fs::create_dir_all(r.join("proc/sys/net/ipv4/ip_forward")).unwrap();
    fs::create_dir_all(r.join("etc/sysctl.d/10-dir.conf")).unwrap();
    let fact = probe(&RootFs::new(r), "net.ipv4.ip_forward");
    let live = fact.live.unwrap_err();
    assert!(live.message.contains("net.ipv4.ip_forward"), "{live}");
    let cfg = fact.configured.unwrap_err();
    assert!(cfg.message.contains("10-dir.conf"), "{cfg}");
}

#[test]
fn invalid_keys_are_errors_without_reading() {
    let d = tempfile::tempdir().unwrap();
    let fact = probe(&RootFs::new(d.path()), "net/../../etc/shadow");
    assert!(
        fact.live
            .unwrap_err()
            .message
            .contains("invalid sysctl key")
    );
    assert!(fact.configured.is_err());
}

#[test]
fn one_loaded_config_serves_many_keys() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/10-a.conf",
        "kernel.kptr_restrict = 2\nfs.suid_dumpable=0\n",
    );
    let fs = RootFs::new(r);
    let cfg = load_config(&fs);
    for (k, v) in [("kernel.kptr_restrict", "2"), ("fs.suid_dumpable", "0")] {
        assert_eq!(probe_with(&fs, k, &cfg), probe(&fs, k));
        assert_eq!(
            probe_with(&fs, k, &cfg).configured.unwrap().unwrap().value,
            v
        );
    }
}

#[test]
fn sources_are_the_live_file_and_every_config_place() {
    let fs = RootFs::new("/srv/img");
    let got = sources(&fs, "net.ipv4.ip_forward");
    let want: Vec<Source> = [
        "/srv/img/proc/sys/net/ipv4/ip_forward",
        "/srv/img/etc/sysctl.d",
        "/srv/img/run/sysctl.d",
        "/srv/img/usr/local/lib/sysctl.d",
        "/srv/img/usr/lib/sysctl.d",
        "/srv/img/lib/sysctl.d",
        "/srv/img/etc/sysctl.conf",
    ]
    .into_iter()
    .map(|p| Source::Path(p.into()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn live_host_value_matches_proc() {
    // Read-only look at this machine's own kernel: the value must be what
    // /proc says, folded.
    let want = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let fact = probe(&RootFs::new("/"), "net.ipv4.ip_local_port_range");
    assert_eq!(fact.live.unwrap(), Some(sysctl::fold_whitespace(&want)));
    assert!(fact.configured.is_ok());
}

#[test]
fn collect_reads_the_config_once_and_agrees_with_single_probes() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(
        r,
        "/etc/sysctl.d/10-a.conf",
        "net.ipv4.ip_forward = 0\nnet.ipv4.conf.*.rp_filter=1\n",
    );
    write(r, "/proc/sys/net/ipv4/ip_forward", "1\n");
    let keys = [
        "net.ipv4.ip_forward",
        "net.ipv4.conf.all.rp_filter",
        "kernel.kptr_restrict",
        "bad key",
    ];
    let probe_all = Probe::new(r);
    let facts = probe_all.collect(
        &keys
            .iter()
            .map(|k| FactKey::Sysctl(k.to_string()))
            .collect(),
    );
    assert_eq!(facts.sysctl.len(), keys.len());
    for k in keys {
        assert_eq!(facts.sysctl[k], probe(&RootFs::new(r), k), "{k}");
    }
    assert_eq!(
        facts.sysctl["net.ipv4.ip_forward"]
            .live
            .as_ref()
            .unwrap()
            .as_deref(),
        Some("1")
    );
}
