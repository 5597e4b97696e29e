//! The keywords Debian 12's sshd (OpenSSH 9.2p1) accepts: canonical names,
//! aliases, where each may appear, how its arguments are checked and how
//! `sshd -T` prints it, and the compiled defaults.

use super::pattern;

/// How a keyword's arguments are read and how repeated lines combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// `yes` / `no` (any case).
    Flag,
    /// One of a fixed set of words (any case); the table maps each accepted
    /// word to the word `sshd -T` prints.
    Multi(&'static [(&'static str, &'static str)]),
    /// `PermitTunnel`: like `Multi` but case-sensitive.
    Tunnel,
    /// A non-negative decimal integer.
    Int,
    /// A time interval (`90`, `2m`, `1h30m`), printed in seconds.
    Time,
    /// `UnusedConnectionTimeout`: `none` or a time, `0` printed as `none`.
    UnusedTimeout,
    /// A file name made absolute against `/` (sshd's `derelativise_path`).
    Path,
    /// The first argument, kept as written.
    Word,
    /// The rest of the line, kept as written.
    Rest,
    /// The rest of the line, which must be an absolute path or `none`.
    Command,
    /// An algorithm list with `+`, `-`, `^` forms.
    Algos(Algo),
    /// Every argument of every line is appended (`AllowUsers`, `AcceptEnv`).
    Append,
    /// `Port`: appended, one port per line.
    Port,
    /// `ListenAddress`: appended, printed against the final ports.
    ListenAddress,
    /// `HostKey`, `HostCertificate`: appended paths.
    HostKey,
    /// Every argument of the first line that applies; later lines ignored.
    FirstLine,
    /// `AuthenticationMethods`: like `FirstLine`, with method names checked.
    AuthMethods,
    /// `MaxStartups start:rate:full` or a single number.
    MaxStartups,
    /// `LogLevel`.
    LogLevel,
    /// `SyslogFacility`.
    LogFacility,
    /// `PermitUserEnvironment`: `yes`, `no` or a pattern list.
    PermitUserEnv,
    /// `Subsystem name command...`: one entry per line, appended.
    Subsystem,
    /// `IPQoS interactive [bulk]`.
    IpQos,
    /// `RekeyLimit size [interval]`.
    RekeyLimit,
    /// Deprecated or unsupported: accepted with any arguments, no effect.
    Ignored,
    /// `Match`.
    Match,
    /// `Include`.
    Include,
    /// Accepted and kept loosely (first argument, first value wins).
    Loose,
}

/// Which algorithm family a list belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algo {
    Cipher,
    Mac,
    Kex,
    /// Host key, public key and host-based algorithms.
    Key,
    /// CA signature algorithms.
    Sig,
}

/// One keyword of the table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Spec {
    /// The canonical lower-case name, as `sshd -T` prints it.
    pub name: &'static str,
    pub kind: Kind,
    /// Allowed inside a `Match` block (and then overrides the global value).
    pub in_match: bool,
    /// A later line replaces an earlier one instead of the first one winning.
    pub last_wins: bool,
}

const ADDRESS_FAMILY: &[(&str, &str)] = &[("inet", "inet"), ("inet6", "inet6"), ("any", "any")];
const ROOT_LOGIN: &[(&str, &str)] = &[
    ("without-password", "prohibit-password"),
    ("prohibit-password", "prohibit-password"),
    ("forced-commands-only", "forced-commands-only"),
    ("yes", "yes"),
    ("no", "no"),
];
const IGNORE_RHOSTS: &[(&str, &str)] =
    &[("yes", "yes"), ("no", "no"), ("shosts-only", "shosts-only")];
const COMPRESSION: &[(&str, &str)] = &[("yes", "yes"), ("delayed", "yes"), ("no", "no")];
const GATEWAY_PORTS: &[(&str, &str)] = &[
    ("clientspecified", "clientspecified"),
    ("yes", "yes"),
    ("no", "no"),
];
const TCP_FORWARDING: &[(&str, &str)] = &[
    ("yes", "yes"),
    ("all", "yes"),
    ("no", "no"),
    ("remote", "remote"),
    ("local", "local"),
];
const FINGERPRINT: &[(&str, &str)] = &[("md5", "MD5"), ("sha256", "SHA256")];

