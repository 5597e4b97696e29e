//! `accounts` checks: passwd, shadow and login.defs requirements.
//!
//! Evidence never quotes a password hash: it names the account and what is
//! wrong (`alice: md5crypt hash`), with the file and line.

use std::collections::BTreeMap;

use hardend_facts::accounts::{LoginDef, PasswdEntry, ShadowEntry};
use hardend_facts::{AccountsFact, Evidence, Facts, Probed};
use hardend_policy::{AccountsCheck, AccountsRequirement as Req};

use crate::Outcome;

const PASSWD: &str = "/etc/passwd";
const SHADOW: &str = "/etc/shadow";
const LOGIN_DEFS: &str = "/etc/login.defs";

/// shadow-utils' default when login.defs does not set UID_MIN.
const DEFAULT_UID_MIN: u32 = 1000;
/// shadow-utils' default PASS_MAX_DAYS (effectively never).
const DEFAULT_PASS_MAX_DAYS: i64 = 99999;
const DEFAULT_PASS_MIN_DAYS: i64 = 0;

/// Shells that refuse interactive logins.
const NO_LOGIN_SHELLS: &[&str] = &[
    "/usr/sbin/nologin",
    "/sbin/nologin",
    "/usr/bin/nologin",
    "/bin/nologin",
    "/bin/false",
    "/usr/bin/false",
];

/// The traditional accounts whose "shell" runs one command and exits
/// (`sync:x:4:65534:sync:/bin:/bin/sync`). CIS and shadow-utils treat them as
/// safe: the account is allowed when its shell is exactly its own command.
const SINGLE_COMMAND_ACCOUNTS: &[(&str, &[&str])] = &[
    ("sync", &["/bin/sync", "/usr/bin/sync"]),
    ("shutdown", &["/sbin/shutdown", "/usr/sbin/shutdown"]),
    ("halt", &["/sbin/halt", "/usr/sbin/halt"]),
];

/// One offending account: a name for `actual`, a line for `evidence`.
struct Offence {
    actual: String,
    evidence: Evidence,
}

