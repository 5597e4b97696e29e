//! The sshd configuration model: directives in file order, Match blocks, and
//! the rules that turn them into effective values the way `sshd -T` does.
//!
//! [`SshdConfig::parse`] reads the main file and every `Include` through an
//! [`SshdLoader`] (the probe implements it over the scanned root; tests over
//! memory), so everything here is pure. The semantics follow Debian 12's
//! OpenSSH 9.2p1, checked against the real `sshd -T` by the differential test
//! in `tests/tests/sshd_differential.rs`:
//!
//! - sshd reads the configuration twice. The first pass applies every line
//!   outside Match blocks (and inside `Match All`); the first value obtained
//!   wins. The second pass, for one connection, applies only the lines of
//!   Match blocks that match it, first value wins among them, and they
//!   override the first pass for the keywords allowed in Match.
//! - An `Include` inside a Match block is conditioned by that block: the
//!   included lines apply only when it matches, and Match lines in the
//!   included file are considered only then.
//! - Values are normalised to what `sshd -T` prints, with one deliberate
//!   difference: `PermitRootLogin prohibit-password` (which sshd 9.2 prints
//!   with its old alias `without-password`) is `prohibit-password`.

mod keywords;
mod lex;
pub mod pattern;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::Evidence;
use keywords::{Kind, Spec};

/// sshd under the root: absent, or its parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SshdFact {
    /// No sshd binary under the root (`/usr/sbin/sshd`).
    NotInstalled,
    Config(SshdConfig),
}

/// The whole configuration with every `Include` expanded in place.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SshdConfig {
    /// Every directive in the order sshd reads it.
    pub directives: Vec<Directive>,
    /// The Match blocks, referenced by [`Directive::block`].
    pub blocks: Vec<MatchBlock>,
    /// Every file that was read (root-relative), for the drift watcher.
    pub files: Vec<String>,
    /// Every `Include` pattern, made absolute (`/etc/ssh/sshd_config.d/*.conf`),
    /// so a watcher can watch directories that hold no matching file yet.
    #[serde(default)]
    pub include_patterns: Vec<String>,
}

/// One `Keyword args...` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directive {
    /// Canonical lower-case keyword, aliases folded (`challengeresponseauthentication`
    /// becomes `kbdinteractiveauthentication`).
    pub keyword: String,
    /// Arguments after unquoting.
    pub args: Vec<String>,
    /// Index into [`SshdConfig::blocks`] when the line is inside a Match block.
    pub block: Option<usize>,
    pub evidence: Evidence,
    /// What this line contributes, normalised the way `sshd -T` prints it
    /// (one item for single-valued keywords, one per entry for lists such as
    /// `AllowUsers`).
    #[serde(default)]
    pub value: Vec<String>,
}

/// A `Match` line and its criteria.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchBlock {
    pub criteria: Vec<Criterion>,
    pub evidence: Evidence,
    /// The block that was in force where the `Include` that brought this
    /// block's file in was written: this block applies only when that one
    /// applies too.
    #[serde(default)]
    pub parent: Option<usize>,
}

/// One criterion of a Match line (`User alice,bob`, `Address 10.0.0.0/8`, `All`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    /// Lower-case criterion name: all, user, group, host, address, localaddress,
    /// localport, rdomain.
    pub name: String,
    /// The pattern list as written (comma-separated, `!` negation allowed).
    pub patterns: String,
}

/// The connection a Match is evaluated against (`sshd -T -C ...`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Connection {
    pub user: Option<String>,
    /// The user's groups (from the root's `/etc/group` and primary gid).
    /// Empty when the user does not exist, so `Match Group` does not match.
    pub groups: Vec<String>,
    pub host: Option<String>,
    pub addr: Option<String>,
    pub laddr: Option<String>,
    pub lport: Option<u16>,
    pub rdomain: Option<String>,
}

/// An effective value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveValue {
    /// The value as `sshd -T` prints it after the keyword. Keywords that
    /// `sshd -T` prints on several lines (`port`, `allowusers`, `acceptenv`,
    /// `listenaddress`, `hostkey`) have the lines' values joined with `,`;
    /// an unset list is the empty string.
    pub value: String,
    /// The line that set it; `None` for OpenSSH's compiled default.
    pub evidence: Option<Evidence>,
}

impl EffectiveValue {
    /// The items of a list value: split at commas and whitespace, empty
    /// items dropped (`Ciphers`, `AllowUsers`, `AuthenticationMethods`).
    pub fn items(&self) -> Vec<&str> {
        self.value
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// The value one Match block gives a keyword (or the global value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// `None` for the global value; otherwise the index of the Match block
    /// into [`SshdConfig::blocks`].
    pub block: Option<usize>,
    pub value: EffectiveValue,
}

/// How [`SshdConfig::parse`] reads files. Paths are absolute as sshd sees
/// them (`/etc/ssh/sshd_config`).
pub trait SshdLoader {
    /// The whole content of a file.
    fn read(&self, path: &str) -> Result<String, String>;
    /// The existing paths matching a glob(3) pattern, sorted bytewise; an
    /// empty list when nothing matches.
    fn glob(&self, pattern: &str) -> Result<Vec<String>, String>;
}

/// Why a configuration cannot be used; sshd would refuse to start (or
/// `sshd -T` would fail) for the same reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum SshdError {
    #[error("{path}: cannot read: {message}")]
    Read { path: String, message: String },
    #[error("{path} line {line}: include \"{pattern}\" glob failed: {message}")]
    Glob {
        path: String,
        line: u32,
        pattern: String,
        message: String,
    },
    #[error("{path} line {line}: {message}")]
    Syntax {
        path: String,
        line: u32,
        message: String,
    },
    #[error("{path}: too many recursive configuration includes (more than {max})")]
    IncludeDepth { path: String, max: usize },
    #[error("{path}: configuration too large (more than {max} lines including includes)")]
    TooLarge { path: String, max: usize },
    #[error(
        "'Match {criterion}' in configuration but '{attribute}' not in connection specification"
    )]
    MissingAttribute {
        criterion: String,
        attribute: String,
    },
}