const fn s(name: &'static str, kind: Kind, in_match: bool) -> Spec {
    Spec {
        name,
        kind,
        in_match,
        last_wins: false,
    }
}

const fn last(name: &'static str, kind: Kind, in_match: bool) -> Spec {
    Spec {
        name,
        kind,
        in_match,
        last_wins: true,
    }
}

const G: bool = false;
const A: bool = true;

/// Every canonical keyword.
pub(super) const SPECS: &[Spec] = &[
    s("usepam", Kind::Flag, G),
    s("port", Kind::Port, G),
    s("hostkey", Kind::HostKey, G),
    s("hostkeyagent", Kind::Word, G),
    s("pidfile", Kind::Path, G),
    s("modulifile", Kind::Path, G),
    s("logingracetime", Kind::Time, G),
    s("permitrootlogin", Kind::Multi(ROOT_LOGIN), A),
    s("syslogfacility", Kind::LogFacility, G),
    s("loglevel", Kind::LogLevel, A),
    s("logverbose", Kind::FirstLine, A),
    s("hostbasedauthentication", Kind::Flag, A),
    s("hostbasedusesnamefrompacketonly", Kind::Flag, A),
    s("hostbasedacceptedalgorithms", Kind::Algos(Algo::Key), A),
    s("hostkeyalgorithms", Kind::Algos(Algo::Key), G),
    s("pubkeyauthentication", Kind::Flag, A),
    s("pubkeyacceptedalgorithms", Kind::Algos(Algo::Key), A),
    s("pubkeyauthoptions", Kind::Loose, A),
    s("kerberosauthentication", Kind::Flag, A),
    s("kerberosorlocalpasswd", Kind::Flag, G),
    s("kerberosticketcleanup", Kind::Flag, G),
    s("gssapiauthentication", Kind::Flag, A),
    s("gssapicleanupcredentials", Kind::Flag, G),
    s("gssapistrictacceptorcheck", Kind::Flag, G),
    s("gssapikeyexchange", Kind::Flag, G),
    s("gssapistorecredentialsonrekey", Kind::Flag, G),
    s("gssapikexalgorithms", Kind::Loose, G),
    s("passwordauthentication", Kind::Flag, A),
    s("kbdinteractiveauthentication", Kind::Flag, A),
    s("listenaddress", Kind::ListenAddress, G),
    s("addressfamily", Kind::Multi(ADDRESS_FAMILY), G),
    s("printmotd", Kind::Flag, G),
    s("printlastlog", Kind::Flag, G),
    s("ignorerhosts", Kind::Multi(IGNORE_RHOSTS), A),
    s("ignoreuserknownhosts", Kind::Flag, G),
    s("x11forwarding", Kind::Flag, A),
    s("x11displayoffset", Kind::Int, A),
    s("x11uselocalhost", Kind::Flag, A),
    s("xauthlocation", Kind::Path, G),
    s("strictmodes", Kind::Flag, G),
    s("permitemptypasswords", Kind::Flag, A),
    s("permituserenvironment", Kind::PermitUserEnv, G),
    s("compression", Kind::Multi(COMPRESSION), G),
    s("rekeylimit", Kind::RekeyLimit, A),
    s("tcpkeepalive", Kind::Flag, G),
    s("allowtcpforwarding", Kind::Multi(TCP_FORWARDING), A),
    s("allowagentforwarding", Kind::Flag, A),
    s("allowusers", Kind::Append, A),
    s("denyusers", Kind::Append, A),
    s("allowgroups", Kind::Append, A),
    s("denygroups", Kind::Append, A),
    s("ciphers", Kind::Algos(Algo::Cipher), G),
    s("macs", Kind::Algos(Algo::Mac), G),
    s("gatewayports", Kind::Multi(GATEWAY_PORTS), A),
    s("subsystem", Kind::Subsystem, G),
    last("maxstartups", Kind::MaxStartups, G),
    last("persourcemaxstartups", Kind::Loose, G),
    last("persourcenetblocksize", Kind::Loose, G),
    s("maxauthtries", Kind::Int, A),
    s("maxsessions", Kind::Int, A),
    s("banner", Kind::Path, A),
    s("usedns", Kind::Flag, G),
    s("clientaliveinterval", Kind::Time, A),
    s("clientalivecountmax", Kind::Int, A),
    s("authorizedkeysfile", Kind::FirstLine, A),
    s("acceptenv", Kind::Append, A),
    s("setenv", Kind::FirstLine, A),
    s("permittunnel", Kind::Tunnel, A),
    s("permittty", Kind::Flag, A),
    s("permituserrc", Kind::Flag, A),
    s("match", Kind::Match, A),
    s("permitopen", Kind::FirstLine, A),
    s("permitlisten", Kind::FirstLine, A),
    s("forcecommand", Kind::Rest, A),
    s("chrootdirectory", Kind::Word, A),
    s("hostcertificate", Kind::HostKey, G),
    s("revokedkeys", Kind::Path, A),
    s("trustedusercakeys", Kind::Path, A),
    s("authorizedprincipalsfile", Kind::Word, A),
    s("kexalgorithms", Kind::Algos(Algo::Kex), G),
    s("include", Kind::Include, A),
    last("ipqos", Kind::IpQos, A),
    s("authorizedkeyscommand", Kind::Command, A),
    s("authorizedkeyscommanduser", Kind::Word, A),
    s("authorizedprincipalscommand", Kind::Command, A),
    s("authorizedprincipalscommanduser", Kind::Word, A),
    s("versionaddendum", Kind::Rest, G),
    s("authenticationmethods", Kind::AuthMethods, A),
    last("streamlocalbindmask", Kind::Loose, A),
    s("streamlocalbindunlink", Kind::Flag, A),
    s("allowstreamlocalforwarding", Kind::Multi(TCP_FORWARDING), A),
    last("fingerprinthash", Kind::Multi(FINGERPRINT), G),
    s("disableforwarding", Kind::Flag, A),
    s("exposeauthinfo", Kind::Flag, A),
    s("rdomain", Kind::Loose, A),
    s("casignaturealgorithms", Kind::Algos(Algo::Sig), A),
    s("securitykeyprovider", Kind::Word, G),
    s("requiredrsasize", Kind::Int, A),
    s("channeltimeout", Kind::FirstLine, A),
    s("unusedconnectiontimeout", Kind::UnusedTimeout, A),
    s("debianbanner", Kind::Flag, G),
    // Accepted for compatibility; sshd logs and ignores them.
    s("pamauthenticationviakbdint", Kind::Ignored, G),
    s("serverkeybits", Kind::Ignored, G),
    s("keyregenerationinterval", Kind::Ignored, G),
    s("rhostsauthentication", Kind::Ignored, G),
    s("rhostsrsaauthentication", Kind::Ignored, A),
    s("rsaauthentication", Kind::Ignored, A),
    s("kerberosgetafstoken", Kind::Ignored, G),
    s("kerberostgtpassing", Kind::Ignored, G),
    s("afstokenpassing", Kind::Ignored, G),
    s("gssusesessionccache", Kind::Ignored, G),
    s("gssapiusesessioncredcache", Kind::Ignored, G),
    s("checkmail", Kind::Ignored, G),
    s("permitblacklistedkeys", Kind::Ignored, G),
    s("uselogin", Kind::Ignored, G),
    s("protocol", Kind::Ignored, G),
    s("verifyreversemapping", Kind::Ignored, G),
    s("reversemappingcheck", Kind::Ignored, G),
    s("authorizedkeysfile2", Kind::Ignored, A),
    s("useprivilegeseparation", Kind::Ignored, G),
];

