//! Data-driven tests of the sshd_config model: configuration text, keyword,
//! connection, expected value. Cases named `regression_*` pin disagreements
//! the differential test against the real `sshd -T` found.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// Files held in memory; globs match the stored paths.
struct Mem(BTreeMap<String, String>);

impl SshdLoader for Mem {
    fn read(&self, path: &str) -> Result<String, String> {
        self.0
            .get(path)
            .cloned()
            .ok_or_else(|| "No such file or directory".to_string())
    }
    fn glob(&self, pat: &str) -> Result<Vec<String>, String> {
        Ok(self
            .0
            .keys()
            .filter(|k| pattern::glob_path(pat, k))
            .cloned()
            .collect())
    }
}

const MAIN: &str = "/etc/ssh/sshd_config";

fn load(files: &[(&str, &str)]) -> Result<SshdConfig, SshdError> {
    let mem = Mem(files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect());
    SshdConfig::parse(&mem, files[0].0)
}

/// A connection from a compact spec: `user=alice,groups=wheel:staff,host=..,addr=..,laddr=..,lport=22`.
fn conn(spec: &str) -> Option<Connection> {
    if spec == "-" {
        return None;
    }
    let mut c = Connection::default();
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').expect("key=value");
        match k {
            "user" => c.user = Some(v.to_string()),
            "groups" => c.groups = v.split(':').map(str::to_string).collect(),
            "host" => c.host = Some(v.to_string()),
            "addr" => c.addr = Some(v.to_string()),
            "laddr" => c.laddr = Some(v.to_string()),
            "lport" => c.lport = Some(v.parse().expect("port")),
            "rdomain" => c.rdomain = Some(v.to_string()),
            other => panic!("unknown spec key {other}"),
        }
    }
    Some(c)
}

