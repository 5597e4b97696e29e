//! Kernel parameters: the live value in `/proc/sys` and the boot configuration
//! that systemd-sysctl applies from `/etc/sysctl.conf` and the sysctl.d directories.
//!
//! The configuration is modelled on what systemd-sysctl does at boot:
//!
//! * `*.conf` files are collected by name across [`CONF_DIRS`]; a name found in
//!   an earlier directory shadows the same name in a later one, and the
//!   surviving files are applied in byte order of their names. A file that is
//!   (a symlink to) `/dev/null`, or a dangling symlink, contributes nothing but
//!   still shadows.
//! * Keys are normalized to `/proc/sys` paths (`net.ipv4.conf.eth0/1.rp_filter`
//!   is `net/ipv4/conf/eth0.1/rp_filter`), so dotted and slashed forms meet.
//! * A later assignment of a key replaces an earlier one. A key written with a
//!   glob (`net.ipv4.conf.*.rp_filter`) sets every matching key that has no
//!   explicit line of its own, whatever the order; among globs the last one
//!   wins. `-key` without `=` excludes a key from the globs. (systemd expands
//!   a glob against the keys that exist at boot; here it is matched against
//!   the key asked for, which also works on an offline image.)
//! * systemd reads `/etc/sysctl.conf` only through the `99-sysctl.conf`
//!   symlink that it (and Debian) installs in `/etc/sysctl.d`. When no sysctl.d
//!   entry leads to it, it is applied after all of them, as `sysctl --system`
//!   does, so it is never counted twice.

use std::collections::{BTreeMap, HashMap};
use std::io;

use glob::{MatchOptions, Pattern};
use hardend_facts::{ConfiguredValue, Evidence, ProbeFailure, Probed, Source, SysctlFact};

use crate::{RootError, RootFs};

/// The directories systemd-sysctl reads, highest priority first.
pub const CONF_DIRS: [&str; 5] = [
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
];

/// The traditional configuration file.
pub const SYSCTL_CONF: &str = "/etc/sysctl.conf";

/// Where live values are, relative to the root.
pub const PROC_SYS: &str = "/proc/sys";

/// Errors of reading a kernel parameter.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("invalid sysctl key `{key}`: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("cannot read the live value of {key}: {source}")]
    Live { key: String, source: RootError },
    #[error("cannot read the sysctl configuration: {source}")]
    Config { source: RootError },
}

impl SysctlError {
    fn failure(&self) -> ProbeFailure {
        ProbeFailure::new(self.to_string())
    }
}

/// Reads the live and configured value of `key` (dotted or slashed form).
pub fn probe(fs: &RootFs, key: &str) -> SysctlFact {
    // Validate first, so an invalid key costs no configuration reads.
    if let Err(e) = normalize_key(key) {
        return invalid_fact(key, &e);
    }
    probe_with(fs, key, &load_config(fs))
}

/// Like [`probe`], with a configuration loaded once by [`load_config`] for
/// many keys (a full evaluation reads the sysctl.d files once, not per key).
pub fn probe_with(fs: &RootFs, key: &str, config: &Probed<SysctlConfig>) -> SysctlFact {
    let norm = match normalize_key(key) {
        Ok(n) => n,
        Err(e) => return invalid_fact(key, &e),
    };
    let live_path = format!("{PROC_SYS}/{norm}");
    let live = match fs.read(&live_path) {
        Ok(bytes) => Ok(Some(fold_whitespace(&String::from_utf8_lossy(&bytes)))),
        Err(e) if is_absent(&e) => Ok(None),
        Err(source) => Err(SysctlError::Live {
            key: key.to_string(),
            source,
        }
        .failure()),
    };
    let configured = match config {
        Ok(c) => Ok(c.lookup_normalized(&norm)),
        Err(e) => Err(e.clone()),
    };
    SysctlFact {
        live,
        live_path,
        configured,
    }
}

/// The live file of `key`, every sysctl.d directory and `/etc/sysctl.conf`
/// (host paths).
pub fn sources(fs: &RootFs, key: &str) -> Vec<Source> {
    let mut out = Vec::with_capacity(CONF_DIRS.len() + 2);
    if let Ok(norm) = normalize_key(key) {
        out.push(Source::Path(fs.host_path(&format!("{PROC_SYS}/{norm}"))));
    }
    for dir in CONF_DIRS {
        out.push(Source::Path(fs.host_path(dir)));
    }
    out.push(Source::Path(fs.host_path(SYSCTL_CONF)));
    out
}