/// Other spellings sshd accepts, and the keyword each one means.
pub(super) const ALIASES: &[(&str, &str)] = &[
    (
        "challengeresponseauthentication",
        "kbdinteractiveauthentication",
    ),
    ("skeyauthentication", "kbdinteractiveauthentication"),
    ("hostdsakey", "hostkey"),
    ("hostbasedacceptedkeytypes", "hostbasedacceptedalgorithms"),
    ("pubkeyacceptedkeytypes", "pubkeyacceptedalgorithms"),
    ("dsaauthentication", "pubkeyauthentication"),
    ("gssapicleanupcreds", "gssapicleanupcredentials"),
    ("keepalive", "tcpkeepalive"),
];

/// The keyword's entry, by any spelling in any case.
pub(super) fn lookup(keyword: &str) -> Option<(&'static Spec, bool)> {
    let lower = keyword.to_ascii_lowercase();
    if let Some(spec) = SPECS.iter().find(|s| s.name == lower) {
        return Some((spec, false));
    }
    let (alias, canonical) = ALIASES.iter().find(|(a, _)| *a == lower)?;
    // `DSAAuthentication` is an alias that, unlike the keyword it stands for,
    // is not allowed inside Match.
    let spec = SPECS.iter().find(|s| s.name == *canonical)?;
    Some((spec, *alias == "dsaauthentication"))
}