/// sshd's limit on nested includes.
pub const MAX_INCLUDE_DEPTH: usize = 16;
/// Our own limit on lines read, including every included file: a glob that
/// includes itself many times over must not exhaust time or memory.
pub const MAX_TOTAL_LINES: usize = 200_000;

/// The directory relative `Include` paths resolve against.
pub const SSHD_DIR: &str = "/etc/ssh";

/// The lower-case canonical keyword, aliases folded; `None` for keywords
/// sshd does not know.
pub fn canonical_keyword(k: &str) -> Option<&'static str> {
    keywords::lookup(k).map(|(spec, _)| spec.name)
}

struct Parser<'a> {
    loader: &'a dyn SshdLoader,
    cfg: SshdConfig,
    lines: usize,
    main: String,
}

fn syntax(path: &str, line: u32, message: impl Into<String>) -> SshdError {
    SshdError::Syntax {
        path: path.to_string(),
        line,
        message: message.into(),
    }
}

impl SshdConfig {
    /// Reads `main` and everything it includes, checking each line the way
    /// sshd does when it starts.
    pub fn parse(loader: &dyn SshdLoader, main: &str) -> Result<SshdConfig, SshdError> {
        let mut p = Parser {
            loader,
            cfg: SshdConfig::default(),
            lines: 0,
            main: main.to_string(),
        };
        p.file(main, 0, None)?;
        p.cfg.check_startup()?;
        Ok(p.cfg)
    }

    /// The checks sshd makes on the global values when it starts.
    fn check_startup(&self) -> Result<(), SshdError> {
        self.check_any_alone(|b| self.first_pass_active(b))?;
        let global = self.fold_global();
        // Listen addresses are resolved within the address family.
        let family = global
            .get("addressfamily")
            .and_then(|s| s.items.first().cloned())
            .unwrap_or_default();
        if let Some(slot) = global.get("listenaddress") {
            for item in &slot.items {
                let addr = item.rsplit_once('|').map_or(item.as_str(), |(a, _)| a);
                let mismatch = match addr.parse::<IpAddr>() {
                    Ok(IpAddr::V4(_)) => family == "inet6",
                    Ok(IpAddr::V6(_)) => family == "inet",
                    Err(_) => false,
                };
                if mismatch {
                    return Err(SshdError::Syntax {
                        path: slot.evidence.path.clone(),
                        line: slot.evidence.line.unwrap_or(0),
                        message: format!(
                            "bad addr or host: {addr} (Address family for hostname not supported)"
                        ),
                    });
                }
            }
        }
        for (command, user) in [
            ("authorizedkeyscommand", "authorizedkeyscommanduser"),
            (
                "authorizedprincipalscommand",
                "authorizedprincipalscommanduser",
            ),
        ] {
            if let Some(slot) = global.get(command)
                && slot
                    .items
                    .first()
                    .is_some_and(|c| !c.eq_ignore_ascii_case("none"))
                && !global.contains_key(user)
            {
                return Err(SshdError::Syntax {
                    path: slot.evidence.path.clone(),
                    line: slot.evidence.line.unwrap_or(0),
                    message: format!("{command} set without {user}"),
                });
            }
        }
        let Some(slot) = global.get("authenticationmethods") else {
            return Ok(());
        };
        let Some(list) = slot.items.first() else {
            return Ok(());
        };
        if list == "any" {
            return Ok(());
        }
        let enabled = |method: &str| -> bool {
            let name = method.split_once(':').map_or(method, |(n, _)| n);
            let keyword = match name {
                "publickey" => "pubkeyauthentication",
                "password" => "passwordauthentication",
                "keyboard-interactive" => "kbdinteractiveauthentication",
                "hostbased" => "hostbasedauthentication",
                "gssapi-with-mic" => "gssapiauthentication",
                "gssapi-keyex" => "gssapikeyexchange",
                _ => return false,
            };
            let value = global
                .get(keyword)
                .and_then(|s| s.items.first().cloned())
                .unwrap_or_else(|| keywords::default_value(keyword).to_string());
            value == "yes"
        };
        if list.split(' ').any(|l| l.split(',').all(enabled)) {
            return Ok(());
        }
        Err(SshdError::Syntax {
            path: slot.evidence.path.clone(),
            line: slot.evidence.line.unwrap_or(0),
            message: "AuthenticationMethods cannot be satisfied by enabled authentication methods"
                .to_string(),
        })
    }