fn invalid_fact(key: &str, e: &SysctlError) -> SysctlFact {
    SysctlFact {
        live: Err(e.failure()),
        live_path: format!("{PROC_SYS}/{key}"),
        configured: Err(e.failure()),
    }
}

fn is_absent(e: &RootError) -> bool {
    matches!(e, RootError::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
}

/// Runs of whitespace become one space; leading and trailing whitespace goes.
pub fn fold_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Turns a key into its `/proc/sys` relative path the way systemd does: when
/// the first separator is a dot, dots and slashes swap places; otherwise the
/// key is already a path. Empty and `.` components are dropped.
fn to_proc_path(key: &str) -> String {
    let swap = key.bytes().find(|b| *b == b'.' || *b == b'/') == Some(b'.');
    let swapped: String = if swap {
        key.chars()
            .map(|c| match c {
                '.' => '/',
                '/' => '.',
                c => c,
            })
            .collect()
    } else {
        key.to_string()
    };
    let parts: Vec<&str> = swapped
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// Validates a key as a policy writes it (`net.ipv4.ip_forward`,
/// `net/ipv4/conf/eth0.1/rp_filter`) and returns its `/proc/sys` relative path.
pub fn normalize_key(key: &str) -> Result<String, SysctlError> {
    let invalid = |reason| SysctlError::InvalidKey {
        key: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("empty"));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
    {
        return Err(invalid(
            "only letters, digits, `_`, `-`, `.` and `/` are allowed",
        ));
    }
    if key.contains("..") {
        return Err(invalid("`..` is not allowed"));
    }
    let swap = key.bytes().find(|b| *b == b'.' || *b == b'/') == Some(b'.');
    let sep = if swap { '.' } else { '/' };
    if key.split(sep).any(|c| c.is_empty() || c == ".") {
        return Err(invalid("empty component"));
    }
    Ok(to_proc_path(key))
}

/// One meaningful line of a sysctl configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfLine {
    /// The key as a `/proc/sys` relative path (may hold glob characters).
    pub key: String,
    /// The value with whitespace folded; `None` for a `-key` exclusion line.
    pub value: Option<String>,
    /// The line started with `-`: a failure to set it is not reported.
    pub ignore_failure: bool,
    /// 1-based line number.
    pub line: u32,
    /// The line as written, without surrounding whitespace.
    pub text: String,
}

/// Parses a sysctl.conf-format text: `key = value` lines, `#` and `;`
/// comments, an optional leading `-`; lines that are not assignments are
/// skipped.
pub fn parse_conf(text: &str) -> Vec<ConfLine> {
    let mut out = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        let (dash, rest) = match line.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, line),
        };
        let (key, value) = match rest.split_once('=') {
            Some((k, v)) => (k, Some(fold_whitespace(v))),
            // `-key` alone excludes the key from glob assignments.
            None if dash => (rest, None),
            None => continue,
        };
        let key = to_proc_path(key.trim());
        if key.is_empty() {
            continue;
        }
        out.push(ConfLine {
            key,
            value,
            ignore_failure: dash,
            line: u32::try_from(i + 1).unwrap_or(u32::MAX),
            text: line.to_string(),
        });
    }
    out
}

/// An assignment that survived, with where it was written.
#[derive(Debug, Clone)]
struct Setting {
    value: Option<String>,
    evidence: Evidence,
    /// Set when the key is a glob pattern.
    pattern: Option<Pattern>,
}

/// The boot configuration: every key's winning assignment, in the order
/// systemd-sysctl applies them.
#[derive(Debug, Clone, Default)]
pub struct SysctlConfig {
    /// Settings in application order; `None` where a later assignment
    /// replaced the setting (and moved it to the end).
    settings: Vec<Option<Setting>>,
    index: HashMap<String, usize>,
    /// The files read, in order (root-relative).
    files: Vec<String>,
}