/// What `sshd -T` prints for an empty configuration on Debian 12 (OpenSSH
/// 9.2p1-2+deb12u*), except `listenaddress` and `hostkey`, which depend on
/// other settings.
pub(super) const DEFAULTS: &str = "\
port 22
addressfamily any
usepam no
logingracetime 120
x11displayoffset 10
maxauthtries 6
maxsessions 10
clientaliveinterval 0
clientalivecountmax 3
requiredrsasize 1024
streamlocalbindmask 0177
unusedconnectiontimeout none
permitrootlogin prohibit-password
ignorerhosts yes
ignoreuserknownhosts no
hostbasedauthentication no
hostbasedusesnamefrompacketonly no
pubkeyauthentication yes
kerberosauthentication no
kerberosorlocalpasswd yes
kerberosticketcleanup yes
gssapiauthentication no
gssapicleanupcredentials yes
gssapikeyexchange no
gssapistrictacceptorcheck yes
gssapistorecredentialsonrekey no
gssapikexalgorithms gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-
passwordauthentication yes
kbdinteractiveauthentication yes
printmotd yes
printlastlog yes
x11forwarding no
x11uselocalhost yes
permittty yes
permituserrc yes
strictmodes yes
tcpkeepalive yes
permitemptypasswords no
compression yes
gatewayports no
usedns no
allowtcpforwarding yes
allowagentforwarding yes
disableforwarding no
allowstreamlocalforwarding yes
streamlocalbindunlink no
fingerprinthash SHA256
exposeauthinfo no
pidfile /run/sshd.pid
modulifile /etc/ssh/moduli
xauthlocation /usr/bin/xauth
ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com
macs umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1
banner none
forcecommand none
chrootdirectory none
trustedusercakeys none
revokedkeys none
securitykeyprovider internal
authorizedprincipalsfile none
versionaddendum none
authorizedkeyscommand none
authorizedkeyscommanduser none
authorizedprincipalscommand none
authorizedprincipalscommanduser none
hostkeyagent none
kexalgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256
casignaturealgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostbasedacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostkeyalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
pubkeyacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
loglevel INFO
syslogfacility AUTH
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
authenticationmethods any
maxstartups 10:30:100
persourcemaxstartups none
persourcenetblocksize 32:128
permittunnel no
ipqos lowdelay throughput
rekeylimit 0 0
permitopen any
permitlisten any
permituserenvironment no
pubkeyauthoptions none
";

/// The default printed value of a canonical keyword ("" when sshd -T prints
/// no line for it).
pub(super) fn default_value(name: &str) -> &'static str {
    DEFAULTS
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then_some(v)
        })
        .unwrap_or("")
}

/// Every algorithm this sshd supports, by family (`ssh -Q cipher`, `mac`,
/// `kex`, `key-sig`, `sig`).
fn all_algorithms(algo: Algo) -> &'static str {
    match algo {
        Algo::Cipher => {
            "3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com,chacha20-poly1305@openssh.com"
        }
        Algo::Mac => {
            "hmac-sha1,hmac-sha1-96,hmac-sha2-256,hmac-sha2-512,hmac-md5,hmac-md5-96,umac-64@openssh.com,umac-128@openssh.com,hmac-sha1-etm@openssh.com,hmac-sha1-96-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-md5-etm@openssh.com,hmac-md5-96-etm@openssh.com,umac-64-etm@openssh.com,umac-128-etm@openssh.com"
        }
        Algo::Kex => {
            "diffie-hellman-group1-sha1,diffie-hellman-group14-sha1,diffie-hellman-group14-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha1,diffie-hellman-group-exchange-sha256,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,curve25519-sha256,curve25519-sha256@libssh.org,sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com"
        }
        Algo::Key => {
            "ssh-ed25519,ssh-ed25519-cert-v01@openssh.com,sk-ssh-ed25519@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,ssh-dss,ssh-dss-cert-v01@openssh.com,ssh-rsa,ssh-rsa-cert-v01@openssh.com,rsa-sha2-256,rsa-sha2-256-cert-v01@openssh.com,rsa-sha2-512,rsa-sha2-512-cert-v01@openssh.com"
        }
        Algo::Sig => {
            "ssh-ed25519,sk-ssh-ed25519@openssh.com,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ecdsa-sha2-nistp256@openssh.com,webauthn-sk-ecdsa-sha2-nistp256@openssh.com,ssh-dss,ssh-rsa,rsa-sha2-256,rsa-sha2-512"
        }
    }
}

