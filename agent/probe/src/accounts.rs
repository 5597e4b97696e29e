//! Account databases: reading and parsing passwd, shadow, group and login.defs below the root.
//!
//! The parsers are pure functions of the text, so property tests can feed them
//! anything. They follow what glibc and shadow-utils accept: a malformed line
//! is skipped (never fatal), NIS compatibility lines (`+`, `-`) are skipped,
//! and each file fails on its own.

use std::collections::BTreeMap;

use hardend_facts::accounts::{GroupEntry, LoginDef, PasswdEntry, ShadowEntry};
use hardend_facts::{AccountsFact, ProbeFailure, Probed, Source};

use crate::{RootError, RootFs};

/// The account files, as paths relative to the root.
pub const PASSWD: &str = "/etc/passwd";
pub const SHADOW: &str = "/etc/shadow";
pub const GROUP: &str = "/etc/group";
pub const LOGIN_DEFS: &str = "/etc/login.defs";

/// Errors of reading the account files.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error("cannot read account database: {0}")]
    Read(#[from] RootError),
}

/// Reads the four account files under the root; each one may fail on its own.
pub fn probe(fs: &RootFs) -> AccountsFact {
    AccountsFact {
        passwd: read_required(fs, PASSWD).map(|t| parse_passwd(&t)),
        shadow: read_required(fs, SHADOW).map(|t| parse_shadow(&t)),
        group: read_required(fs, GROUP).map(|t| parse_group(&t)),
        login_defs: match fs.read_to_string(LOGIN_DEFS) {
            Ok(t) => Ok(parse_login_defs(&t)),
            // Without login.defs, shadow-utils applies its compiled defaults.
            Err(e) if e.is_not_found() => Ok(BTreeMap::new()),
            Err(e) => Err(failure(e)),
        },
    }
}

/// The directory `/etc` (editors and shadow-utils replace the files by rename)
/// and the four files themselves.
pub fn sources(fs: &RootFs) -> Vec<Source> {
    let mut out = vec![Source::Path(fs.host_path("/etc"))];
    for p in [PASSWD, SHADOW, GROUP, LOGIN_DEFS] {
        out.push(Source::Path(fs.host_path(p)));
    }
    out
}

fn read_required(fs: &RootFs, path: &str) -> Probed<String> {
    fs.read_to_string(path).map_err(failure)
}

fn failure(e: RootError) -> ProbeFailure {
    ProbeFailure::new(AccountsError::Read(e).to_string())
}

/// The lines of a text with their 1-based numbers, skipping blank lines,
/// `#` comments and NIS compatibility entries (`+...`, `-...`).
fn entry_lines(text: &str) -> impl Iterator<Item = (u32, &str)> {
    text.split('\n').enumerate().filter_map(|(i, line)| {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        match line.as_bytes().first() {
            None | Some(b'#' | b'+' | b'-') => None,
            Some(_) if line.trim().is_empty() => None,
            Some(_) => Some((n, line)),
        }
    })
}

/// Splits `line` at `:` into exactly `N` fields, or `None`.
fn fields<const N: usize>(line: &str) -> Option<[&str; N]> {
    let mut out = [""; N];
    let mut parts = line.split(':');
    for slot in out.iter_mut() {
        *slot = parts.next()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// A numeric id as glibc accepts it: decimal digits only, within `u32`.
fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// A name field: non-empty and without whitespace.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(char::is_whitespace)
}

/// Parses `/etc/passwd`: `name:password:uid:gid:gecos:home:shell`.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    entry_lines(text)
        .filter_map(|(line, l)| {
            let [name, password, uid, gid, gecos, home, shell] = fields::<7>(l)?;
            if !valid_name(name) {
                return None;
            }
            Some(PasswdEntry {
                name: name.to_string(),
                password: password.to_string(),
                uid: parse_id(uid)?,
                gid: parse_id(gid)?,
                gecos: gecos.to_string(),
                home: home.to_string(),
                shell: shell.to_string(),
                line,
            })
        })
        .collect()
}

/// A shadow day count: empty is `None`; anything but an optionally signed
/// decimal number makes the line malformed (as in shadow-utils).
fn parse_days(s: &str) -> Result<Option<i64>, ()> {
    if s.is_empty() {
        return Ok(None);
    }
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(());
    }
    s.parse().map(Some).map_err(|_| ())
}

/// Parses `/etc/shadow`: nine fields, or eight (the old format without the
/// reserved field). Empty numeric fields are `None`.
pub fn parse_shadow(text: &str) -> Vec<ShadowEntry> {
    entry_lines(text)
        .filter_map(|(line, l)| {
            let f: [&str; 9] = match fields::<9>(l) {
                Some(f) => f,
                None => {
                    let [a, b, c, d, e, f, g, h] = fields::<8>(l)?;
                    [a, b, c, d, e, f, g, h, ""]
                }
            };
            if !valid_name(f[0]) {
                return None;
            }
            Some(ShadowEntry {
                name: f[0].to_string(),
                hash: f[1].to_string(),
                last_change: parse_days(f[2]).ok()?,
                min_days: parse_days(f[3]).ok()?,
                max_days: parse_days(f[4]).ok()?,
                warn_days: parse_days(f[5]).ok()?,
                inactive_days: parse_days(f[6]).ok()?,
                expire: parse_days(f[7]).ok()?,
                line,
            })
        })
        .collect()
}