    /// sshd refuses `AuthenticationMethods any` on any line once an applying
    /// line has set the methods in the same pass (even when the `any` line
    /// itself is in a block that does not apply).
    fn check_any_alone(&self, active: impl Fn(Option<usize>) -> bool) -> Result<(), SshdError> {
        let mut set = false;
        for d in &self.directives {
            if d.keyword != "authenticationmethods" {
                continue;
            }
            if set && d.args.first().is_some_and(|a| a == "any") {
                return Err(SshdError::Syntax {
                    path: d.evidence.path.clone(),
                    line: d.evidence.line.unwrap_or(0),
                    message: "\"any\" must appear alone in AuthenticationMethods".to_string(),
                });
            }
            if active(d.block) {
                set = true;
            }
        }
        Ok(())
    }

    /// Whether block `b` and every block it was included under apply. With
    /// `conn` `None` this is sshd's first pass, where only `Match All` applies.
    fn block_applies(&self, b: usize, conn: Option<&Connection>) -> bool {
        let mut cur = Some(b);
        let mut guard = 0;
        while let Some(i) = cur {
            let Some(block) = self.blocks.get(i) else {
                return false;
            };
            if !criteria_match(&block.criteria, conn) {
                return false;
            }
            cur = block.parent;
            guard += 1;
            if guard > self.blocks.len() {
                return false;
            }
        }
        true
    }

    fn first_pass_active(&self, block: Option<usize>) -> bool {
        block.is_none_or(|b| self.block_applies(b, None))
    }

    /// The global values: sshd's first pass.
    fn fold_global(&self) -> BTreeMap<&str, Slot> {
        let mut out = BTreeMap::new();
        for d in &self.directives {
            if self.first_pass_active(d.block) {
                merge(&mut out, d);
            }
        }
        out
    }

    /// The second pass for the blocks `applies` says match.
    fn fold_matches(&self, applies: impl Fn(usize) -> bool) -> BTreeMap<&str, Slot> {
        let mut out = BTreeMap::new();
        let mut memo: BTreeMap<usize, bool> = BTreeMap::new();
        for d in &self.directives {
            let Some(b) = d.block else { continue };
            let on = *memo.entry(b).or_insert_with(|| applies(b));
            if on {
                merge(&mut out, d);
            }
        }
        out
    }

    fn value_of(
        &self,
        keyword: &str,
        global: &BTreeMap<&str, Slot>,
        matched: &BTreeMap<&str, Slot>,
    ) -> EffectiveValue {
        let Some((spec, _)) = keywords::lookup(keyword) else {
            return EffectiveValue {
                value: String::new(),
                evidence: None,
            };
        };
        let name = spec.name;
        if spec.kind == Kind::RekeyLimit {
            let pick =
                |m: &BTreeMap<&str, Slot>| m.get(name).and_then(|s| s.items.first().cloned());
            let from_match = matched.get(name);
            let combined = combine_rekey(
                &pick(matched).unwrap_or_else(|| "- -".to_string()),
                &combine_rekey(&pick(global).unwrap_or_else(|| "- -".to_string()), "0 0"),
            );
            return EffectiveValue {
                value: combined,
                evidence: from_match
                    .or_else(|| global.get(name))
                    .map(|s| s.evidence.clone()),
            };
        }
        if spec.in_match
            && let Some(slot) = matched.get(name)
        {
            return slot.render(spec);
        }
        match spec.kind {
            Kind::ListenAddress => return listen_addresses(global),
            Kind::HostKey if name == "hostkey" && !global.contains_key(name) => {
                return EffectiveValue {
                    value: "/etc/ssh/ssh_host_rsa_key,/etc/ssh/ssh_host_ecdsa_key,/etc/ssh/ssh_host_ed25519_key"
                        .to_string(),
                    evidence: None,
                };
            }
            _ => {}
        }
        match global.get(name) {
            Some(slot) => slot.render(spec),
            None => EffectiveValue {
                value: keywords::default_value(name).to_string(),
                evidence: None,
            },
        }
    }

    /// What `sshd -T -C user=..,host=..,addr=..,laddr=..,lport=..` prints for
    /// `keyword`. A criterion whose attribute the connection lacks does not
    /// match (see [`SshdConfig::check_connection`] for the cases where sshd
    /// refuses instead). Unknown keywords give an empty value.
    pub fn effective(&self, keyword: &str, conn: &Connection) -> EffectiveValue {
        let global = self.fold_global();
        let matched = self.fold_matches(|b| self.block_applies(b, Some(conn)));
        self.value_of(keyword, &global, &matched)
    }

    /// What `sshd -T` prints for `keyword`: the global value, with only
    /// `Match All` blocks applied.
    pub fn global(&self, keyword: &str) -> EffectiveValue {
        self.effective(keyword, &Connection::default())
    }