fn algo_default(algo: Algo, keyword: &str) -> &'static str {
    match algo {
        Algo::Sig => default_value("casignaturealgorithms"),
        _ => default_value(keyword),
    }
}

/// Names of `b` not already in `a`, appended to `a` (sshd's `kex_names_cat`).
fn names_cat(a: &mut Vec<String>, b: impl IntoIterator<Item = String>) {
    for n in b {
        if !n.is_empty() && !a.contains(&n) {
            a.push(n);
        }
    }
}

/// Checks an algorithm list the way sshd does when it reads the line, and
/// returns the list sshd ends up with (`kex_assemble_names` against the
/// defaults).
pub(super) fn assemble_algorithms(algo: Algo, keyword: &str, arg: &str) -> Result<String, String> {
    let all: Vec<&str> = all_algorithms(algo).split(',').collect();
    let default: Vec<String> = algo_default(algo, keyword)
        .split(',')
        .map(str::to_string)
        .collect();
    let (prefix, body) = match arg.chars().next() {
        Some(c @ ('+' | '-' | '^')) => (Some(c), &arg[1..]),
        _ => (None, arg),
    };
    if prefix != Some('-') {
        validate_names(algo, body).map_err(|bad| format!("bad {keyword} name '{bad}'"))?;
    }
    let list: Vec<String> = match prefix {
        Some('-') => {
            let kept: Vec<String> = default
                .iter()
                .filter(|n| pattern::match_pattern_list(n, body, false) != 1)
                .cloned()
                .collect();
            // An empty result falls back to the default when sshd assembles
            // the lists a second time.
            return Ok(if kept.is_empty() {
                default.join(",")
            } else {
                kept.join(",")
            });
        }
        Some('+') => {
            let mut l = default.clone();
            names_cat(&mut l, body.split(',').map(str::to_string));
            l
        }
        Some('^') => {
            let mut l: Vec<String> = Vec::new();
            names_cat(&mut l, body.split(',').map(str::to_string));
            names_cat(&mut l, default.clone());
            l
        }
        _ => body.split(',').map(str::to_string).collect(),
    };
    let mut out: Vec<String> = Vec::new();
    for pat in &list {
        if pat.starts_with('!') {
            return Err(format!("negated {keyword} pattern '{pat}'"));
        }
        let matching = all
            .iter()
            .filter(|n| pattern::match_pattern_list(n, pat, false) == 1)
            .map(|n| n.to_string());
        names_cat(&mut out, matching);
    }
    if out.is_empty() {
        return Err(format!("{keyword} '{arg}' names no supported algorithm"));
    }
    Ok(out.join(","))
}

/// sshd checks the names of an explicit, `+` or `^` list when it reads the
/// line: ciphers, MACs and key exchanges must be known names; key
/// algorithms may be wildcards that match some known name. Returns the
/// first bad name.
fn validate_names(algo: Algo, body: &str) -> Result<(), String> {
    let all: Vec<&str> = all_algorithms(match algo {
        Algo::Sig => Algo::Key,
        other => other,
    })
    .split(',')
    .collect();
    for name in body.split(',') {
        // sshd stops checking at the first empty name.
        if name.is_empty() {
            break;
        }
        let ok = match algo {
            Algo::Key | Algo::Sig => {
                if name.contains(['*', '?']) {
                    all.iter()
                        .any(|n| pattern::match_pattern_list(n, name, false) != 0)
                } else {
                    all.contains(&name)
                }
            }
            _ => all.contains(&name),
        };
        if !ok {
            return Err(name.to_string());
        }
    }
    Ok(())
}

