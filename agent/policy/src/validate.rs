//! The validation phase: turns the raw node tree of a policy file into the validated `model` types, collecting every error.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use regex::{Regex, RegexBuilder};

use crate::model::{
    AccountsCheck, AccountsRequirement, CertificateCheck, Check, Comparison, FileCheck,
    FirewallCheck, ListenProto, ListeningCheck, Location, MissingSshd, PackageCheck, PatchesCheck,
    Policy, ProcessesCheck, RebootCheck, Rule, ServiceCheck, Severity, SshdCheck, SshdMatch,
    SysctlCheck,
};
use crate::raw::{Node, Pos, Value};
use crate::reader::{Diag, Fields, Reader, one_of, quote};

/// The compiled-program size limit for every regular expression in a policy,
/// so a hostile pattern cannot make compilation or matching expensive.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The check kinds, in the order the format documents them.
pub const CHECK_KINDS: &[&str] = &[
    "sysctl",
    "sshd_config",
    "file",
    "accounts",
    "package",
    "service",
    "listening",
    "firewall",
    "patches",
    "reboot",
    "processes",
    "certificate",
    "all",
    "any",
    "not",
    "file_exists",
    "package_installed",
];

const TOP_FIELDS: &[&str] = &["policy", "rules"];
const POLICY_FIELDS: &[&str] = &["id", "title", "version", "description"];
const RULE_FIELDS: &[&str] = &[
    "id",
    "title",
    "severity",
    "rationale",
    "remediation",
    "references",
    "when",
    "check",
];
const SCALAR_COMPARISONS: &[&str] = &["equals", "in", "not_in", "min", "max", "matches"];
const SYSCTL_FIELDS: &[&str] = &[
    "key",
    "equals",
    "in",
    "not_in",
    "min",
    "max",
    "matches",
    "persistent",
];
const SSHD_FIELDS: &[&str] = &[
    "key",
    "equals",
    "in",
    "not_in",
    "min",
    "max",
    "matches",
    "contains",
    "not_contains",
    "match",
    "if_not_installed",
];
const SSHD_COMPARISONS: &[&str] = &[
    "equals",
    "in",
    "not_in",
    "min",
    "max",
    "matches",
    "contains",
    "not_contains",
];
const SSHD_MATCH_FIELDS: &[&str] = &["user", "host", "addr", "laddr", "lport", "rdomain"];
const FILE_FIELDS: &[&str] = &[
    "path",
    "exists",
    "mode_max",
    "owner",
    "group",
    "contains",
    "not_contains",
];
const FILE_CONDITIONS: &[&str] = &[
    "exists",
    "mode_max",
    "owner",
    "group",
    "contains",
    "not_contains",
];
const ACCOUNTS_FIELDS: &[&str] = &["require", "allow", "min", "max"];
const ACCOUNTS_REQUIREMENTS: &[&str] = &[
    "no-empty-passwords",
    "unique-uid0",
    "no-duplicate-uids",
    "no-duplicate-names",
    "strong-password-hashes",
    "system-accounts-no-login",
    "password-max-days",
    "password-min-days",
    "inactive-lock-days",
    "shadow-passwords",
];
const PACKAGE_FIELDS: &[&str] = &["name", "installed", "min_version"];
const SERVICE_FIELDS: &[&str] = &["unit", "enabled", "active"];
const LISTENING_FIELDS: &[&str] = &["allowed", "include_loopback"];
const FIREWALL_FIELDS: &[&str] = &["input_default"];
const PATCHES_FIELDS: &[&str] = &["security_updates_pending"];
const REBOOT_FIELDS: &[&str] = &["required"];
const PROCESSES_FIELDS: &[&str] = &["deleted_files_mapped", "command"];
const CERTIFICATE_FIELDS: &[&str] = &[
    "path",
    "min_days_valid",
    "self_signed",
    "min_key_bits",
    "allow_weak_signatures",
];

/// True when `id` matches `[a-z0-9][a-z0-9._-]*`.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    match chars.next() {
        Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit() => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Compiles a policy regular expression under the size limit; the error is
/// one line.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|err| match err {
            regex::Error::CompiledTooBig(limit) => {
                format!("the pattern is too large (compiled size over {limit} bytes)")
            }
            regex::Error::Syntax(text) => {
                // The syntax error is a small diagram; its last `error:` line
                // is the reason.
                text.lines()
                    .rev()
                    .find_map(|line| line.trim().strip_prefix("error: "))
                    .map(str::to_string)
                    .unwrap_or_else(|| crate::raw::sanitize(&text))
            }
            other => crate::raw::sanitize(&other.to_string()),
        })
}