    /// The global value plus, for each Match block that sets `keyword`, the
    /// value that block gives when it applies (together with the blocks it
    /// was included under and every `Match All`, and no other block).
    pub fn variants(&self, keyword: &str) -> Vec<Variant> {
        let mut out = vec![Variant {
            block: None,
            value: self.global(keyword),
        }];
        let Some(name) = canonical_keyword(keyword) else {
            return out;
        };
        let global = self.fold_global();
        let mut seen: Vec<usize> = Vec::new();
        for d in &self.directives {
            let Some(b) = d.block else { continue };
            if d.keyword != name || seen.contains(&b) {
                continue;
            }
            seen.push(b);
            let mut chain: Vec<usize> = Vec::new();
            let mut cur = Some(b);
            while let Some(i) = cur {
                if chain.contains(&i) {
                    break;
                }
                chain.push(i);
                cur = self.blocks.get(i).and_then(|blk| blk.parent);
            }
            let matched = self.fold_matches(|x| {
                chain.contains(&x) || self.block_applies(x, Some(&Connection::default()))
            });
            out.push(Variant {
                block: Some(b),
                value: self.value_of(name, &global, &matched),
            });
        }
        out
    }

    /// The reasons `sshd -T -C` would refuse this connection specification:
    /// a `Match LocalPort` that is evaluated while the connection has no
    /// local port, or an `AuthenticationMethods any` after an applying Match
    /// line already set the methods.
    pub fn check_connection(&self, conn: &Connection) -> Result<(), SshdError> {
        self.check_any_alone(|b| b.is_some_and(|b| self.block_applies(b, Some(conn))))?;
        if conn.lport.is_some_and(|p| p != 0) {
            return Ok(());
        }
        for (i, block) in self.blocks.iter().enumerate() {
            if !block.criteria.iter().any(|c| c.name == "localport") {
                continue;
            }
            // sshd evaluates the criterion when the block's Match line is
            // reached in a file whose include site applies.
            let reached = block
                .parent
                .is_none_or(|p| self.block_applies(p, Some(conn)));
            // Criteria before LocalPort on the same line are evaluated too,
            // but sshd still reaches LocalPort: it never stops early.
            if reached {
                let _ = i;
                return Err(SshdError::MissingAttribute {
                    criterion: "LocalPort".to_string(),
                    attribute: "lport".to_string(),
                });
            }
        }
        Ok(())
    }
}

/// The accumulated value of one keyword during a pass.
#[derive(Debug, Clone)]
struct Slot {
    items: Vec<String>,
    evidence: Evidence,
}

impl Slot {
    fn render(&self, _spec: &Spec) -> EffectiveValue {
        EffectiveValue {
            value: self.items.join(","),
            evidence: Some(self.evidence.clone()),
        }
    }
}

fn merge<'a>(out: &mut BTreeMap<&'a str, Slot>, d: &'a Directive) {
    let Some((spec, _)) = keywords::lookup(&d.keyword) else {
        return;
    };
    match spec.kind {
        Kind::Ignored | Kind::Match | Kind::Include => {}
        Kind::UnusedTimeout if d.value.first().is_some_and(|v| v == "none") => {
            // sshd stores `none` whenever the line applies, over any earlier
            // value; a time only fills an unset value.
            out.insert(
                spec.name,
                Slot {
                    items: d.value.clone(),
                    evidence: d.evidence.clone(),
                },
            );
        }
        Kind::RekeyLimit => {
            // The size and the interval are two settings, each first-wins.
            let new = d.value.first().cloned().unwrap_or_default();
            match out.get_mut(spec.name) {
                None => {
                    out.insert(
                        spec.name,
                        Slot {
                            items: vec![new],
                            evidence: d.evidence.clone(),
                        },
                    );
                }
                Some(slot) => {
                    let old = slot.items.first().cloned().unwrap_or_default();
                    slot.items = vec![combine_rekey(&old, &new)];
                }
            }
        }
        Kind::Append | Kind::Port | Kind::ListenAddress | Kind::HostKey | Kind::Subsystem => {
            let slot = out.entry(spec.name).or_insert_with(|| Slot {
                items: Vec::new(),
                evidence: d.evidence.clone(),
            });
            slot.items.extend(d.value.iter().cloned());
        }
        Kind::MaxStartups => {
            // A single number replaces start and full and keeps the rate.
            let prev = out
                .get(spec.name)
                .and_then(|s| s.items.first().cloned())
                .unwrap_or_else(|| "10:30:100".to_string());
            let mut parts: Vec<String> = prev.split(':').map(str::to_string).collect();
            let new: Vec<&str> = d
                .value
                .first()
                .map(|v| v.split(':').collect())
                .unwrap_or_default();
            if new.len() == 3 {
                parts = new.iter().map(|s| s.to_string()).collect();
            } else if let (Some(n), 3) = (new.first(), parts.len()) {
                parts[0] = n.to_string();
                parts[2] = n.to_string();
            }
            out.insert(
                spec.name,
                Slot {
                    items: vec![parts.join(":")],
                    evidence: d.evidence.clone(),
                },
            );
        }
        _ if spec.last_wins => {
            out.insert(
                spec.name,
                Slot {
                    items: d.value.clone(),
                    evidence: d.evidence.clone(),
                },
            );
        }
        _ => {
            out.entry(spec.name).or_insert_with(|| Slot {
                items: d.value.clone(),
                evidence: d.evidence.clone(),
            });
        }
    }
}