/// Evaluates an accounts check.
pub(crate) fn eval(check: &AccountsCheck, facts: &Facts) -> Outcome {
    let expected = expected(check);
    let Some(accounts) = &facts.accounts else {
        return Outcome::not_collected(Some(expected));
    };
    match offences(check, accounts) {
        Err(why) => Outcome::error(Some(expected), why),
        Ok(list) if list.is_empty() => Outcome::verdict(
            true,
            expected,
            "no offending account".to_string(),
            Vec::new(),
        ),
        Ok(list) => {
            let actual = list
                .iter()
                .map(|o| o.actual.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let evidence = list.into_iter().map(|o| o.evidence).collect();
            Outcome::verdict(false, expected, actual, evidence)
        }
    }
}

fn read<T>(p: &Probed<T>) -> Result<&T, String> {
    p.as_ref().map_err(|e| e.message.clone())
}

fn offences(check: &AccountsCheck, a: &AccountsFact) -> Result<Vec<Offence>, String> {
    Ok(match check.require {
        Req::NoEmptyPasswords => no_empty_passwords(read(&a.passwd)?, read(&a.shadow)?),
        Req::UniqueUid0 => read(&a.passwd)?
            .iter()
            .filter(|p| p.uid == 0 && !check.allow.contains(&p.name))
            .map(|p| passwd_offence(p, &p.name, "uid 0"))
            .collect(),
        Req::NoDuplicateUids => duplicates(read(&a.passwd)?, |p| p.uid.to_string(), "uid"),
        Req::NoDuplicateNames => duplicates(read(&a.passwd)?, |p| p.name.clone(), "name"),
        Req::StrongPasswordHashes => read(&a.shadow)?
            .iter()
            .filter_map(|s| weak_scheme(&s.hash).map(|scheme| (s, scheme)))
            .map(|(s, scheme)| {
                shadow_offence(
                    s,
                    format!("{} ({scheme})", s.name),
                    format!("{scheme} hash"),
                )
            })
            .collect(),
        Req::SystemAccountsNoLogin => {
            let uid_min = uid_min(read(&a.login_defs)?);
            read(&a.passwd)?
                .iter()
                .filter(|p| is_system(p, uid_min) && !cannot_log_in(p))
                .map(|p| passwd_offence(p, &p.name, &format!("uid {} shell {}", p.uid, p.shell)))
                .collect()
        }
        Req::PasswordMaxDays => {
            let max = check.max.ok_or("internal: password-max-days without max")?;
            aging(
                read(&a.login_defs)?,
                read(&a.shadow)?,
                "PASS_MAX_DAYS",
                DEFAULT_PASS_MAX_DAYS,
                |v| v <= max,
                |s| s.max_days,
                "max days",
            )
        }
        Req::PasswordMinDays => {
            let min = check.min.ok_or("internal: password-min-days without min")?;
            aging(
                read(&a.login_defs)?,
                read(&a.shadow)?,
                "PASS_MIN_DAYS",
                DEFAULT_PASS_MIN_DAYS,
                |v| v >= min,
                |s| s.min_days,
                "min days",
            )
        }
        Req::InactiveLockDays => {
            let max = check
                .max
                .ok_or("internal: inactive-lock-days without max")?;
            read(&a.shadow)?
                .iter()
                .filter(|s| bears_password(&s.hash))
                .filter_map(|s| match s.inactive_days {
                    Some(d) if (0..=max).contains(&d) => None,
                    Some(d) => Some(shadow_offence(
                        s,
                        format!("{} ({d})", s.name),
                        format!("inactive days {d}"),
                    )),
                    None => Some(shadow_offence(
                        s,
                        format!("{} (unset)", s.name),
                        "inactive days unset".to_string(),
                    )),
                })
                .collect()
        }
        Req::ShadowPasswords => read(&a.passwd)?
            .iter()
            .filter(|p| p.password != "x")
            .map(|p| {
                let what = if p.password.is_empty() {
                    "empty password field"
                } else {
                    "password field is not x"
                };
                passwd_offence(p, &p.name, what)
            })
            .collect(),
    })
}

fn passwd_offence(p: &PasswdEntry, actual: &str, what: &str) -> Offence {
    Offence {
        actual: actual.to_string(),
        evidence: Evidence::line(PASSWD, p.line, format!("{}: {what}", p.name)),
    }
}

fn shadow_offence(s: &ShadowEntry, actual: String, what: String) -> Offence {
    Offence {
        actual,
        evidence: Evidence::line(SHADOW, s.line, format!("{}: {what}", s.name)),
    }
}

/// A locked or disabled hash: `!`, `*`, `!!`, `!$6$...`.
fn is_locked(hash: &str) -> bool {
    hash.starts_with('!') || hash.starts_with('*')
}

/// The account can log in with a password: a hash that is neither empty nor locked.
fn bears_password(hash: &str) -> bool {
    !hash.is_empty() && !is_locked(hash)
}

fn no_empty_passwords(passwd: &[PasswdEntry], shadow: &[ShadowEntry]) -> Vec<Offence> {
    let mut out: Vec<Offence> = shadow
        .iter()
        .filter(|s| s.hash.is_empty())
        .map(|s| shadow_offence(s, s.name.clone(), "empty password".to_string()))
        .collect();
    for p in passwd.iter().filter(|p| p.password.is_empty()) {
        if !out.iter().any(|o| o.actual == p.name) {
            out.push(passwd_offence(p, &p.name, "empty password field"));
        }
    }
    out
}

/// The scheme of a weak hash, or `None` for a strong, locked or empty one.
fn weak_scheme(hash: &str) -> Option<&'static str> {
    const STRONG: &[&str] = &["$y$", "$7$", "$2b$", "$2a$", "$2y$", "$6$", "$5$"];
    if !bears_password(hash) || STRONG.iter().any(|p| hash.starts_with(p)) {
        return None;
    }
    Some(if hash.starts_with("$1$") {
        "md5crypt"
    } else if hash.starts_with("$gy$") {
        "gost-yescrypt"
    } else if hash.starts_with("$sha1$") {
        "sha1crypt"
    } else if hash.starts_with("$md5") {
        "sunmd5"
    } else if hash.starts_with('_') {
        "bsdicrypt"
    } else if !hash.starts_with('$') {
        "descrypt"
    } else {
        "unknown scheme"
    })
}