/// A validated policy with the position of its id, for duplicate checks
/// across files.
pub(crate) struct Validated {
    pub policy: Policy,
    pub id_location: Location,
}

/// Validates the raw tree of one policy file; `root` is `None` for an empty
/// file. Returns every problem found, sorted by position.
pub(crate) fn validate_policy(root: Option<&Node>, file: &Path) -> Result<Validated, Vec<Diag>> {
    let mut v = Validator {
        r: Reader::default(),
    };
    let result = v.policy_file(root, file);
    let mut diags = v.r.diags;
    match result {
        Some(validated) if diags.is_empty() => Ok(validated),
        _ => {
            if diags.is_empty() {
                // Every failure path records a diagnostic; this keeps the
                // contract "Err is never empty" even if one does not.
                diags.push(Diag {
                    pos: Pos::START,
                    message: "the policy is invalid".to_string(),
                });
            }
            diags.sort_by_key(|d| d.pos);
            Err(diags)
        }
    }
}

struct Validator {
    r: Reader,
}

fn location(file: &Path, pos: Pos) -> Location {
    Location {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
    }
}

impl Validator {
    fn policy_file(&mut self, root: Option<&Node>, file: &Path) -> Option<Validated> {
        let Some(root) = root else {
            self.r.error(
                Pos::START,
                "the policy file is empty; it needs `policy:` and `rules:`",
            );
            return None;
        };
        if root.as_map().is_none() {
            self.r.error(
                root.pos,
                format!(
                    "a policy file must be a mapping with `policy:` and `rules:`, found {}",
                    root.kind()
                ),
            );
            return None;
        }
        let top = self.r.fields(root, "the policy file", TOP_FIELDS)?;
        let header = self.r.required(&top, "policy", "the policy file");
        let rules_node = self.r.required(&top, "rules", "the policy file");

        let header = header.and_then(|h| self.header(h));
        let rules = rules_node.and_then(|n| self.rules(n, file));

        let (id, id_pos, title, version, description) = header?;
        let rules = rules?;
        Some(Validated {
            policy: Policy {
                id,
                title,
                version,
                description,
                rules,
                source: file.to_path_buf(),
            },
            id_location: location(file, id_pos),
        })
    }

    #[allow(clippy::type_complexity)]
    fn header(&mut self, node: &Node) -> Option<(String, Pos, String, String, Option<String>)> {
        let f = self.r.fields(node, "`policy`", POLICY_FIELDS)?;
        let id_node = self.r.required(&f, "id", "`policy`");
        let id = id_node.and_then(|n| self.id(n, "policy"));
        let title = self
            .r
            .required(&f, "title", "`policy`")
            .and_then(|n| self.r.nonempty_text(n, "title"));
        let version = self
            .r
            .required(&f, "version", "`policy`")
            .and_then(|n| self.r.nonempty_text(n, "version"));
        let description = self.optional_text(&f, "description");
        Some((id?, id_node?.pos, title?, version?, description))
    }

    /// An optional free-text field; null counts as absent.
    fn optional_text(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        let node = f.get(key)?;
        if node.value == Value::Null {
            return None;
        }
        self.r.text(node, key)
    }

    fn id(&mut self, node: &Node, what: &str) -> Option<String> {
        let text = self.r.text(node, "id")?;
        if is_valid_id(&text) {
            Some(text)
        } else {
            self.r.error(
                node.pos,
                format!(
                    "invalid {what} id `{}`: ids must match [a-z0-9][a-z0-9._-]*",
                    quote(&text)
                ),
            );
            None
        }
    }

    fn rules(&mut self, node: &Node, file: &Path) -> Option<Vec<Rule>> {
        let Some(items) = node.as_seq() else {
            self.r.error(
                node.pos,
                format!("`rules` must be a list of rules, found {}", node.kind()),
            );
            return None;
        };
        let mut rules = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut ok = true;
        for item in items {
            match self.rule(item, file, &mut seen) {
                Some(rule) => rules.push(rule),
                None => ok = false,
            }
        }
        ok.then_some(rules)
    }