/// (name, config text, keyword, connection spec or "-" for `sshd -T`, expected value)
const TABLE: &[(&str, &str, &str, &str, &str)] = &[
    // Defaults (Debian 12's compiled-in values).
    (
        "default_permitrootlogin",
        "",
        "PermitRootLogin",
        "-",
        "prohibit-password",
    ),
    (
        "default_passwordauthentication",
        "",
        "PasswordAuthentication",
        "-",
        "yes",
    ),
    (
        "default_kbdinteractive",
        "",
        "KbdInteractiveAuthentication",
        "-",
        "yes",
    ),
    ("default_usepam_debian", "", "UsePAM", "-", "no"),
    ("default_x11forwarding", "", "X11Forwarding", "-", "no"),
    ("default_maxstartups", "", "MaxStartups", "-", "10:30:100"),
    ("default_logingracetime", "", "LoginGraceTime", "-", "120"),
    ("default_loglevel", "", "LogLevel", "-", "INFO"),
    ("default_banner", "", "Banner", "-", "none"),
    (
        "default_authenticationmethods",
        "",
        "AuthenticationMethods",
        "-",
        "any",
    ),
    ("default_allowusers_empty", "", "AllowUsers", "-", ""),
    ("default_port", "", "Port", "-", "22"),
    (
        "default_listenaddress",
        "",
        "ListenAddress",
        "-",
        "[::]:22,0.0.0.0:22",
    ),
    (
        "default_ciphers",
        "",
        "Ciphers",
        "-",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    ),
    // Syntax: case, `=`, quoting, comments.
    (
        "keyword_case_insensitive",
        "pErMiTrOoTlOgIn no\n",
        "permitrootlogin",
        "-",
        "no",
    ),
    (
        "equals_syntax",
        "PermitRootLogin=no\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "equals_with_spaces",
        "PermitRootLogin = no\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "double_quotes",
        "PermitRootLogin \"no\"\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "single_quotes",
        "PermitRootLogin 'no'\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "quoted_keyword",
        "\"PermitRootLogin\" no\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "trailing_comment",
        "MaxAuthTries 3 # three\n",
        "MaxAuthTries",
        "-",
        "3",
    ),
    (
        "comment_line_ignored",
        "# MaxAuthTries 3\nMaxAuthTries 4\n",
        "MaxAuthTries",
        "-",
        "4",
    ),
    (
        "crlf_line_end",
        "MaxAuthTries 5\r\n",
        "MaxAuthTries",
        "-",
        "5",
    ),
    (
        "leading_whitespace",
        "   \tMaxAuthTries 5\n",
        "MaxAuthTries",
        "-",
        "5",
    ),
    (
        "value_case_folded",
        "PasswordAuthentication NO\n",
        "PasswordAuthentication",
        "-",
        "no",
    ),
    (
        "backslash_space_escape",
        "AllowUsers alice\\ bob\n",
        "AllowUsers",
        "-",
        "alice bob",
    ),
    // First value wins; lists accumulate.
    (
        "first_value_wins",
        "PermitRootLogin no\nPermitRootLogin yes\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "allowusers_accumulate",
        "AllowUsers a b\nAllowUsers c\n",
        "AllowUsers",
        "-",
        "a,b,c",
    ),
    (
        "acceptenv_accumulate",
        "AcceptEnv LANG LC_*\nAcceptEnv TZ\n",
        "AcceptEnv",
        "-",
        "LANG,LC_*,TZ",
    ),
    (
        "ports_accumulate",
        "Port 2222\nPort 22\n",
        "Port",
        "-",
        "2222,22",
    ),
    (
        "authmethods_first_line",
        "AuthenticationMethods publickey,password publickey\nAuthenticationMethods password\n",
        "AuthenticationMethods",
        "-",
        "publickey,password publickey",
    ),
    // Aliases.
    (
        "alias_challengeresponse",
        "ChallengeResponseAuthentication no\n",
        "KbdInteractiveAuthentication",
        "-",
        "no",
    ),
    (
        "alias_keyword_lookup",
        "KbdInteractiveAuthentication no\n",
        "ChallengeResponseAuthentication",
        "-",
        "no",
    ),
    (
        "alias_without_password",
        "PermitRootLogin without-password\n",
        "PermitRootLogin",
        "-",
        "prohibit-password",
    ),
    (
        "alias_pubkeyacceptedkeytypes",
        "PubkeyAcceptedKeyTypes ssh-ed25519\n",
        "PubkeyAcceptedAlgorithms",
        "-",
        "ssh-ed25519",
    ),
    (
        "alias_keepalive",
        "KeepAlive no\n",
        "TCPKeepAlive",
        "-",
        "no",
    ),
    (
        "alias_compression_delayed",
        "Compression delayed\n",
        "Compression",
        "-",
        "yes",
    ),
    (
        "alias_tcpforwarding_all",
        "AllowTcpForwarding all\n",
        "AllowTcpForwarding",
        "-",
        "yes",
    ),
    // Printing.
    (
        "duration_minutes",
        "LoginGraceTime 2m\n",
        "LoginGraceTime",
        "-",
        "120",
    ),
    (
        "duration_compound",
        "ClientAliveInterval 1h30m\n",
        "ClientAliveInterval",
        "-",
        "5400",
    ),
    (
        "loglevel_upper",
        "LogLevel verbose\n",
        "LogLevel",
        "-",
        "VERBOSE",
    ),
    (
        "loglevel_debug1_is_debug",
        "LogLevel DEBUG1\n",
        "LogLevel",
        "-",
        "DEBUG",
    ),
    (
        "maxstartups_triple",
        "MaxStartups 10:30:60\n",
        "MaxStartups",
        "-",
        "10:30:60",
    ),
    (
        "maxstartups_single",
        "MaxStartups 5\n",
        "MaxStartups",
        "-",
        "5:30:5",
    ),
    (
        "maxstartups_last_wins_keeps_rate",
        "MaxStartups 10:50:100\nMaxStartups 5\n",
        "MaxStartups",
        "-",
        "5:50:5",
    ),
    (
        "permituserenv_patterns",
        "PermitUserEnvironment LANG,LC_*\n",
        "PermitUserEnvironment",
        "-",
        "LANG,LC_*",
    ),
    (
        "banner_absolute",
        "Banner /etc/issue.net\n",
        "Banner",
        "-",
        "/etc/issue.net",
    ),
    (
        "banner_none_any_case",
        "Banner NONE\n",
        "Banner",
        "-",
        "none",
    ),
    ("banner_tilde", "Banner ~/b\n", "Banner", "-", "/root/b"),
    (
        "listen_with_ports",
        "Port 2222\nPort 22\nListenAddress 127.0.0.1\nListenAddress [::1]:2200\n",
        "ListenAddress",
        "-",
        "127.0.0.1:2222,127.0.0.1:22,[::1]:2200",
    ),
    (
        "listen_family_inet",
        "AddressFamily inet\n",
        "ListenAddress",
        "-",
        "0.0.0.0:22",
    ),
    (
        "listen_bare_ipv6",
        "ListenAddress ::1\n",
        "ListenAddress",
        "-",
        "[::1]:22",
    ),
    // Algorithm lists.
    (
        "ciphers_plus",
        "Ciphers +3des-cbc\n",
        "Ciphers",
        "-",
        "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,3des-cbc",
    ),
    (
        "ciphers_minus_pattern",
        "Ciphers -aes*\n",
        "Ciphers",
        "-",
        "chacha20-poly1305@openssh.com",
    ),
    (
        "ciphers_caret",
        "Ciphers ^aes256-cbc,aes128-ctr\n",
        "Ciphers",
        "-",
        "aes256-cbc,aes128-ctr,chacha20-poly1305@openssh.com,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    ),
    (
        "ciphers_explicit",
        "Ciphers aes256-gcm@openssh.com,aes128-ctr\n",
        "Ciphers",
        "-",
        "aes256-gcm@openssh.com,aes128-ctr",
    ),
    (
        "macs_minus_etm",
        "MACs -*etm*\n",
        "MACs",
        "-",
        "umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    ),
    (
        "kex_caret",
        "KexAlgorithms ^curve25519-sha256\n",
        "KexAlgorithms",
        "-",
        "curve25519-sha256,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
    ),
    (
        "hostkeyalgorithms_wildcard",
        "HostKeyAlgorithms ssh-ed25519*,rsa-sha2-512\n",
        "HostKeyAlgorithms",
        "-",
        "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,rsa-sha2-512",
    ),
    // Match blocks: override, first wins among matching blocks, criteria.
    (
        "match_user_overrides",
        "PermitRootLogin no\nMatch User alice\nPermitRootLogin yes\n",
        "PermitRootLogin",
        "user=alice,lport=22",
        "yes",
    ),
    (
        "match_user_other_user",
        "PermitRootLogin no\nMatch User alice\nPermitRootLogin yes\n",
        "PermitRootLogin",
        "user=bob,lport=22",
        "no",
    ),
    (
        "match_not_in_global",
        "PermitRootLogin no\nMatch User alice\nPermitRootLogin yes\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "match_first_matching_wins",
        "Match User alice\nMaxAuthTries 2\nMatch All\nMaxAuthTries 5\n",
        "MaxAuthTries",
        "user=alice,lport=22",
        "2",
    ),
    (
        "match_all_overrides_global",
        "PasswordAuthentication yes\nMatch All\nPasswordAuthentication no\n",
        "PasswordAuthentication",
        "-",
        "no",
    ),
    (
        "match_all_sets_global_only_keyword",
        "Match All\nCiphers aes128-ctr\n",
        "Ciphers",
        "-",
        "aes128-ctr",
    ),
    (
        "match_wildcard_user",
        "Match User al*\nX11Forwarding yes\n",
        "X11Forwarding",
        "user=alice,lport=22",
        "yes",
    ),
    (
        "match_question_mark",
        "Match User b?b\nX11Forwarding yes\n",
        "X11Forwarding",
        "user=bob,lport=22",
        "yes",
    ),
    (
        "match_negation",
        "Match User !alice,*\nX11Forwarding yes\n",
        "X11Forwarding",
        "user=alice,lport=22",
        "no",
    ),
    (
        "match_negation_others",
        "Match User !alice,*\nX11Forwarding yes\n",
        "X11Forwarding",
        "user=bob,lport=22",
        "yes",
    ),
    (
        "match_negation_alone_never",
        "Match User !alice\nX11Forwarding yes\n",
        "X11Forwarding",
        "user=bob,lport=22",
        "no",
    ),
    (
        "match_all_criteria_required",
        "Match User alice Address 10.0.0.0/8\nMaxSessions 1\n",
        "MaxSessions",
        "user=alice,addr=192.168.1.1,lport=22",
        "10",
    ),
    (
        "match_all_criteria_hold",
        "Match User alice Address 10.0.0.0/8\nMaxSessions 1\n",
        "MaxSessions",
        "user=alice,addr=10.9.8.7,lport=22",
        "1",
    ),
    (
        "match_group",
        "Match Group wheel\nMaxSessions 1\n",
        "MaxSessions",
        "user=alice,groups=alice:wheel,lport=22",
        "1",
    ),
    (
        "match_group_negated",
        "Match Group !staff,*\nMaxSessions 1\n",
        "MaxSessions",
        "user=bob,groups=bob:staff,lport=22",
        "10",
    ),
    (
        "match_group_without_user",
        "Match Group wheel\nMaxSessions 1\n",
        "MaxSessions",
        "groups=wheel,lport=22",
        "10",
    ),
    (
        "match_host_case_insensitive",
        "Match Host *.EXAMPLE.com\nPermitTunnel yes\n",
        "PermitTunnel",
        "host=Web1.Example.COM,lport=22",
        "yes",
    ),
    (
        "match_address_cidr_v6",
        "Match Address 2001:db8::/32\nMaxSessions 2\n",
        "MaxSessions",
        "addr=2001:db8::5,lport=22",
        "2",
    ),
    (
        "match_address_excluded",
        "Match Address 192.168.1.0/24,!192.168.1.20\nMaxSessions 2\n",
        "MaxSessions",
        "addr=192.168.1.20,lport=22",
        "10",
    ),
    (
        "match_address_wildcard",
        "Match Address 127.0.0.*\nMaxSessions 2\n",
        "MaxSessions",
        "addr=127.0.0.1,lport=22",
        "2",
    ),
    (
        "match_address_not_an_ip",
        "Match Address *\nMaxSessions 2\n",
        "MaxSessions",
        "addr=example.com,lport=22",
        "10",
    ),
    (
        "match_localaddress",
        "Match LocalAddress 10.0.0.1\nMaxSessions 2\n",
        "MaxSessions",
        "laddr=10.0.0.1,lport=22",
        "2",
    ),
    (
        "match_localport",
        "Match LocalPort 2222\nMaxSessions 2\n",
        "MaxSessions",
        "lport=2222",
        "2",
    ),
    (
        "match_localport_other",
        "Match LocalPort 2222\nMaxSessions 2\n",
        "MaxSessions",
        "lport=22",
        "10",
    ),
    (
        "match_rdomain",
        "Match RDomain blue\nMaxSessions 2\n",
        "MaxSessions",
        "rdomain=blue,lport=22",
        "2",
    ),
    (
        "match_missing_attribute_no_match",
        "Match Host *\nMaxSessions 2\n",
        "MaxSessions",
        "user=alice,lport=22",
        "10",
    ),
    (
        "match_criterion_equals",
        "Match User=alice\nMaxSessions 2\n",
        "MaxSessions",
        "user=alice,lport=22",
        "2",
    ),
    (
        "match_trailing_comment",
        "Match User alice # note\nMaxSessions 2\n",
        "MaxSessions",
        "user=alice,lport=22",
        "2",
    ),
    (
        "match_allowusers_replaces_global",
        "AllowUsers a b\nMatch User x\nAllowUsers z y\nMatch User x\nAllowUsers w\n",
        "AllowUsers",
        "user=x,lport=22",
        "z,y,w",
    ),
    (
        "match_global_only_keyword_not_copied",
        "Match All\nPort 2222\n",
        "Port",
        "user=alice,lport=22",
        "2222",
    ),
    (
        "match_global_keyword_after_match_all",
        "Match All\nPermitRootLogin no\nPermitRootLogin yes\n",
        "PermitRootLogin",
        "-",
        "no",
    ),
    (
        "match_chroot_none",
        "ChrootDirectory /srv\nMatch User bob\nChrootDirectory none\n",
        "ChrootDirectory",
        "user=bob,lport=22",
        "none",
    ),
    // Regressions found by the differential test.
    (
        "regression_loglevel_quiet_prints_silent",
        "LogLevel QUIET\n",
        "LogLevel",
        "-",
        "SILENT",
    ),
    (
        "regression_relative_banner_double_slash",
        "Banner issue.txt\n",
        "Banner",
        "-",
        "//issue.txt",
    ),
    (
        "regression_ipqos_single_value_repeated",
        "IPQoS ef\n",
        "IPQoS",
        "-",
        "ef ef",
    ),
    (
        "regression_ipqos_lower_case",
        "IPQoS AF21 cs1\n",
        "IPQoS",
        "-",
        "af21 cs1",
    ),
    (
        "regression_rekeylimit_scaled",
        "RekeyLimit 1G 1h\n",
        "RekeyLimit",
        "-",
        "1073741824 3600",
    ),
    (
        "regression_setenv_one_per_line",
        "SetEnv A=1 B=2 A=3\n",
        "SetEnv",
        "-",
        "A=1,B=2",
    ),
    (
        "regression_subsystem_accumulates",
        "Subsystem sftp /usr/lib/openssh/sftp-server\nSubsystem x /bin/true -x\n",
        "Subsystem",
        "-",
        "sftp /usr/lib/openssh/sftp-server,x /bin/true -x",
    ),
    (
        "regression_ciphers_minus_everything_is_default",
        "KexAlgorithms -*\n",
        "KexAlgorithms",
        "-",
        "sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
    ),
    (
        "regression_permituserenv_case_sensitive",
        "PermitUserEnvironment YES\n",
        "PermitUserEnvironment",
        "-",
        "YES",
    ),
    (
        "regression_port_service_name",
        "Port ssh\n",
        "Port",
        "-",
        "22",
    ),
];

/// Configurations sshd refuses to start with, and so must hardend.
const REJECTED: &[(&str, &str)] = &[
    ("unknown_keyword", "NoSuchKeyword yes\n"),
    ("missing_argument", "LogLevel\n"),
    ("unterminated_quote", "PermitRootLogin \"no\n"),
    ("bad_flag_value", "PasswordAuthentication maybe\n"),
    (
        "global_keyword_in_match",
        "Match User alice\nCiphers aes128-ctr\n",
    ),
    (
        "bad_cidr_host_bits",
        "Match Address 10.0.0.1/8\nX11Forwarding yes\n",
    ),
    ("match_without_criteria", "Match\n"),
    ("match_all_combined", "Match All User alice\n"),
    ("match_unknown_criterion", "Match Colour blue\n"),
    ("bad_cipher", "Ciphers aes*\n"),
    ("negative_int", "MaxAuthTries -1\n"),
    ("bad_time", "ClientAliveInterval 1x\n"),
    ("permittunnel_case_sensitive", "PermitTunnel YES\n"),
    ("acceptenv_with_equals", "AcceptEnv LANG=C\n"),
    ("extra_arguments", "PermitRootLogin no yes\n"),
    (
        "dsaauthentication_in_match",
        "Match All\nMatch User a\nDSAAuthentication yes\n",
    ),
    (
        "regression_authmethods_disabled_method",
        "PubkeyAuthentication no\nAuthenticationMethods publickey,password\n",
    ),
    (
        "regression_authmethods_any_after_set",
        "AuthenticationMethods publickey\nMatch User bob\nAuthenticationMethods any\n",
    ),
    (
        "regression_keys_command_without_user",
        "AuthorizedKeysCommand /usr/bin/keys %u\n",
    ),
    (
        "listen_family_mismatch_v6",
        "AddressFamily inet\nListenAddress ::1\n",
    ),
    (
        "listen_family_mismatch_v4_after",
        "ListenAddress 127.0.0.1\nAddressFamily inet6\n",
    ),
    ("include_loop", "Include /etc/ssh/sshd_config\n"),
    ("include_without_argument", "Include\n"),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (name, text, keyword, spec, want) in TABLE {
        let cfg = match load(&[(MAIN, text)]) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: parse failed: {e}"));
                continue;
            }
        };
        let got = match conn(spec) {
            None => cfg.global(keyword),
            Some(c) => cfg.effective(keyword, &c),
        };
        if got.value != *want {
            failures.push(format!(
                "{name}: {keyword} = `{}`, want `{want}`",
                got.value
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rejected() {
    let mut failures = Vec::new();
    for (name, text) in REJECTED {
        if let Ok(cfg) = load(&[(MAIN, text)]) {
            failures.push(format!(
                "{name}: accepted, {} directives",
                cfg.directives.len()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn include_glob_sorted_relative_and_hidden_files_skipped() {
    let cfg = load(&[
        (MAIN, "Include sshd_config.d/*.conf\nPermitRootLogin yes\n"),
        (
            "/etc/ssh/sshd_config.d/20-b.conf",
            "PermitRootLogin prohibit-password\n",
        ),
        ("/etc/ssh/sshd_config.d/10-a.conf", "PermitRootLogin no\n"),
        ("/etc/ssh/sshd_config.d/.0.conf", "PermitRootLogin yes\n"),
        ("/etc/ssh/sshd_config.d/00.txt", "PermitRootLogin yes\n"),
    ])
    .unwrap();
    let v = cfg.global("PermitRootLogin");
    assert_eq!(v.value, "no");
    assert_eq!(
        v.evidence,
        Some(Evidence::line(
            "/etc/ssh/sshd_config.d/10-a.conf",
            1,
            "PermitRootLogin no"
        ))
    );
    assert_eq!(cfg.files.len(), 3);
    assert_eq!(cfg.include_patterns, vec!["/etc/ssh/sshd_config.d/*.conf"]);
}

#[test]
fn include_inside_match_is_conditioned_by_it() {
    let cfg = load(&[
        (
            MAIN,
            "PasswordAuthentication no\nMatch User alice\n  Include /etc/ssh/inc/*.conf\n",
        ),
        (
            "/etc/ssh/inc/a.conf",
            "PasswordAuthentication yes\nMatch All\nMaxAuthTries 9\n",
        ),
    ])
    .unwrap();
    let alice = conn("user=alice,lport=22").unwrap();
    let bob = conn("user=bob,lport=22").unwrap();
    assert_eq!(cfg.effective("passwordauthentication", &alice).value, "yes");
    assert_eq!(cfg.effective("passwordauthentication", &bob).value, "no");
    // The Match All inside the included file applies only under alice's block.
    assert_eq!(cfg.effective("maxauthtries", &alice).value, "9");
    assert_eq!(cfg.effective("maxauthtries", &bob).value, "6");
    assert_eq!(cfg.global("maxauthtries").value, "6");
}

#[test]
fn nested_includes_and_depth_limit() {
    let cfg = load(&[
        (MAIN, "Include a.conf\n"),
        ("/etc/ssh/a.conf", "Include /etc/ssh/b.conf\n"),
        ("/etc/ssh/b.conf", "MaxSessions 4\n"),
    ])
    .unwrap();
    assert_eq!(cfg.global("MaxSessions").value, "4");
    let mut files: Vec<(String, String)> = Vec::new();
    for i in 0..=MAX_INCLUDE_DEPTH {
        files.push((
            format!("/etc/ssh/d{i}.conf"),
            format!("Include d{}.conf\n", i + 1),
        ));
    }
    files.push((
        format!("/etc/ssh/d{}.conf", MAX_INCLUDE_DEPTH + 1),
        "MaxSessions 4\n".into(),
    ));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert!(matches!(load(&refs), Err(SshdError::IncludeDepth { .. })));
    let ok: Vec<(&str, &str)> = refs[1..].to_vec();
    assert!(
        load(&ok).is_ok(),
        "16 levels below the main file are allowed"
    );
}

#[test]
fn an_unreadable_include_is_an_error() {
    struct Broken;
    impl SshdLoader for Broken {
        fn read(&self, path: &str) -> Result<String, String> {
            if path == MAIN {
                Ok("Include /etc/ssh/x.conf\n".into())
            } else {
                Err("Permission denied".into())
            }
        }
        fn glob(&self, pat: &str) -> Result<Vec<String>, String> {
            Ok(vec![pat.to_string()])
        }
    }
    let err = SshdConfig::parse(&Broken, MAIN).unwrap_err();
    assert!(
        matches!(err, SshdError::Read { ref path, .. } if path == "/etc/ssh/x.conf"),
        "{err}"
    );
}

#[test]
fn variants_name_every_block_that_sets_the_keyword() {
    let cfg = load(&[(
        MAIN,
        "PermitRootLogin no\nMatch Address 10.0.0.0/8\nPermitRootLogin yes\nMatch User bob\nX11Forwarding yes\n",
    )])
    .unwrap();
    let v = cfg.variants("permitrootlogin");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].block, None);
    assert_eq!(v[0].value.value, "no");
    assert_eq!(v[1].block, Some(0));
    assert_eq!(v[1].value.value, "yes");
    assert_eq!(
        v[1].value.evidence,
        Some(Evidence::line(MAIN, 3, "PermitRootLogin yes"))
    );
    assert_eq!(
        cfg.blocks[0].evidence,
        Evidence::line(MAIN, 2, "Match Address 10.0.0.0/8")
    );
}

#[test]
fn check_connection_mirrors_sshd_refusals() {
    let cfg = load(&[(MAIN, "Match LocalPort 22\nMaxSessions 1\n")]).unwrap();
    assert!(cfg.check_connection(&Connection::default()).is_err());
    assert!(cfg.check_connection(&conn("lport=22").unwrap()).is_ok());
    let cfg = load(&[(
        MAIN,
        "Match User alice\nAuthenticationMethods publickey\nMatch All\nAuthenticationMethods any\n",
    )])
    .unwrap();
    assert!(
        cfg.check_connection(&conn("user=alice,lport=22").unwrap())
            .is_err()
    );
    assert!(
        cfg.check_connection(&conn("user=bob,lport=22").unwrap())
            .is_ok()
    );
}

#[test]
fn canonical_keywords_fold_aliases_and_reject_unknown() {
    assert_eq!(
        canonical_keyword("ChallengeResponseAuthentication"),
        Some("kbdinteractiveauthentication")
    );
    assert_eq!(
        canonical_keyword("PERMITROOTLOGIN"),
        Some("permitrootlogin")
    );
    assert_eq!(canonical_keyword("HostDSAKey"), Some("hostkey"));
    assert_eq!(canonical_keyword("NoSuchThing"), None);
}

#[test]
fn effective_value_items_split_lists() {
    let v = EffectiveValue {
        value: "publickey,password keyboard-interactive".into(),
        evidence: None,
    };
    assert_eq!(
        v.items(),
        vec!["publickey", "password", "keyboard-interactive"]
    );
}

#[test]
fn patterns_follow_sshd() {
    assert_eq!(pattern::match_pattern_list("alice", "!bob,a*", false), 1);
    assert_eq!(pattern::match_pattern_list("bob", "!bob,*", false), -1);
    assert_eq!(pattern::addr_match_list(Some("10.1.2.3"), "10.0.0.0/8"), 1);
    assert_eq!(pattern::addr_match_list(None, "10.0.0.1/8"), -2);
    assert_eq!(pattern::addr_match_list(None, "10.0.0.0/8,,"), -2);
    assert!(pattern::glob_component("[0-9]*.conf", "10-a.conf"));
    assert!(!pattern::glob_component("*.conf", ".hidden.conf"));
    assert!(pattern::glob_path("/etc/ssh/d/*.conf", "/etc/ssh/d/a.conf"));
    assert!(!pattern::glob_path("/etc/ssh/*", "/etc/ssh/d/a.conf"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        if let Ok(cfg) = load(&[(MAIN, &text)]) {
            for k in ["permitrootlogin", "allowusers", "maxstartups", "listenaddress", "ciphers"] {
                let _ = cfg.global(k);
                let _ = cfg.variants(k);
                let _ = cfg.effective(k, &conn("user=a,host=h,addr=10.0.0.1,laddr=::1,lport=22").unwrap());
            }
        }
    }

    #[test]
    fn sshd_like_lines_never_panic(
        lines in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "Match", "Include", "PermitRootLogin", "AllowUsers", "Ciphers", "MaxStartups",
                    "ListenAddress", "AuthenticationMethods", "Port", "LogLevel", "Banner", "IPQoS",
                ]),
                "[ =\"'#a-zA-Z0-9*?!,:/.@\\[\\]\\\\-]{0,30}",
            ),
            0..12,
        )
    ) {
        let text: String = lines.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
        if let Ok(cfg) = load(&[(MAIN, &text), ("/etc/ssh/a.conf", "MaxSessions 3\n")]) {
            let c = conn("user=alice,groups=wheel,host=h.example,addr=2001:db8::1,laddr=10.0.0.1,lport=2222").unwrap();
            let _ = cfg.check_connection(&c);
            for k in ["permitrootlogin", "allowusers", "maxstartups", "listenaddress", "ciphers", "authenticationmethods"] {
                let _ = cfg.effective(k, &c);
                let _ = cfg.variants(k);
            }
        }
    }
}