/// Parses `/etc/group`: `name:password:gid:member,member`.
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    entry_lines(text)
        .filter_map(|(line, l)| {
            let [name, _password, gid, members] = fields::<4>(l)?;
            if !valid_name(name) {
                return None;
            }
            Some(GroupEntry {
                name: name.to_string(),
                gid: parse_id(gid)?,
                members: members
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
                line,
            })
        })
        .collect()
}

/// Parses `/etc/login.defs` as shadow-utils does: `KEY value` separated by
/// blanks, `#` comments, a key without a value ignored, double quotes around
/// the value dropped, and a later setting of a key replacing an earlier one.
pub fn parse_login_defs(text: &str) -> BTreeMap<String, LoginDef> {
    let mut out = BTreeMap::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(split) = line.find([' ', '\t']) else {
            continue;
        };
        let (key, rest) = line.split_at(split);
        let value = rest.trim_start_matches([' ', '\t', '"']);
        let value = value.split('"').next().unwrap_or("");
        if value.is_empty() {
            continue;
        }
        out.insert(
            key.to_string(),
            LoginDef {
                value: value.to_string(),
                line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            },
        );
    }
    out
}

/// The name of `uid` in a passwd text (the first entry with that id, as the
/// `files` NSS backend answers), without building the whole table.
pub fn user_name(passwd: &str, uid: u32) -> Option<String> {
    entry_lines(passwd).find_map(|(_, l)| {
        let [name, _, id, gid, ..] = fields::<7>(l)?;
        (valid_name(name) && parse_id(id) == Some(uid) && parse_id(gid).is_some())
            .then(|| name.to_string())
    })
}

/// The name of `gid` in a group text (the first entry with that id).
pub fn group_name(group: &str, gid: u32) -> Option<String> {
    entry_lines(group).find_map(|(_, l)| {
        let [name, _, id, _] = fields::<4>(l)?;
        (valid_name(name) && parse_id(id) == Some(gid)).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD_SAMPLE: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
+nisuser::::::
-baduser::::::

broken line without colons
short:x:5:5
baduid:x:abc:1::/:/bin/sh
toobig:x:4294967296:1::/:/bin/sh
alice:$6$salt$hash:1000:1000:Alice,,,:/home/alice:/bin/bash
:x:7:7::/:/bin/sh
";

    #[test]
    fn passwd_keeps_valid_entries_with_their_line_numbers() {
        let e = parse_passwd(PASSWD_SAMPLE);
        let names: Vec<_> = e.iter().map(|p| (p.name.as_str(), p.line)).collect();
        assert_eq!(names, vec![("root", 1), ("daemon", 2), ("alice", 11)]);
        assert_eq!(e[2].password, "$6$salt$hash");
        assert_eq!(e[2].uid, 1000);
        assert_eq!(e[2].gecos, "Alice,,,");
        assert_eq!(e[1].shell, "/usr/sbin/nologin");
    }

    #[test]
    fn shadow_accepts_eight_and_nine_fields_and_empty_numbers() {
        let text = "\
root:*:19000:0:99999:7:::
old:!:19000:0:99999:7::
alice:$y$j9T$abc:19500:1:90:7:30:20000:
bad:x:notanumber:0:99999:7:::
neg:x:-1::::::
toomany:x:1:2:3:4:5:6:7:8
";
        let e = parse_shadow(text);
        let names: Vec<_> = e.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["root", "old", "alice", "neg"]);
        assert_eq!(e[0].max_days, Some(99999));
        assert_eq!(e[0].inactive_days, None);
        assert_eq!(e[1].line, 2);
        assert_eq!(e[2].inactive_days, Some(30));
        assert_eq!(e[2].expire, Some(20000));
        assert_eq!(e[3].last_change, Some(-1));
    }

    #[test]
    fn group_members_are_split_and_empty_items_dropped() {
        let text = "root:x:0:\nsudo:x:27:alice,bob,\n+:::\nbad:x::\n";
        let e = parse_group(text);
        assert_eq!(e.len(), 2);
        assert!(e[0].members.is_empty());
        assert_eq!(e[1].members, vec!["alice", "bob"]);
        assert_eq!(e[1].gid, 27);
        assert_eq!(e[1].line, 2);
    }

    #[test]
    fn login_defs_last_setting_wins_and_quotes_are_dropped() {
        let text = "\
# comment
PASS_MAX_DAYS\t99999
UID_MIN 1000
PASS_MAX_DAYS   365   
ENV_PATH \"PATH=/usr/bin:/bin\"
LONELY
  INDENTED 5
";
        let d = parse_login_defs(text);
        assert_eq!(d["PASS_MAX_DAYS"].value, "365");
        assert_eq!(d["PASS_MAX_DAYS"].line, 4);
        assert_eq!(d["UID_MIN"].value, "1000");
        assert_eq!(d["ENV_PATH"].value, "PATH=/usr/bin:/bin");
        assert_eq!(d["INDENTED"].value, "5");
        assert!(!d.contains_key("LONELY"));
    }

    #[test]
    fn names_are_resolved_from_the_first_matching_entry() {
        assert_eq!(user_name(PASSWD_SAMPLE, 1000).as_deref(), Some("alice"));
        assert_eq!(user_name(PASSWD_SAMPLE, 0).as_deref(), Some("root"));
        assert_eq!(user_name(PASSWD_SAMPLE, 5), None);
        assert_eq!(user_name(PASSWD_SAMPLE, 7), None);
        let group = "root:x:0:\nshadow:x:42:\nalias:x:42:\n";
        assert_eq!(group_name(group, 42).as_deref(), Some("shadow"));
    }
}