    fn rule(&mut self, node: &Node, file: &Path, seen: &mut HashMap<String, Pos>) -> Option<Rule> {
        // Name the rule in messages when its id is readable and valid.
        let what = node
            .as_map()
            .and_then(|m| m.iter().find(|(k, _)| k.as_str() == Some("id")))
            .and_then(|(_, v)| v.scalar_text())
            .filter(|id| is_valid_id(id))
            .map(|id| format!("rule `{id}`"))
            .unwrap_or_else(|| "a rule".to_string());
        let what = what.as_str();
        let f = self.r.fields(node, what, RULE_FIELDS)?;
        let id_node = self.r.required(&f, "id", what);
        let mut id = id_node.and_then(|n| self.id(n, "rule"));
        if let (Some(rule_id), Some(id_node)) = (&id, id_node) {
            if let Some(first) = seen.get(rule_id) {
                self.r.error(
                    id_node.pos,
                    format!(
                        "duplicate rule id `{rule_id}` (first defined at line {})",
                        first.line
                    ),
                );
                id = None;
            } else {
                seen.insert(rule_id.clone(), id_node.pos);
            }
        }
        let title = self
            .r
            .required(&f, "title", what)
            .and_then(|n| self.r.nonempty_text(n, "title"));
        let severity = self
            .r
            .required(&f, "severity", what)
            .and_then(|n| self.severity(n));
        let rationale = self.optional_text(&f, "rationale");
        let remediation = self.optional_text(&f, "remediation");
        let references = match f.get("references") {
            Some(n) => self.references(n),
            None => Some(BTreeMap::new()),
        };
        let when = match f.get("when") {
            Some(n) => self.check(n).map(Some),
            None => Some(None),
        };
        let check = self
            .r
            .required(&f, "check", what)
            .and_then(|n| self.check(n));
        Some(Rule {
            id: id?,
            title: title?,
            severity: severity?,
            rationale,
            remediation,
            references: references?,
            when: when?,
            check: check?,
            location: location(file, node.pos),
        })
    }

    fn severity(&mut self, node: &Node) -> Option<Severity> {
        let text = self.r.text(node, "severity")?;
        match text.parse::<Severity>() {
            Ok(severity) => Some(severity),
            Err(_) => {
                self.r.error(
                    node.pos,
                    format!(
                        "unknown severity `{}`; expected one of: critical, high, medium, low",
                        quote(&text)
                    ),
                );
                None
            }
        }
    }

