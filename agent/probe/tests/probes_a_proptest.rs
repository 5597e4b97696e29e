//! Property tests: the parsers of hostile files never panic, and well-formed
//! entries survive a round trip through them.

use hardend_probe::sysctl::{SysctlConfig, normalize_key, parse_conf};
use hardend_probe::{accounts, package};
use proptest::prelude::*;

/// Text made of the characters these formats care about, so that the
/// generated lines are often almost valid.
fn near_valid() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9:,#;+=. \t\n\r/*?\\[\\]!$-]{0,600}"
}

fn dpkg_like() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "Package: [a-z0-9+.-]{0,12}",
        "Status: (install|hold|deinstall|purge)? ?(ok|reinstreq)? ?(installed|config-files|half-installed)?",
        "Version: [0-9:.~+-]{0,10}",
        "Architecture: (amd64|i386|all)",
        " [ -~]{0,30}",
        "[ \t]*",
        "[A-Za-z-]{0,10}:?[ -~]{0,20}",
    ];
    prop::collection::vec(line, 0..60).prop_map(|lines| lines.join("\n").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn account_parsers_never_panic(text in any::<String>()) {
        let _ = accounts::parse_passwd(&text);
        let _ = accounts::parse_shadow(&text);
        let _ = accounts::parse_group(&text);
        let _ = accounts::parse_login_defs(&text);
        let _ = accounts::user_name(&text, 0);
        let _ = accounts::group_name(&text, 0);
    }

    #[test]
    fn account_parsers_never_panic_on_near_valid_text(text in near_valid()) {
        let lines = text.split('\n').count() as u32;
        for e in accounts::parse_passwd(&text) {
            prop_assert!(e.line >= 1 && e.line <= lines);
            prop_assert!(!e.name.is_empty());
        }
        for e in accounts::parse_shadow(&text) {
            prop_assert!(e.line >= 1 && e.line <= lines);
        }
        for e in accounts::parse_group(&text) {
            prop_assert!(e.members.iter().all(|m| !m.is_empty()));
        }
        for (k, d) in accounts::parse_login_defs(&text) {
            prop_assert!(!k.is_empty() && !d.value.is_empty());
        }
    }

    #[test]
    fn passwd_entries_round_trip(
        entries in prop::collection::vec(
            ("[a-z_][a-z0-9_-]{0,15}", any::<u32>(), any::<u32>(), "[A-Za-z ,]{0,20}", "/[a-z/]{0,20}", "/[a-z/]{0,20}"),
            0..20,
        )
    ) {
        let text: String = entries
            .iter()
            .map(|(n, u, g, gecos, home, shell)| format!("{n}:x:{u}:{g}:{gecos}:{home}:{shell}\n"))
            .collect();
        let parsed = accounts::parse_passwd(&text);
        prop_assert_eq!(parsed.len(), entries.len());
        for (i, (p, (n, u, g, gecos, home, shell))) in parsed.iter().zip(&entries).enumerate() {
            prop_assert_eq!(&p.name, n);
            prop_assert_eq!((p.uid, p.gid), (*u, *g));
            prop_assert_eq!(&p.gecos, gecos);
            prop_assert_eq!(&p.home, home);
            prop_assert_eq!(&p.shell, shell);
            prop_assert_eq!(p.line as usize, i + 1);
        }
    }

    #[test]
    fn dpkg_parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..2000)) {
        let recs = package::parse_dpkg_status(&data, "/var/lib/dpkg/status");
        let _ = package::installed_packages(recs);
    }

    #[test]
    fn dpkg_parser_never_panics_on_near_valid_stanzas(data in dpkg_like()) {
        let recs = package::parse_dpkg_status(&data, "/var/lib/dpkg/status");
        let n = recs.len();
        let installed = package::installed_packages(recs);
        prop_assert!(installed.len() <= n);
        for (name, p) in installed {
            prop_assert_eq!(&name, &p.name);
            prop_assert!(p.evidence.line.is_some());
        }
    }

    #[test]
    fn sysctl_conf_parsing_and_lookup_never_panic(text in any::<String>(), key in any::<String>()) {
        let mut cfg = SysctlConfig::default();
        cfg.apply("/etc/sysctl.d/x.conf", parse_conf(&text));
        let _ = cfg.lookup(&key);
        let _ = cfg.lookup("net.ipv4.ip_forward");
    }

    #[test]
    fn sysctl_near_valid_conf_and_keys(text in near_valid(), key in "[a-z0-9./_*-]{0,30}") {
        let mut cfg = SysctlConfig::default();
        cfg.apply("/etc/sysctl.d/x.conf", parse_conf(&text));
        cfg.apply("/etc/sysctl.d/y.conf", parse_conf(&text));
        if let Ok(Some(v)) = cfg.lookup(&key) {
            prop_assert!(v.evidence.line.is_some());
            prop_assert!(!v.value.contains("  "));
        }
    }

    #[test]
    fn normalized_keys_are_safe_relative_paths(key in any::<String>()) {
        if let Ok(n) = normalize_key(&key) {
            prop_assert!(!n.is_empty());
            prop_assert!(!n.starts_with('/'));
            prop_assert!(n.split('/').all(|c| !c.is_empty() && c != "." && c != ".."));
        }
    }
}