/// Combines two `RekeyLimit` values part by part: `-` marks an unset part,
/// which the other value fills.
fn combine_rekey(first: &str, second: &str) -> String {
    let (l1, i1) = first.split_once(' ').unwrap_or((first, "-"));
    let (l2, i2) = second.split_once(' ').unwrap_or((second, "-"));
    let limit = if l1 == "-" { l2 } else { l1 };
    let interval = if i1 == "-" { i2 } else { i1 };
    format!("{limit} {interval}")
}

/// `listenaddress` as `sshd -T` prints it: each address with its port (or
/// with every `Port` when it has none), in order; without any, the wildcard
/// addresses of the address family.
fn listen_addresses(global: &BTreeMap<&str, Slot>) -> EffectiveValue {
    let ports: Vec<String> = global
        .get("port")
        .map(|s| s.items.clone())
        .unwrap_or_else(|| vec!["22".to_string()]);
    let family = global
        .get("addressfamily")
        .and_then(|s| s.items.first().cloned())
        .unwrap_or_else(|| "any".to_string());
    let mut out: Vec<String> = Vec::new();
    let evidence = global.get("listenaddress").map(|s| s.evidence.clone());
    match global.get("listenaddress") {
        None => {
            for p in &ports {
                if family != "inet" {
                    out.push(format!("[::]:{p}"));
                }
                if family != "inet6" {
                    out.push(format!("0.0.0.0:{p}"));
                }
            }
        }
        Some(slot) => {
            for item in &slot.items {
                // Items are stored as `addr|port` with port 0 for "every port".
                let (addr, port) = item.rsplit_once('|').unwrap_or((item.as_str(), "0"));
                let shown = match addr.parse::<IpAddr>() {
                    Ok(IpAddr::V6(a)) => format!("[{a}]"),
                    Ok(IpAddr::V4(a)) => a.to_string(),
                    Err(_) => addr.to_string(),
                };
                if port == "0" {
                    for p in &ports {
                        out.push(format!("{shown}:{p}"));
                    }
                } else {
                    out.push(format!("{shown}:{port}"));
                }
            }
        }
    }
    EffectiveValue {
        value: out.join(","),
        evidence,
    }
}

/// All criteria of one Match line hold (sshd's `match_cfg_line`). `conn`
/// `None` is the first pass, where only `All` holds.
fn criteria_match(criteria: &[Criterion], conn: Option<&Connection>) -> bool {
    let mut result = true;
    for c in criteria {
        if c.name == "all" {
            return true;
        }
        let Some(ci) = conn else {
            result = false;
            continue;
        };
        let ok = match c.name.as_str() {
            "user" => ci
                .user
                .as_deref()
                .is_some_and(|u| pattern::match_pattern_list(u, &c.patterns, false) == 1),
            "group" => {
                ci.user.is_some() && {
                    let mut found = false;
                    let mut negated = false;
                    for g in &ci.groups {
                        match pattern::match_pattern_list(g, &c.patterns, false) {
                            -1 => {
                                negated = true;
                                break;
                            }
                            1 => found = true,
                            _ => {}
                        }
                    }
                    found && !negated
                }
            }
            "host" => ci.host.as_deref().is_some_and(|h| {
                pattern::match_pattern_list(&h.to_ascii_lowercase(), &c.patterns, true) == 1
            }),
            "address" => ci
                .addr
                .as_deref()
                .is_some_and(|a| pattern::addr_match_list(Some(a), &c.patterns) == 1),
            "localaddress" => ci
                .laddr
                .as_deref()
                .is_some_and(|a| pattern::addr_match_list(Some(a), &c.patterns) == 1),
            "localport" => match (ci.lport, keywords::a2port(&c.patterns)) {
                (Some(p), Some(want)) if p != 0 => p == want,
                _ => false,
            },
            "rdomain" => ci
                .rdomain
                .as_deref()
                .is_some_and(|r| pattern::match_pattern_list(r, &c.patterns, false) == 1),
            _ => false,
        };
        if !ok {
            result = false;
        }
    }
    result
}