impl SysctlConfig {
    /// The files that were applied, in order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Adds the lines of one file, as systemd-sysctl's option table does: a
    /// new value for a known key removes the old entry and appends the new
    /// one; the same value again keeps the entry's place.
    pub fn apply(&mut self, path: &str, lines: Vec<ConfLine>) {
        self.files.push(path.to_string());
        for l in lines {
            let evidence = Evidence::line(path, l.line, l.text);
            if let Some(&idx) = self.index.get(&l.key)
                && let Some(slot) = self.settings.get_mut(idx)
            {
                if let Some(existing) = slot
                    && existing.value == l.value
                {
                    existing.evidence = evidence;
                    continue;
                }
                *slot = None;
            }
            let is_glob = l.key.contains(['*', '?', '[']);
            let pattern = if is_glob {
                // A pattern glob cannot parse matches nothing.
                Pattern::new(&l.key).ok()
            } else {
                None
            };
            self.index.insert(l.key, self.settings.len());
            self.settings.push(Some(Setting {
                value: l.value,
                evidence,
                pattern,
            }));
        }
    }

    /// The configured value of a key (dotted or slashed form).
    pub fn lookup(&self, key: &str) -> Result<Option<ConfiguredValue>, SysctlError> {
        normalize_key(key).map(|n| self.lookup_normalized(&n))
    }

    fn lookup_normalized(&self, norm: &str) -> Option<ConfiguredValue> {
        // An explicit line for the key wins over every glob; a `-key` line
        // means the key is left alone.
        // (A validated key holds no glob characters, so this entry is explicit.)
        if let Some(&idx) = self.index.get(norm)
            && let Some(Some(s)) = self.settings.get(idx)
        {
            return s.value.as_ref().map(|v| ConfiguredValue {
                value: v.clone(),
                evidence: s.evidence.clone(),
            });
        }
        let opts = MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.settings.iter().rev().flatten().find_map(|s| {
            let value = s.value.as_ref()?;
            let pattern = s.pattern.as_ref()?;
            pattern.matches_with(norm, opts).then(|| ConfiguredValue {
                value: value.clone(),
                evidence: s.evidence.clone(),
            })
        })
    }
}

/// Reads the boot configuration under the root, once, for any number of keys.
pub fn load_config(fs: &RootFs) -> Probed<SysctlConfig> {
    load(fs).map_err(|e| e.failure())
}