    fn references(&mut self, node: &Node) -> Option<BTreeMap<String, String>> {
        let Some(entries) = node.as_map() else {
            self.r.error(
                node.pos,
                format!("`references` must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut out = BTreeMap::new();
        let mut ok = true;
        for (key, value) in entries {
            let k = key.scalar_text();
            let v = value.scalar_text();
            match (k, v) {
                (Some(k), Some(v)) => {
                    out.insert(k, v);
                }
                (None, _) => {
                    self.r.error(
                        key.pos,
                        format!("keys of `references` must be strings, found {}", key.kind()),
                    );
                    ok = false;
                }
                (_, None) => {
                    self.r.error(
                        value.pos,
                        format!(
                            "values of `references` must be strings, found {}",
                            value.kind()
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    /// A check (or a `when:` condition): a mapping with exactly one kind.
    fn check(&mut self, node: &Node) -> Option<Check> {
        let Some(entries) = node.as_map() else {
            self.r.error(
                node.pos,
                format!(
                    "a check must be a mapping with one of: {}; found {}",
                    one_of(CHECK_KINDS),
                    node.kind()
                ),
            );
            return None;
        };
        let mut kinds: Vec<(&str, &Node, &Node)> = Vec::new();
        let mut unknown = false;
        for (key, value) in entries {
            let name = key.as_str().unwrap_or("");
            if CHECK_KINDS.contains(&name) {
                kinds.push((name, key, value));
            } else {
                unknown = true;
                let shown = key.scalar_text().unwrap_or_else(|| key.kind().to_string());
                self.r.error(
                    key.pos,
                    format!(
                        "unknown check kind `{}`; expected one of: {}",
                        quote(&shown),
                        one_of(CHECK_KINDS)
                    ),
                );
            }
        }
        let Some(&(first, _, first_value)) = kinds.first() else {
            if !unknown {
                self.r.error(
                    node.pos,
                    format!("a check needs one of: {}", one_of(CHECK_KINDS)),
                );
            }
            return None;
        };
        for &(name, key, _) in kinds.iter().skip(1) {
            self.r.error(
                key.pos,
                format!("a check must have exactly one kind, found `{first}` and `{name}`"),
            );
        }
        // Every kind's body is still checked so its errors are reported too.
        for &(name, _, value) in kinds.iter().skip(1) {
            let _ = self.kind(name, value);
        }
        let check = self.kind(first, first_value);
        if kinds.len() > 1 || unknown {
            return None;
        }
        check
    }

    fn kind(&mut self, kind: &str, node: &Node) -> Option<Check> {
        match kind {
            "sysctl" => self.sysctl(node).map(Check::Sysctl),
            "sshd_config" => self.sshd(node).map(Check::SshdConfig),
            "file" => self.file(node).map(Check::File),
            "accounts" => self.accounts(node).map(Check::Accounts),
            "package" => self.package(node).map(Check::Package),
            "service" => self.service(node).map(Check::Service),
            "listening" => self.listening(node).map(Check::Listening),
            "firewall" => self.firewall(node).map(Check::Firewall),
            "patches" => self.patches(node).map(Check::Patches),
            "reboot" => self.reboot(node).map(Check::Reboot),
            "processes" => self.processes(node).map(Check::Processes),
            "certificate" => self.certificate(node).map(Check::Certificate),
            "all" => self.check_list(node, "all").map(Check::All),
            "any" => self.check_list(node, "any").map(Check::Any),
            "not" => self.check(node).map(|c| Check::Not(Box::new(c))),
            "file_exists" => self.path(node, "file_exists").map(Check::FileExists),
            "package_installed" => self
                .r
                .nonempty_text(node, "package_installed")
                .map(Check::PackageInstalled),
            _ => None,
        }
    }

    fn check_list(&mut self, node: &Node, kind: &str) -> Option<Vec<Check>> {
        let Some(items) = node.as_seq() else {
            self.r.error(
                node.pos,
                format!("`{kind}` must be a list of checks, found {}", node.kind()),
            );
            return None;
        };
        if items.is_empty() {
            self.r
                .error(node.pos, format!("`{kind}` needs at least one check"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.check(item) {
                Some(check) => out.push(check),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// An absolute path below the scanned root.
    fn path(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.r.nonempty_text(node, key)?;
        if !text.starts_with('/') {
            self.r.error(
                node.pos,
                format!("`{key}` must be an absolute path, found `{}`", quote(&text)),
            );
            return None;
        }
        if text.split('/').any(|part| part == "..") {
            self.r
                .error(node.pos, format!("`{key}` must not contain `..`"));
            return None;
        }
        if text.contains('\0') {
            self.r
                .error(node.pos, format!("`{key}` must not contain a NUL byte"));
            return None;
        }
        Some(text)
    }

    /// Reads the comparisons present in `f`. `names` are the comparisons
    /// this kind accepts; at least one must be present.
    fn comparison(&mut self, f: &Fields<'_>, kind: &str, names: &[&str]) -> Option<Comparison> {
        let mut c = Comparison::default();
        let mut ok = true;
        if let Some(n) = f.get("equals") {
            match n.scalar_text() {
                Some(text) => c.equals = Some(text),
                None => {
                    self.r.error(
                        n.pos,
                        format!(
                            "`equals` must be a string, number or boolean, found {}",
                            n.kind()
                        ),
                    );
                    ok = false;
                }
            }
        }
        for key in ["in", "not_in"] {
            if let Some(n) = f.get(key) {
                match self.r.list(n, key) {
                    Some(list) if key == "in" => c.in_ = Some(list),
                    Some(list) => c.not_in = Some(list),
                    None => ok = false,
                }
            }
        }
        if let Some(n) = f.get("min") {
            c.min = self.r.number(n, "min");
            ok &= c.min.is_some();
        }
        if let Some(n) = f.get("max") {
            c.max = self.r.number(n, "max");
            ok &= c.max.is_some();
        }
        if let (Some(min), Some(max), Some(n)) = (c.min, c.max, f.get("min"))
            && min > max
        {
            self.r.error(n.pos, "`min` is greater than `max`");
            ok = false;
        }
        if let Some(n) = f.get("matches") {
            c.matches = self.regex(n, "matches");
            ok &= c.matches.is_some();
        }
        for key in ["contains", "not_contains"] {
            if let Some(n) = f.get(key) {
                match self.r.one_or_many(n, key) {
                    Some(list) if key == "contains" => c.contains = Some(list),
                    Some(list) => c.not_contains = Some(list),
                    None => ok = false,
                }
            }
        }
        if !names.iter().any(|name| f.has(name)) {
            self.r.error(
                f.node.pos,
                format!(
                    "`{kind}` check needs at least one comparison: {}",
                    one_of(names)
                ),
            );
            ok = false;
        }
        ok.then_some(c)
    }

    fn regex(&mut self, node: &Node, key: &str) -> Option<Regex> {
        let Some(pattern) = node.as_str() else {
            self.r.error(
                node.pos,
                format!(
                    "`{key}` must be a regular expression (a string), found {}",
                    node.kind()
                ),
            );
            return None;
        };
        match compile_regex(pattern) {
            Ok(re) => Some(re),
            Err(reason) => {
                self.r.error(
                    node.pos,
                    format!("invalid regular expression in `{key}`: {}", quote(&reason)),
                );
                None
            }
        }
    }

    fn sysctl(&mut self, node: &Node) -> Option<SysctlCheck> {
        let f = self.r.fields(node, "`sysctl` check", SYSCTL_FIELDS)?;
        let key = self
            .r
            .required(&f, "key", "`sysctl` check")
            .and_then(|n| self.sysctl_key(n));
        let compare = self.comparison(&f, "sysctl", SCALAR_COMPARISONS);
        let persistent = match f.get("persistent") {
            Some(n) => self.r.boolean(n, "persistent"),
            None => Some(false),
        };
        Some(SysctlCheck {
            key: key?,
            compare: compare?,
            persistent: persistent?,
        })
    }

    fn sysctl_key(&mut self, node: &Node) -> Option<String> {
        let key = self.r.nonempty_text(node, "key")?;
        let bad = key.starts_with(['.', '/'])
            || key.ends_with('.')
            || key.contains("..")
            || key.chars().any(|c| c.is_whitespace() || c.is_control());
        if bad {
            self.r.error(
                node.pos,
                format!(
                    "invalid sysctl key `{}`: expected a dotted name like net.ipv4.ip_forward",
                    quote(&key)
                ),
            );
            return None;
        }
        Some(key)
    }

    fn sshd(&mut self, node: &Node) -> Option<SshdCheck> {
        let f = self.r.fields(node, "`sshd_config` check", SSHD_FIELDS)?;
        let keyword = self
            .r
            .required(&f, "key", "`sshd_config` check")
            .and_then(|n| {
                let key = self.r.nonempty_text(n, "key")?;
                if key.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Some(key)
                } else {
                    self.r.error(
                        n.pos,
                        format!(
                            "invalid sshd_config keyword `{}`: keywords are letters and digits",
                            quote(&key)
                        ),
                    );
                    None
                }
            });
        let compare = self.comparison(&f, "sshd_config", SSHD_COMPARISONS);
        let connection = match f.get("match") {
            Some(n) => self.sshd_match(n).map(Some),
            None => Some(None),
        };
        let if_not_installed = match f.get("if_not_installed") {
            Some(n) => self.r.text(n, "if_not_installed").and_then(|text| {
                match text.as_str() {
                    "not_applicable" => Some(MissingSshd::NotApplicable),
                    "pass" => Some(MissingSshd::Pass),
                    "fail" => Some(MissingSshd::Fail),
                    _ => {
                        self.r.error(
                            n.pos,
                            format!(
                                "unknown `if_not_installed` value `{}`; expected one of: not_applicable, pass, fail",
                                quote(&text)
                            ),
                        );
                        None
                    }
                }
            }),
            None => Some(MissingSshd::NotApplicable),
        };
        Some(SshdCheck {
            keyword: keyword?,
            compare: compare?,
            connection: connection?,
            if_not_installed: if_not_installed?,
        })
    }

    fn sshd_match(&mut self, node: &Node) -> Option<SshdMatch> {
        let f = self.r.fields(node, "`match`", SSHD_MATCH_FIELDS)?;
        let mut m = SshdMatch::default();
        let mut ok = true;
        for (name, _, value) in f.entries() {
            if *name == "lport" {
                match self.r.integer(value, "lport") {
                    Some(port) => match u16::try_from(port) {
                        Ok(port) if port > 0 => m.lport = Some(port),
                        _ => {
                            self.r
                                .error(value.pos, "`lport` must be a port between 1 and 65535");
                            ok = false;
                        }
                    },
                    None => ok = false,
                }
                continue;
            }
            let Some(text) = self.r.nonempty_text(value, name) else {
                ok = false;
                continue;
            };
            if text.contains([',', '=']) || text.chars().any(char::is_whitespace) {
                self.r.error(
                    value.pos,
                    format!("`{name}` must be a single value without spaces, `,` or `=`"),
                );
                ok = false;
                continue;
            }
            match *name {
                "user" => m.user = Some(text),
                "host" => m.host = Some(text),
                "addr" => m.addr = Some(text),
                "laddr" => m.laddr = Some(text),
                "rdomain" => m.rdomain = Some(text),
                _ => {}
            }
        }
        if f.entries().is_empty() {
            self.r.error(
                node.pos,
                format!(
                    "`match` needs at least one of: {}",
                    one_of(SSHD_MATCH_FIELDS)
                ),
            );
            ok = false;
        }
        ok.then_some(m)
    }

    fn file(&mut self, node: &Node) -> Option<FileCheck> {
        let f = self.r.fields(node, "`file` check", FILE_FIELDS)?;
        let mut ok = true;
        let path = self
            .r
            .required(&f, "path", "`file` check")
            .and_then(|n| self.path(n, "path"));
        let mut check = FileCheck::default();
        if let Some(n) = f.get("exists") {
            check.exists = self.r.boolean(n, "exists");
            ok &= check.exists.is_some();
        }
        if let Some(n) = f.get("mode_max") {
            check.mode_max = self.mode(n);
            ok &= check.mode_max.is_some();
        }
        if let Some(n) = f.get("owner") {
            check.owner = self.r.one_or_many(n, "owner");
            ok &= check.owner.is_some();
        }
        if let Some(n) = f.get("group") {
            check.group = self.r.one_or_many(n, "group");
            ok &= check.group.is_some();
        }
        if let Some(n) = f.get("contains") {
            check.contains = self.regex(n, "contains");
            ok &= check.contains.is_some();
        }
        if let Some(n) = f.get("not_contains") {
            check.not_contains = self.regex(n, "not_contains");
            ok &= check.not_contains.is_some();
        }
        if !FILE_CONDITIONS.iter().any(|name| f.has(name)) {
            self.r.error(
                node.pos,
                format!(
                    "`file` check needs at least one condition: {}",
                    one_of(FILE_CONDITIONS)
                ),
            );
            ok = false;
        } else if check.exists == Some(false)
            && let Some(other) = FILE_CONDITIONS[1..].iter().find(|name| f.has(name))
            && let Some(key) = f.key(other)
        {
            self.r.error(
                key.pos,
                format!("`{other}` cannot be checked on a file that must not exist"),
            );
            ok = false;
        }
        check.path = path?;
        ok.then_some(check)
    }

    /// An octal permission mask: `"0640"`, `"640"`, `0o640`.
    fn mode(&mut self, node: &Node) -> Option<u32> {
        let text = match &node.value {
            Value::Str(_) | Value::Int(_) => node.scalar_text().unwrap_or_default(),
            _ => {
                self.r.error(
                    node.pos,
                    format!(
                        "`mode_max` must be an octal mode like \"0640\", found {}",
                        node.kind()
                    ),
                );
                return None;
            }
        };
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            self.r.error(node.pos, "`mode_max` must not be negative");
            return None;
        }
        let digits = trimmed.strip_prefix("0o").unwrap_or(trimmed);
        let valid = !digits.is_empty()
            && digits.len() <= 5
            && digits.chars().all(|c| ('0'..='7').contains(&c));
        match u32::from_str_radix(digits, 8) {
            Ok(mode) if valid && mode <= 0o7777 => Some(mode),
            _ => {
                self.r.error(
                    node.pos,
                    format!(
                        "`mode_max` must be an octal mode like \"0640\", found `{}`",
                        quote(&text)
                    ),
                );
                None
            }
        }
    }

    fn accounts(&mut self, node: &Node) -> Option<AccountsCheck> {
        let f = self.r.fields(node, "`accounts` check", ACCOUNTS_FIELDS)?;
        let mut ok = true;
        let require = self
            .r
            .required(&f, "require", "`accounts` check")
            .and_then(|n| {
                let text = self.r.text(n, "require")?;
                let found = match text.as_str() {
                    "no-empty-passwords" => Some(AccountsRequirement::NoEmptyPasswords),
                    "unique-uid0" => Some(AccountsRequirement::UniqueUid0),
                    "no-duplicate-uids" => Some(AccountsRequirement::NoDuplicateUids),
                    "no-duplicate-names" => Some(AccountsRequirement::NoDuplicateNames),
                    "strong-password-hashes" => Some(AccountsRequirement::StrongPasswordHashes),
                    "system-accounts-no-login" => Some(AccountsRequirement::SystemAccountsNoLogin),
                    "password-max-days" => Some(AccountsRequirement::PasswordMaxDays),
                    "password-min-days" => Some(AccountsRequirement::PasswordMinDays),
                    "inactive-lock-days" => Some(AccountsRequirement::InactiveLockDays),
                    "shadow-passwords" => Some(AccountsRequirement::ShadowPasswords),
                    _ => None,
                };
                if found.is_none() {
                    self.r.error(
                        n.pos,
                        format!(
                            "unknown accounts requirement `{}`; expected one of: {}",
                            quote(&text),
                            one_of(ACCOUNTS_REQUIREMENTS)
                        ),
                    );
                }
                found.map(|r| (r, text))
            });
        let days = |key: &str, this: &mut Self| -> Option<Option<i64>> {
            let Some(n) = f.get(key) else {
                return Some(None);
            };
            let value = this.r.integer(n, key)?;
            if value < 0 {
                this.r.error(n.pos, format!("`{key}` must not be negative"));
                return None;
            }
            Some(Some(value))
        };
        let min = days("min", self);
        let max = days("max", self);
        ok &= min.is_some() && max.is_some();
        let allow = match f.get("allow") {
            Some(n) => self.r.one_or_many(n, "allow"),
            None => Some(vec!["root".to_string()]),
        };
        ok &= allow.is_some();

        let (require, name) = require?;
        // Which of `allow`, `min`, `max` each requirement uses.
        let (uses_allow, uses_min, uses_max) = match require {
            AccountsRequirement::UniqueUid0 => (true, false, false),
            AccountsRequirement::PasswordMaxDays | AccountsRequirement::InactiveLockDays => {
                (false, false, true)
            }
            AccountsRequirement::PasswordMinDays => (false, true, false),
            _ => (false, false, false),
        };
        for (key, used) in [("allow", uses_allow), ("min", uses_min), ("max", uses_max)] {
            if let Some(k) = f.key(key) {
                if !used {
                    self.r.error(
                        k.pos,
                        format!("`{key}` does not apply to `require: {name}`"),
                    );
                    ok = false;
                }
            } else if used && key != "allow" {
                self.r
                    .error(node.pos, format!("`require: {name}` needs `{key}`"));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        Some(AccountsCheck {
            require,
            allow: allow?,
            min: min?,
            max: max?,
        })
    }

    fn package(&mut self, node: &Node) -> Option<PackageCheck> {
        let f = self.r.fields(node, "`package` check", PACKAGE_FIELDS)?;
        let name = self
            .r
            .required(&f, "name", "`package` check")
            .and_then(|n| self.r.nonempty_text(n, "name"));
        let installed = self
            .r
            .required(&f, "installed", "`package` check")
            .and_then(|n| self.r.boolean(n, "installed"));
        let min_version = match f.get("min_version") {
            Some(n) => {
                let v = self.r.nonempty_text(n, "min_version");
                if installed == Some(false) {
                    self.r.error(n.pos, "`min_version` needs `installed: true`");
                    return None;
                }
                Some(v?)
            }
            None => None,
        };
        Some(PackageCheck {
            name: name?,
            installed: installed?,
            min_version,
        })
    }

    fn service(&mut self, node: &Node) -> Option<ServiceCheck> {
        let f = self.r.fields(node, "`service` check", SERVICE_FIELDS)?;
        let unit = self
            .r
            .required(&f, "unit", "`service` check")
            .and_then(|n| {
                let unit = self.r.nonempty_text(n, "unit")?;
                if unit.contains('/') || unit.starts_with('.') {
                    self.r
                        .error(n.pos, format!("invalid unit name `{}`", quote(&unit)));
                    return None;
                }
                Some(unit)
            });
        let mut ok = true;
        let mut flag = |key: &str, this: &mut Self| match f.get(key) {
            Some(n) => {
                let value = this.r.boolean(n, key);
                ok &= value.is_some();
                value
            }
            None => None,
        };
        let enabled = flag("enabled", self);
        let active = flag("active", self);
        if !f.has("enabled") && !f.has("active") {
            self.r
                .error(node.pos, "`service` check needs `enabled` or `active`");
            ok = false;
        }
        let unit = unit?;
        ok.then_some(ServiceCheck {
            unit,
            enabled,
            active,
        })
    }

    fn listening(&mut self, node: &Node) -> Option<ListeningCheck> {
        let f = self.r.fields(node, "`listening` check", LISTENING_FIELDS)?;
        let allowed = self
            .r
            .required(&f, "allowed", "`listening` check")
            .and_then(|n| self.ports(n));
        let include_loopback = match f.get("include_loopback") {
            Some(n) => self.r.boolean(n, "include_loopback"),
            None => Some(false),
        };
        Some(ListeningCheck {
            allowed: allowed?,
            include_loopback: include_loopback?,
        })
    }

    fn ports(&mut self, node: &Node) -> Option<Vec<(u16, ListenProto)>> {
        let Some(items) = node.as_seq() else {
            self.r.error(
                node.pos,
                format!(
                    "`allowed` must be a list like [\"22/tcp\"], found {}",
                    node.kind()
                ),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            let text = item.scalar_text().unwrap_or_default();
            let parsed = text.split_once('/').and_then(|(port, proto)| {
                let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
                let proto = match proto {
                    "tcp" => ListenProto::Tcp,
                    "udp" => ListenProto::Udp,
                    _ => return None,
                };
                Some((port, proto))
            });
            match parsed {
                Some(entry) => out.push(entry),
                None => {
                    self.r.error(
                        item.pos,
                        format!(
                            "invalid `allowed` entry `{}`: expected PORT/tcp or PORT/udp with PORT 1-65535",
                            quote(&text)
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn firewall(&mut self, node: &Node) -> Option<FirewallCheck> {
        let f = self.r.fields(node, "`firewall` check", FIREWALL_FIELDS)?;
        let n = self.r.required(&f, "input_default", "`firewall` check")?;
        let text = self.r.text(n, "input_default")?;
        match text.as_str() {
            "drop" | "reject" => Some(FirewallCheck {
                input_default: text,
            }),
            _ => {
                self.r.error(
                    n.pos,
                    format!(
                        "unknown `input_default` value `{}`; expected drop (or reject)",
                        quote(&text)
                    ),
                );
                None
            }
        }
    }

    /// A count or size that must be a non-negative integer no larger than `max`.
    fn bounded(&mut self, node: &Node, key: &str, max: i64) -> Option<i64> {
        let value = self.r.integer(node, key)?;
        if !(0..=max).contains(&value) {
            self.r.error(
                node.pos,
                format!("`{key}` must be between 0 and {max}, found {value}"),
            );
            return None;
        }
        Some(value)
    }

    fn patches(&mut self, node: &Node) -> Option<PatchesCheck> {
        let f = self.r.fields(node, "`patches` check", PATCHES_FIELDS)?;
        let n = self
            .r
            .required(&f, "security_updates_pending", "`patches` check")?;
        let max = self.bounded(n, "security_updates_pending", i64::from(u32::MAX))?;
        Some(PatchesCheck {
            security_updates_pending: u32::try_from(max).unwrap_or(u32::MAX),
        })
    }

    fn reboot(&mut self, node: &Node) -> Option<RebootCheck> {
        let f = self.r.fields(node, "`reboot` check", REBOOT_FIELDS)?;
        let n = self.r.required(&f, "required", "`reboot` check")?;
        let required = self.r.boolean(n, "required")?;
        Some(RebootCheck { required })
    }

    fn processes(&mut self, node: &Node) -> Option<ProcessesCheck> {
        let f = self.r.fields(node, "`processes` check", PROCESSES_FIELDS)?;
        let mapped = self
            .r
            .required(&f, "deleted_files_mapped", "`processes` check")
            .and_then(|n| self.r.boolean(n, "deleted_files_mapped"));
        let commands = match f.get("command") {
            Some(n) => self.r.one_or_many(n, "command").and_then(|list| {
                // The kernel keeps at most 15 bytes of a command name.
                if let Some(bad) = list
                    .iter()
                    .find(|c| c.is_empty() || c.len() > 15 || c.contains('/'))
                {
                    self.r.error(
                        n.pos,
                        format!(
                            "invalid `command` `{}`: a command name (as in /proc/PID/comm) is 1 to 15 bytes without `/`",
                            quote(bad)
                        ),
                    );
                    return None;
                }
                Some(list)
            }),
            None => Some(Vec::new()),
        };
        Some(ProcessesCheck {
            deleted_files_mapped: mapped?,
            commands: commands?,
        })
    }

    fn certificate(&mut self, node: &Node) -> Option<CertificateCheck> {
        let f = self
            .r
            .fields(node, "`certificate` check", CERTIFICATE_FIELDS)?;
        let mut ok = true;
        let path = self
            .r
            .required(&f, "path", "`certificate` check")
            .and_then(|n| self.path(n, "path"));
        let mut check = CertificateCheck::default();
        if let Some(n) = f.get("min_days_valid") {
            check.min_days_valid = self.bounded(n, "min_days_valid", 36_500);
            ok &= check.min_days_valid.is_some();
        }
        if let Some(n) = f.get("self_signed") {
            check.self_signed = self.r.boolean(n, "self_signed");
            ok &= check.self_signed.is_some();
        }
        if let Some(n) = f.get("min_key_bits") {
            check.min_key_bits = self
                .bounded(n, "min_key_bits", 65_536)
                .and_then(|b| u32::try_from(b).ok());
            ok &= check.min_key_bits.is_some();
        }
        if let Some(n) = f.get("allow_weak_signatures") {
            match self.r.boolean(n, "allow_weak_signatures") {
                Some(b) => check.allow_weak_signatures = b,
                None => ok = false,
            }
        }
        check.path = path?;
        ok.then_some(check)
    }
}