impl Parser<'_> {
    fn file(&mut self, path: &str, depth: usize, site: Option<usize>) -> Result<(), SshdError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(SshdError::IncludeDepth {
                path: path.to_string(),
                max: MAX_INCLUDE_DEPTH,
            });
        }
        let text = self.loader.read(path).map_err(|message| SshdError::Read {
            path: path.to_string(),
            message,
        })?;
        if !self.cfg.files.iter().any(|f| f == path) {
            self.cfg.files.push(path.to_string());
        }
        let mut current = site;
        for (i, raw) in text.split('\n').enumerate() {
            self.lines += 1;
            if self.lines > MAX_TOTAL_LINES {
                return Err(SshdError::TooLarge {
                    path: self.main.clone(),
                    max: MAX_TOTAL_LINES,
                });
            }
            let lineno = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let line = match lex::split_line(raw) {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(lex::LexError::NoArgument(k)) => {
                    return Err(syntax(
                        path,
                        lineno,
                        format!("no argument after keyword \"{k}\""),
                    ));
                }
                Err(lex::LexError::InvalidQuotes) => {
                    return Err(syntax(path, lineno, "invalid quotes"));
                }
            };
            let Some((spec, global_only)) = keywords::lookup(&line.keyword) else {
                // sshd checks the Match context before it reports an unknown
                // keyword; both are fatal.
                return Err(syntax(
                    path,
                    lineno,
                    format!("Bad configuration option: {}", line.keyword),
                ));
            };
            let text_line = raw.trim_end_matches(['\r', '\n']).to_string();
            let evidence = Evidence::line(path, lineno, text_line);
            let first_pass = self.cfg.first_pass_active(current);
            if (!spec.in_match || global_only) && !first_pass {
                return Err(syntax(
                    path,
                    lineno,
                    format!(
                        "Directive '{}' is not allowed within a Match block",
                        line.keyword
                    ),
                ));
            }
            match spec.kind {
                Kind::Match => {
                    let criteria = parse_match(&line.rest).map_err(|m| syntax(path, lineno, m))?;
                    self.cfg.blocks.push(MatchBlock {
                        criteria,
                        evidence,
                        parent: site,
                    });
                    current = Some(self.cfg.blocks.len() - 1);
                }
                Kind::Include => {
                    if line.args.is_empty() {
                        return Err(syntax(path, lineno, "Include missing filename argument"));
                    }
                    for arg in &line.args {
                        if arg.is_empty() {
                            return Err(syntax(path, lineno, "Include empty argument"));
                        }
                        let target = if arg.starts_with('/') || arg.starts_with('~') {
                            arg.clone()
                        } else {
                            format!("{SSHD_DIR}/{arg}")
                        };
                        if !self.cfg.include_patterns.contains(&target) {
                            self.cfg.include_patterns.push(target.clone());
                        }
                        let mut found =
                            self.loader
                                .glob(&target)
                                .map_err(|message| SshdError::Glob {
                                    path: path.to_string(),
                                    line: lineno,
                                    pattern: target.clone(),
                                    message,
                                })?;
                        found.sort();
                        found.dedup();
                        for f in found {
                            self.file(&f, depth + 1, current)?;
                        }
                    }
                }
                _ => {
                    let value = normalize(spec, &line).map_err(|m| syntax(path, lineno, m))?;
                    self.cfg.directives.push(Directive {
                        keyword: spec.name.to_string(),
                        args: line.args.clone(),
                        block: current,
                        evidence,
                        value,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Reads the criteria of a Match line the way sshd's `match_cfg_line`
/// checks them.
fn parse_match(rest: &str) -> Result<Vec<Criterion>, String> {
    let mut out = Vec::new();
    let mut cur = Some(rest);
    while let Some(s) = cur {
        let (tok, next) = lex::strdelim(s);
        cur = next;
        let Some(attrib) = tok else { break };
        if attrib.is_empty() {
            break;
        }
        if attrib.starts_with('#') {
            break;
        }
        let name = attrib.to_ascii_lowercase();
        if name == "all" {
            let extra = cur.map(lex::strdelim).and_then(|(t, _)| t);
            if !out.is_empty() || extra.is_some_and(|a| !a.is_empty() && !a.starts_with('#')) {
                return Err("'all' cannot be combined with other Match attributes".to_string());
            }
            out.push(Criterion {
                name,
                patterns: String::new(),
            });
            return Ok(out);
        }
        let arg = match cur.map(lex::strdelim) {
            Some((Some(a), next)) if !a.is_empty() && !a.starts_with('#') => {
                cur = next;
                a
            }
            _ => return Err(format!("Missing Match criteria for {attrib}")),
        };
        match name.as_str() {
            "user" | "group" | "host" | "rdomain" => {}
            "address" | "localaddress" => {
                if pattern::addr_match_list(None, &arg) != 0 {
                    return Err(format!("Invalid Match {name} argument '{arg}'"));
                }
            }
            "localport" => {
                if keywords::a2port(&arg).is_none() {
                    return Err(format!("Invalid LocalPort '{arg}' on Match line"));
                }
            }
            _ => return Err(format!("Unsupported Match attribute {attrib}")),
        }
        out.push(Criterion {
            name,
            patterns: arg,
        });
    }
    if out.is_empty() {
        return Err("One or more attributes required for Match".to_string());
    }
    Ok(out)
}

/// sshd's `derelativise_path` with `/` as the working directory (as under
/// systemd) and root's home for `~`: a relative `issue` becomes `//issue`,
/// exactly as sshd joins them.
fn derelativise(p: &str) -> String {
    if p.eq_ignore_ascii_case("none") {
        return "none".to_string();
    }
    let expanded = if p == "~" {
        "/root".to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("/root/{rest}")
    } else {
        p.to_string()
    };
    if expanded.starts_with('/') {
        expanded
    } else {
        format!("//{expanded}")
    }
}

/// Checks one directive's arguments and returns what it contributes, in
/// `sshd -T`'s spelling.
fn normalize(spec: &Spec, line: &lex::Line) -> Result<Vec<String>, String> {
    let kw = spec.name;
    let args = &line.args;
    let first = args.first().map(String::as_str);
    let need = || -> Result<&str, String> {
        match first {
            Some(a) if !a.is_empty() => Ok(a),
            _ => Err(format!("{kw}: missing argument")),
        }
    };
    let at_most = |n: usize| -> Result<(), String> {
        if args.len() > n {
            Err(format!("keyword {kw} extra arguments at end of line"))
        } else {
            Ok(())
        }
    };
    let one = |v: String| Ok(vec![v]);
    match spec.kind {
        Kind::Flag => {
            at_most(1)?;
            let a = need()?;
            let lower = a.to_ascii_lowercase();
            match lower.as_str() {
                "yes" | "no" => one(lower),
                _ => Err(format!("unsupported option \"{a}\"")),
            }
        }
        Kind::Multi(table) => {
            at_most(1)?;
            let a = need()?;
            let lower = a.to_ascii_lowercase();
            table
                .iter()
                .find(|(k, _)| *k == lower)
                .map(|(_, v)| vec![v.to_string()])
                .ok_or_else(|| format!("unsupported option \"{a}\""))
        }
        Kind::Tunnel => {
            at_most(1)?;
            let a = need()?;
            match a {
                "no" | "point-to-point" | "ethernet" | "yes" => one(a.to_string()),
                _ => Err(format!("bad {kw} argument {a}")),
            }
        }
        Kind::Int => {
            at_most(1)?;
            let a = first.unwrap_or("");
            keywords::parse_int(a)
                .map(|v| vec![v.to_string()])
                .ok_or_else(|| format!("{kw} integer value invalid"))
        }
        Kind::Time => {
            at_most(1)?;
            let a = need()?;
            keywords::convtime(a)
                .map(|v| vec![v.to_string()])
                .ok_or_else(|| "invalid time value".to_string())
        }
        Kind::UnusedTimeout => {
            at_most(1)?;
            let a = need()?;
            if a.eq_ignore_ascii_case("none") {
                return one("none".to_string());
            }
            match keywords::convtime(a) {
                Some(0) => one("none".to_string()),
                Some(v) => one(v.to_string()),
                None => Err("invalid time value".to_string()),
            }
        }
        Kind::Path => {
            at_most(1)?;
            one(derelativise(need()?))
        }
        Kind::Word => {
            at_most(1)?;
            let a = need()?;
            one(
                if a.eq_ignore_ascii_case("none") && kw == "chrootdirectory" {
                    "none".to_string()
                } else {
                    a.to_string()
                },
            )
        }
        Kind::Rest => {
            let rest = line.rest.trim_start_matches([' ', '\t', '\r', '\n']);
            if kw == "forcecommand" && rest.eq_ignore_ascii_case("none") {
                return one("none".to_string());
            }
            one(rest.to_string())
        }
        Kind::Command => {
            let rest = line.rest.trim_start_matches([' ', '\t', '\r', '\n']);
            if !rest.starts_with('/') && !rest.eq_ignore_ascii_case("none") {
                return Err(format!("{kw} must be an absolute path"));
            }
            one(rest.to_string())
        }
        Kind::Algos(algo) => {
            at_most(1)?;
            let a = need()?;
            keywords::assemble_algorithms(algo, kw, a).map(|v| vec![v])
        }
        Kind::Append => {
            if args.is_empty() {
                return Err(format!("{kw}: missing argument"));
            }
            for a in args {
                if a.is_empty() {
                    return Err(format!("invalid {kw} pattern: \"\""));
                }
                if kw == "acceptenv" && a.contains('=') {
                    return Err("Invalid environment name".to_string());
                }
                if (kw == "allowusers" || kw == "denyusers")
                    && let Some((_, host)) = a.split_once('@')
                    && pattern::addr_match_list(None, host) == -2
                {
                    return Err(format!("invalid {kw} pattern: \"{a}\""));
                }
            }
            Ok(args.clone())
        }
        Kind::Port => {
            at_most(1)?;
            let a = need()?;
            match keywords::a2port(a) {
                Some(p) if p > 0 => one(p.to_string()),
                _ => Err("Badly formatted port number".to_string()),
            }
        }
        Kind::ListenAddress => {
            let a = need()?;
            if args.len() == 3 && args[1] != "rdomain" || args.len() == 2 || args.len() > 3 {
                return Err("bad ListenAddress syntax".to_string());
            }
            if args.len() == 3 {
                return Err("bad routing domain".to_string());
            }
            let colons = a.matches(':').count();
            let (host, port) = if !a.contains('[') && colons >= 2 {
                (a.to_string(), 0u16)
            } else if let Some(inner) = a.strip_prefix('[') {
                let (h, tail) = inner
                    .split_once(']')
                    .ok_or_else(|| "bad address:port usage".to_string())?;
                match tail.strip_prefix(':') {
                    Some(p) => match keywords::a2port(p) {
                        Some(p) if p > 0 => (h.to_string(), p),
                        _ => return Err("bad port number".to_string()),
                    },
                    None if tail.is_empty() => (h.to_string(), 0),
                    None => return Err("bad address:port usage".to_string()),
                }
            } else if let Some((h, p)) = a.split_once(':') {
                match keywords::a2port(p) {
                    Some(p) if p > 0 => (h.to_string(), p),
                    _ => return Err("bad port number".to_string()),
                }
            } else {
                (a.to_string(), 0)
            };
            one(format!("{host}|{port}"))
        }
        Kind::HostKey => {
            at_most(1)?;
            one(derelativise(need()?))
        }
        Kind::FirstLine => {
            if args.is_empty() {
                return Err(format!("{kw}: missing argument"));
            }
            if args.iter().any(String::is_empty) {
                return Err(format!("keyword {kw} empty argument"));
            }
            if kw == "permitopen" || kw == "permitlisten" {
                if args[0] == "any" || args[0] == "none" {
                    if args.len() > 1 {
                        return Err(format!("keyword {kw} extra arguments at end of line"));
                    }
                    return one(args[0].clone());
                }
                // A bare port in PermitListen means any listen host.
                let shown: Vec<String> = args
                    .iter()
                    .map(|a| {
                        if kw == "permitlisten" && !a.contains(':') {
                            format!("*:{a}")
                        } else {
                            a.clone()
                        }
                    })
                    .collect();
                return one(shown.join(" "));
            }
            if kw == "setenv" {
                if args.iter().any(|a| !a.contains('=')) {
                    return Err("Invalid environment".to_string());
                }
                // Printed one per line; a name given twice keeps its first value.
                let mut out: Vec<String> = Vec::new();
                for a in args {
                    let name = a.split_once('=').map_or(a.as_str(), |(n, _)| n);
                    if !out
                        .iter()
                        .any(|o| o.split_once('=').is_some_and(|(n, _)| n == name))
                    {
                        out.push(a.clone());
                    }
                }
                return Ok(out);
            }
            one(args.join(" "))
        }
        Kind::AuthMethods => {
            if args.is_empty() {
                return Err(format!("no {kw} specified"));
            }
            let mut any = false;
            for (i, a) in args.iter().enumerate() {
                if a == "any" {
                    if i > 0 {
                        return Err(format!("\"any\" must appear alone in {kw}"));
                    }
                    any = true;
                } else if any {
                    return Err(format!("\"any\" must appear alone in {kw}"));
                } else if !keywords::auth_method_valid(a) {
                    return Err(format!("invalid {kw} method list"));
                }
            }
            one(args.join(" "))
        }
        Kind::MaxStartups => {
            at_most(1)?;
            let a = need()?;
            let nums = scan_ints(a);
            match nums.len() {
                3 => {
                    let (b, r, m) = (nums[0], nums[1], nums[2]);
                    if b > m || !(1..=100).contains(&r) || m <= 0 || b <= 0 {
                        return Err(format!("Invalid {kw} spec"));
                    }
                    one(format!("{b}:{r}:{m}"))
                }
                1 if nums[0] > 0 => one(nums[0].to_string()),
                _ => Err(format!("Invalid {kw} spec")),
            }
        }
        Kind::LogLevel => {
            at_most(1)?;
            let a = first.unwrap_or("");
            keywords::log_level(a)
                .map(|v| vec![v.to_string()])
                .ok_or_else(|| format!("unsupported log level '{a}'"))
        }
        Kind::LogFacility => {
            at_most(1)?;
            let a = first.unwrap_or("");
            keywords::log_facility(a)
                .map(|v| vec![v])
                .ok_or_else(|| format!("unsupported log facility '{a}'"))
        }
        Kind::PermitUserEnv => {
            at_most(1)?;
            one(need()?.to_string())
        }
        Kind::Subsystem => {
            if args.len() < 2 {
                return Err("Missing subsystem command".to_string());
            }
            one(args.join(" "))
        }
        Kind::IpQos => {
            at_most(2)?;
            let a = need()?;
            let interactive =
                keywords::ipqos_name(a).ok_or_else(|| format!("Bad {kw} value: {a}"))?;
            let bulk = match args.get(1) {
                Some(b) => keywords::ipqos_name(b).ok_or_else(|| format!("Bad {kw} value: {b}"))?,
                None => interactive.clone(),
            };
            one(format!("{interactive} {bulk}"))
        }
        Kind::RekeyLimit => {
            at_most(2)?;
            let a = need()?;
            let limit = if a == "default" {
                0
            } else {
                let v = keywords::scan_scaled(a).ok_or_else(|| format!("Bad {kw} number '{a}'"))?;
                if v != 0 && v < 16 {
                    return Err(format!("{kw} too small"));
                }
                v
            };
            let interval = match args.get(1).map(String::as_str) {
                None | Some("none") => "-".to_string(),
                Some(t) => keywords::convtime(t)
                    .ok_or_else(|| "invalid time value".to_string())?
                    .to_string(),
            };
            one(format!("{limit} {interval}"))
        }
        Kind::Ignored => Ok(Vec::new()),
        Kind::Loose => {
            let a = need()?;
            one(if args.len() > 1 {
                args.join(" ")
            } else {
                a.to_string()
            })
        }
        Kind::Match | Kind::Include => Ok(Vec::new()),
    }
}

/// sscanf("%d:%d:%d") as MaxStartups uses it: the integers read before the
/// first mismatch.
fn scan_ints(s: &str) -> Vec<i64> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        let t = rest.trim_start();
        let sign_len = usize::from(t.starts_with(['+', '-']));
        let digits = t[sign_len..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            break;
        }
        let Ok(v) = t[..sign_len + digits].parse::<i64>() else {
            break;
        };
        out.push(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)));
        rest = &t[sign_len + digits..];
        if out.len() == 3 {
            break;
        }
        match rest.strip_prefix(':') {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}