fn load(fs: &RootFs) -> Result<SysctlConfig, SysctlError> {
    let config_err = |source| SysctlError::Config { source };
    // Name -> path of the first directory that has it; sorted by name.
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in CONF_DIRS {
        let names = match fs.read_dir(dir) {
            Ok(n) => n,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(config_err(e)),
        };
        for name in names {
            if name.starts_with('.') || !name.ends_with(".conf") {
                continue;
            }
            by_name
                .entry(name)
                .or_insert_with_key(|name| format!("{dir}/{name}"));
        }
    }
    let dev_null = fs.host_path("/dev/null");
    let sysctl_conf = fs.resolve(SYSCTL_CONF).ok();
    let mut config = SysctlConfig::default();
    let mut saw_sysctl_conf = false;
    for path in by_name.values() {
        let resolved = match fs.resolve(path) {
            Ok(r) => r,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(config_err(e)),
        };
        if resolved == dev_null {
            continue;
        }
        let via_sysctl_conf = sysctl_conf.as_ref() == Some(&resolved);
        let text = match fs.read_to_string(path) {
            Ok(t) => t,
            // A dangling symlink is skipped silently, as systemd does.
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(config_err(e)),
        };
        saw_sysctl_conf |= via_sysctl_conf;
        // Evidence names the file the operator edits.
        let shown = if via_sysctl_conf { SYSCTL_CONF } else { path };
        config.apply(shown, parse_conf(&text));
    }
    if !saw_sysctl_conf {
        match fs.read_to_string(SYSCTL_CONF) {
            Ok(t) => config.apply(SYSCTL_CONF, parse_conf(&t)),
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(config_err(e)),
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_normalize_like_systemd() {
        assert_eq!(
            normalize_key("net.ipv4.ip_forward").unwrap(),
            "net/ipv4/ip_forward"
        );
        assert_eq!(
            normalize_key("net/ipv4/ip_forward").unwrap(),
            "net/ipv4/ip_forward"
        );
        assert_eq!(
            normalize_key("net.ipv4.conf.eth0/1.rp_filter").unwrap(),
            "net/ipv4/conf/eth0.1/rp_filter"
        );
        assert_eq!(
            normalize_key("net/ipv4/conf/eth0.1/rp_filter").unwrap(),
            "net/ipv4/conf/eth0.1/rp_filter"
        );
        for bad in [
            "",
            "net..ipv4",
            "net/../../etc/shadow",
            "../etc",
            ".net.ipv4",
            "net.ipv4.",
            "net ipv4",
            "net.*.x",
            "net/./ipv4",
            "a//b",
        ] {
            assert!(normalize_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn conf_lines_parse_with_comments_dashes_and_globs() {
        let text = "\
# comment
; another
net.ipv4.ip_forward = 0
 -net.ipv4.conf.all.rp_filter=1  
net/ipv4/conf/eth0.1/rp_filter = 2
net.ipv4.conf.*.accept_redirects = 0
-net.ipv4.conf.lo.accept_redirects
not an assignment
net.ipv4.ip_local_port_range = 1024 \t 65000
= orphan value
";
        let l = parse_conf(text);
        let keys: Vec<_> = l
            .iter()
            .map(|c| (c.key.as_str(), c.value.as_deref(), c.line))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("net/ipv4/ip_forward", Some("0"), 3),
                ("net/ipv4/conf/all/rp_filter", Some("1"), 4),
                ("net/ipv4/conf/eth0.1/rp_filter", Some("2"), 5),
                ("net/ipv4/conf/*/accept_redirects", Some("0"), 6),
                ("net/ipv4/conf/lo/accept_redirects", None, 7),
                ("net/ipv4/ip_local_port_range", Some("1024 65000"), 9),
            ]
        );
        assert!(l[1].ignore_failure);
        assert_eq!(l[1].text, "-net.ipv4.conf.all.rp_filter=1");
    }

    fn config(files: &[(&str, &str)]) -> SysctlConfig {
        let mut c = SysctlConfig::default();
        for (p, t) in files {
            c.apply(p, parse_conf(t));
        }
        c
    }

    #[test]
    fn explicit_keys_beat_globs_and_the_last_glob_wins() {
        let c = config(&[
            (
                "/a.conf",
                "net.ipv4.conf.all.rp_filter = 2\nnet.ipv4.conf.*.rp_filter = 1\n",
            ),
            (
                "/b.conf",
                "net.ipv4.conf.*.rp_filter = 0\n-net.ipv4.conf.lo.rp_filter\n",
            ),
        ]);
        let v = |k| {
            c.lookup(k)
                .unwrap()
                .map(|v| (v.value, v.evidence.path, v.evidence.line))
        };
        assert_eq!(
            v("net.ipv4.conf.all.rp_filter"),
            Some(("2".into(), "/a.conf".into(), Some(1)))
        );
        assert_eq!(
            v("net.ipv4.conf.eth0.rp_filter"),
            Some(("0".into(), "/b.conf".into(), Some(1)))
        );
        assert_eq!(v("net.ipv4.conf.lo.rp_filter"), None);
        // `*` does not cross a separator.
        assert_eq!(v("net.ipv4.conf.a.b.rp_filter"), None);
    }

    #[test]
    fn same_value_again_keeps_the_glob_position() {
        let c = config(&[
            ("/a.conf", "net.ipv4.conf.*.x = 1\n"),
            ("/b.conf", "net.ipv4.conf.e*.x = 2\n"),
            ("/c.conf", "net.ipv4.conf.*.x = 1\n"),
        ]);
        let got = c.lookup("net.ipv4.conf.eth0.x").unwrap().unwrap();
        assert_eq!(got.value, "2");
        let d = config(&[
            ("/a.conf", "net.ipv4.conf.*.x = 1\n"),
            ("/b.conf", "net.ipv4.conf.e*.x = 2\n"),
            ("/c.conf", "net.ipv4.conf.*.x = 3\n"),
        ]);
        assert_eq!(
            d.lookup("net.ipv4.conf.eth0.x").unwrap().unwrap().value,
            "3"
        );
    }
}