/// sshd's `convtime`: seconds, or `None` when the text is not a time.
pub(super) fn convtime(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut total: i64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return None;
        }
        let value: i64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let mult = match rest.chars().next() {
            None => 1,
            Some(c) => {
                rest = &rest[c.len_utf8()..];
                match c {
                    's' | 'S' => 1,
                    'm' | 'M' => 60,
                    'h' | 'H' => 3600,
                    'd' | 'D' => 86400,
                    'w' | 'W' => 604800,
                    _ => return None,
                }
            }
        };
        let part = value.checked_mul(mult)?;
        if part >= i64::from(i32::MAX) {
            return None;
        }
        total = total.checked_add(part)?;
        if total >= i64::from(i32::MAX) {
            return None;
        }
    }
    Some(total)
}

/// sshd's `atoi_err` (`strtonum` between 0 and INT_MAX).
pub(super) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let v: i64 = t.parse().ok()?;
    (0..=i64::from(i32::MAX)).contains(&v).then_some(v)
}

/// sshd's `a2port`: a decimal port or a service name from `/etc/services`
/// (only `ssh` is known here); `None` when invalid.
pub(super) fn a2port(s: &str) -> Option<u16> {
    if let Ok(v) = s.parse::<i64>() {
        return u16::try_from(v).ok();
    }
    (s == "ssh").then_some(22)
}

/// Log level names as sshd reads them, and the name `sshd -T` prints.
pub(super) fn log_level(s: &str) -> Option<&'static str> {
    const LEVELS: &[(&str, &str)] = &[
        ("quiet", "SILENT"),
        ("silent", "SILENT"),
        ("fatal", "FATAL"),
        ("error", "ERROR"),
        ("info", "INFO"),
        ("verbose", "VERBOSE"),
        ("debug", "DEBUG"),
        ("debug1", "DEBUG"),
        ("debug2", "DEBUG2"),
        ("debug3", "DEBUG3"),
    ];
    let lower = s.to_ascii_lowercase();
    LEVELS.iter().find(|(k, _)| *k == lower).map(|(_, v)| *v)
}

/// Syslog facility names as sshd reads them.
pub(super) fn log_facility(s: &str) -> Option<String> {
    const FACILITIES: &[&str] = &[
        "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
        "LOCAL5", "LOCAL6", "LOCAL7",
    ];
    let upper = s.to_ascii_uppercase();
    FACILITIES.contains(&upper.as_str()).then_some(upper)
}

/// The methods `AuthenticationMethods` accepts (each optionally with a
/// `:submethod`).
pub(super) fn auth_method_valid(list: &str) -> bool {
    const METHODS: &[&str] = &[
        "publickey",
        "password",
        "keyboard-interactive",
        "hostbased",
        "gssapi-with-mic",
        "gssapi-keyex",
    ];
    list.split(',').all(|m| {
        let name = m.split_once(':').map_or(m, |(n, _)| n);
        METHODS.contains(&name)
    })
}

/// sshd's `scan_scaled` for whole numbers: digits with an optional
/// K, M, G, T, P or E suffix (powers of 1024).
pub(super) fn scan_scaled(s: &str) -> Option<u64> {
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    let value: u64 = s[..digits].parse().ok()?;
    let shift = match &s[digits..] {
        "" | "b" | "B" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        "p" | "P" => 50,
        "e" | "E" => 60,
        _ => return None,
    };
    value.checked_mul(1u64 << shift)
}

/// The IPQoS names sshd knows, in its lower-case spelling.
pub(super) fn ipqos_name(s: &str) -> Option<String> {
    const NAMES: &[&str] = &[
        "af11",
        "af12",
        "af13",
        "af21",
        "af22",
        "af23",
        "af31",
        "af32",
        "af33",
        "af41",
        "af42",
        "af43",
        "cs0",
        "cs1",
        "cs2",
        "cs3",
        "cs4",
        "cs5",
        "cs6",
        "cs7",
        "ef",
        "le",
        "lowdelay",
        "throughput",
        "reliability",
        "none",
    ];
    let lower = s.to_ascii_lowercase();
    if NAMES.contains(&lower.as_str()) {
        return Some(lower);
    }
    // Numeric values are printed back in hex.
    let v = s.parse::<u8>().ok()?;
    Some(format!("0x{v:02x}"))
}