fn duplicates(
    passwd: &[PasswdEntry],
    key: impl Fn(&PasswdEntry) -> String,
    label: &str,
) -> Vec<Offence> {
    let mut by_key: BTreeMap<String, Vec<&PasswdEntry>> = BTreeMap::new();
    for p in passwd {
        by_key.entry(key(p)).or_default().push(p);
    }
    let mut out = Vec::new();
    for (k, entries) in by_key.into_iter().filter(|(_, e)| e.len() > 1) {
        for p in entries {
            out.push(passwd_offence(
                p,
                &format!("{} ({label} {k})", p.name),
                &format!("{label} {k}"),
            ));
        }
    }
    out.sort_by_key(|o| o.evidence.line);
    out
}

fn uid_min(defs: &BTreeMap<String, LoginDef>) -> u32 {
    defs.get("UID_MIN")
        .and_then(|d| d.value.trim().parse().ok())
        .unwrap_or(DEFAULT_UID_MIN)
}

/// A system account: uid below UID_MIN, or `nobody` (65534), except root.
fn is_system(p: &PasswdEntry, uid_min: u32) -> bool {
    p.name != "root" && p.uid != 0 && (p.uid < uid_min || p.uid == 65534)
}

fn cannot_log_in(p: &PasswdEntry) -> bool {
    NO_LOGIN_SHELLS.contains(&p.shell.as_str())
        || SINGLE_COMMAND_ACCOUNTS
            .iter()
            .any(|(name, shells)| *name == p.name && shells.contains(&p.shell.as_str()))
}

/// login.defs' default and every password-bearing account's own setting.
fn aging(
    defs: &BTreeMap<String, LoginDef>,
    shadow: &[ShadowEntry],
    def_key: &str,
    default: i64,
    ok: impl Fn(i64) -> bool,
    field: impl Fn(&ShadowEntry) -> Option<i64>,
    label: &str,
) -> Vec<Offence> {
    let mut out = Vec::new();
    let def = defs.get(def_key);
    let value = def.and_then(|d| d.value.trim().parse::<i64>().ok());
    match (def, value) {
        (Some(d), Some(v)) if !ok(v) => out.push(Offence {
            actual: format!("{def_key} {v}"),
            evidence: Evidence::line(LOGIN_DEFS, d.line, format!("{def_key} {}", d.value)),
        }),
        (Some(d), None) => out.push(Offence {
            actual: format!("{def_key} {}", d.value),
            evidence: Evidence::line(LOGIN_DEFS, d.line, format!("{def_key} {}", d.value)),
        }),
        (None, _) if !ok(default) => out.push(Offence {
            actual: format!("{def_key} unset ({default})"),
            evidence: Evidence::text(LOGIN_DEFS, format!("{def_key} not set")),
        }),
        _ => {}
    }
    for s in shadow.iter().filter(|s| bears_password(&s.hash)) {
        match field(s) {
            Some(v) if ok(v) => {}
            Some(v) => out.push(shadow_offence(
                s,
                format!("{} ({v})", s.name),
                format!("{label} {v}"),
            )),
            None => out.push(shadow_offence(
                s,
                format!("{} (unset)", s.name),
                format!("{label} unset"),
            )),
        }
    }
    out
}

fn expected(check: &AccountsCheck) -> String {
    let n = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
    match check.require {
        Req::NoEmptyPasswords => "no account has an empty password".into(),
        Req::UniqueUid0 => format!("only [{}] have uid 0", check.allow.join(", ")),
        Req::NoDuplicateUids => "no two accounts share a uid".into(),
        Req::NoDuplicateNames => "no two accounts share a name".into(),
        Req::StrongPasswordHashes => {
            "password hashes are yescrypt, scrypt, bcrypt, sha512crypt or sha256crypt".into()
        }
        Req::SystemAccountsNoLogin => {
            "system accounts (uid < UID_MIN) have a nologin or false shell".into()
        }
        Req::PasswordMaxDays => format!(
            "PASS_MAX_DAYS <= {0} and every password's max days <= {0}",
            n(check.max)
        ),
        Req::PasswordMinDays => format!(
            "PASS_MIN_DAYS >= {0} and every password's min days >= {0}",
            n(check.min)
        ),
        Req::InactiveLockDays => format!("every password's inactive days <= {}", n(check.max)),
        Req::ShadowPasswords => "every /etc/passwd password field is x".into(),
    }
}
