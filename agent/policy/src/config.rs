//! The agent's configuration file (`/etc/hardend/hardend.yaml`): its keys, their defaults, and parsing with every error reported at once.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::load::{ReadFailure, read_text};
use crate::model::{Location, Severity};
use crate::raw::{self, MAX_INPUT_BYTES, Node, Pos, Value};
use crate::reader::{Diag, Fields, Reader, quote};
use crate::validate::is_valid_id;

pub use crate::model::Waiver;

/// Where the agent looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hardend/hardend.yaml";

const TOP_FIELDS: &[&str] = &[
    "root",
    "policies",
    "state_dir",
    "socket",
    "journald",
    "watch",
    "deadlines",
    "collector",
    "waivers",
    "metrics",
];
const WATCH_FIELDS: &[&str] = &["debounce_ms", "poll_interval", "full_rescan_interval"];
const DEADLINE_FIELDS: &[&str] = &["critical", "high", "medium", "low"];
const COLLECTOR_FIELDS: &[&str] = &["url", "ca", "cert", "key", "outbox_max_drift_events"];

/// How many drift events the outbox keeps queued by default; past it the
/// oldest are folded into the next snapshot (and the log says so).
pub const DEFAULT_OUTBOX_MAX_DRIFT_EVENTS: usize = 100_000;
/// The most an operator may ask for (each event is a few hundred bytes on disk).
const MAX_OUTBOX_DRIFT_EVENTS: i64 = 10_000_000;
const WAIVER_FIELDS: &[&str] = &["rule", "reason", "expires"];
const METRICS_FIELDS: &[&str] = &["listen"];

/// Where the agent serves Prometheus metrics when `metrics:` is present
/// without a `listen` address.
pub const DEFAULT_AGENT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 9273);

/// The agent's whole configuration. `AgentConfig::default()` is what the
/// agent uses when there is no file.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    /// The root directory that is scanned (`--root`).
    pub root: PathBuf,
    /// Policy files and directories, loaded in this order.
    pub policies: Vec<PathBuf>,
    /// Last results, first-failed times and the outbox.
    pub state_dir: PathBuf,
    /// The local API's Unix socket.
    pub socket: PathBuf,
    pub journald: JournaldMode,
    pub watch: WatchConfig,
    pub deadlines: Deadlines,
    /// Where results are pushed; `None` means no push.
    pub collector: Option<CollectorConfig>,
    pub waivers: Vec<Waiver>,
    /// The Prometheus endpoint; `None` (the default) serves none.
    pub metrics: Option<MetricsConfig>,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            root: PathBuf::from("/"),
            policies: vec![
                PathBuf::from("/etc/hardend/policies.d"),
                PathBuf::from("/usr/share/hardend/policies"),
            ],
            state_dir: PathBuf::from("/var/lib/hardend"),
            socket: PathBuf::from("/run/hardend/hardend.sock"),
            journald: JournaldMode::Auto,
            watch: WatchConfig::default(),
            deadlines: Deadlines::default(),
            collector: None,
            waivers: Vec::new(),
            metrics: None,
        }
    }
}

/// Where alerts go: the journal when its socket exists (`Auto`), always the
/// journal (`On`), or stderr (`Off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JournaldMode {
    #[default]
    Auto,
    On,
    Off,
}

/// Timing of the drift watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchConfig {
    /// How long to wait after a change for more changes (`debounce_ms`).
    pub debounce: Duration,
    /// Backstop polling of what inotify cannot see (/proc/sys, sockets, firewall).
    pub poll_interval: Duration,
    /// A complete re-evaluation, whatever was seen.
    pub full_rescan_interval: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            debounce: Duration::from_millis(50),
            poll_interval: Duration::from_secs(5),
            full_rescan_interval: Duration::from_secs(3600),
        }
    }
}

/// How long a rule of each severity may fail before it is overdue; `None`
/// means no deadline (the next maintenance window).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlines {
    pub critical: Option<Duration>,
    pub high: Option<Duration>,
    pub medium: Option<Duration>,
    pub low: Option<Duration>,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            critical: Some(Duration::from_secs(4 * 3600)),
            high: Some(Duration::from_secs(24 * 3600)),
            medium: Some(Duration::from_secs(72 * 3600)),
            low: None,
        }
    }
}

impl Deadlines {
    /// The deadline of a severity, if it has one.
    pub fn deadline(&self, severity: Severity) -> Option<Duration> {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// The collector the agent pushes to, over mTLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorConfig {
    /// `https://host:port`.
    pub url: String,
    /// The CA that signed the collector's certificate.
    pub ca: PathBuf,
    /// The agent's own certificate and key.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Past this many queued drift events (`outbox_max_drift_events`) the
    /// oldest are folded into the next snapshot.
    pub outbox_max_drift_events: usize,
}

/// The Prometheus endpoint (`GET /metrics`, plain HTTP without
/// authentication), of the agent or of the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// The TCP address served; loopback unless written otherwise, and port
    /// 0 picks a free port (the log says which).
    pub listen: SocketAddr,
}

/// Parses a metrics `listen` value such as `127.0.0.1:9273` or `[::1]:9273`.
pub fn parse_metrics_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>().map_err(|_| {
        format!(
            "`listen` must be an IP address and port such as 127.0.0.1:9273, not `{}`",
            quote(text)
        )
    })
}

/// One problem with the configuration file. `Display` is exactly
/// `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The text is not YAML this parser accepts.
    #[error("{location}: {message}")]
    Syntax { location: Location, message: String },
    /// A key or value is wrong.
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    /// The file could not be read.
    #[error("{location}: cannot read: {reason}")]
    Read { location: Location, reason: String },
    /// The file is larger than any configuration may be; it was not parsed.
    #[error("{location}: the file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        location: Location,
        size: u64,
        limit: u64,
    },
}

impl ConfigError {
    /// Where the problem is.
    pub fn location(&self) -> &Location {
        match self {
            ConfigError::Syntax { location, .. }
            | ConfigError::Invalid { location, .. }
            | ConfigError::Read { location, .. }
            | ConfigError::TooLarge { location, .. } => location,
        }
    }

    /// The message without the location prefix.
    pub fn message(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", self.location());
        match full.strip_prefix(&prefix) {
            Some(rest) => rest.to_string(),
            None => full,
        }
    }
}

fn location(file: &Path, pos: Pos) -> Location {
    Location {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
    }
}

/// Parses a duration such as `50ms`, `5s`, `10m`, `1h`, `2d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration `{}`: expected e.g. 50ms, 5s, 10m, 1h, 2d",
            quote(text)
        )
    };
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        let millis = amount.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(bad)?;
    }
    Ok(total)
}

/// Parses the configuration file's text. Keys that are absent keep their
/// defaults; every problem is returned, sorted by position.
pub fn parse_config(source: &str, file: &Path) -> Result<AgentConfig, Vec<ConfigError>> {
    if source.len() > MAX_INPUT_BYTES {
        return Err(vec![ConfigError::TooLarge {
            location: location(file, Pos::START),
            size: source.len() as u64,
            limit: MAX_INPUT_BYTES as u64,
        }]);
    }
    let root = raw::parse(source).map_err(|err| {
        vec![ConfigError::Syntax {
            location: location(file, err.pos),
            message: err.message,
        }]
    })?;
    let mut c = ConfigReader {
        r: Reader::default(),
        file,
    };
    let config = match &root {
        Some(node) => c.config(node),
        None => AgentConfig::default(),
    };
    let mut diags = c.r.diags;
    if diags.is_empty() {
        return Ok(config);
    }
    diags.sort_by_key(|d| d.pos);
    Err(diags
        .into_iter()
        .map(|Diag { pos, message }| ConfigError::Invalid {
            location: location(file, pos),
            message: raw::sanitize(&message),
        })
        .collect())
}

/// Reads and parses the configuration file; a missing file is an error.
pub fn load_config(path: &Path) -> Result<AgentConfig, Vec<ConfigError>> {
    let at = location(path, Pos::START);
    match read_text(path) {
        Ok(text) => parse_config(&text, path),
        Err(ReadFailure::TooLarge(size)) => Err(vec![ConfigError::TooLarge {
            location: at,
            size,
            limit: MAX_INPUT_BYTES as u64,
        }]),
        Err(ReadFailure::NotUtf8) => Err(vec![ConfigError::Read {
            location: at,
            reason: "the file is not valid UTF-8".to_string(),
        }]),
        Err(ReadFailure::Io(err)) => Err(vec![ConfigError::Read {
            location: at,
            reason: err.to_string(),
        }]),
    }
}

/// Like [`load_config`], but a file that does not exist gives the defaults
/// (the agent runs with no configuration file at all).
pub fn load_config_or_default(path: &Path) -> Result<AgentConfig, Vec<ConfigError>> {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(AgentConfig::default()),
        _ => load_config(path),
    }
}

struct ConfigReader<'a> {
    r: Reader,
    file: &'a Path,
}

impl ConfigReader<'_> {
    fn config(&mut self, node: &Node) -> AgentConfig {
        let mut config = AgentConfig::default();
        let Some(f) = self.r.fields(node, "the configuration", TOP_FIELDS) else {
            return config;
        };
        if let Some(path) = self.present(&f, "root").and_then(|n| self.path(n, "root")) {
            config.root = path;
        }
        if let Some(n) = self.present(&f, "policies")
            && let Some(list) = self.r.one_or_many(n, "policies")
        {
            let paths: Vec<PathBuf> = list
                .iter()
                .filter_map(|p| self.absolute(n, "policies", p))
                .collect();
            if paths.len() == list.len() {
                config.policies = paths;
            }
        }
        if let Some(path) = self
            .present(&f, "state_dir")
            .and_then(|n| self.path(n, "state_dir"))
        {
            config.state_dir = path;
        }
        if let Some(path) = self
            .present(&f, "socket")
            .and_then(|n| self.path(n, "socket"))
        {
            config.socket = path;
        }
        if let Some(mode) = self.present(&f, "journald").and_then(|n| self.journald(n)) {
            config.journald = mode;
        }
        if let Some(n) = self.present(&f, "watch") {
            self.watch(n, &mut config.watch);
        }
        if let Some(n) = self.present(&f, "deadlines") {
            self.deadlines(n, &mut config.deadlines);
        }
        if let Some(n) = self.present(&f, "collector") {
            config.collector = self.collector(n);
        }
        if let Some(n) = self.present(&f, "waivers") {
            config.waivers = self.waivers(n);
        }
        if let Some(n) = self.present(&f, "metrics") {
            config.metrics = self.metrics(n);
        }
        config
    }

    fn metrics(&mut self, node: &Node) -> Option<MetricsConfig> {
        let f = self.r.fields(node, "`metrics`", METRICS_FIELDS)?;
        let mut metrics = MetricsConfig {
            listen: DEFAULT_AGENT_METRICS_LISTEN,
        };
        if let Some(n) = self.present(&f, "listen") {
            let text = self.r.nonempty_text(n, "listen")?;
            match parse_metrics_listen(&text) {
                Ok(addr) => metrics.listen = addr,
                Err(message) => {
                    self.r.error(n.pos, message);
                    return None;
                }
            }
        }
        Some(metrics)
    }

    /// The value of a key when it is present and not null (null keeps the default).
    fn present<'n>(&self, f: &Fields<'n>, key: &str) -> Option<&'n Node> {
        f.get(key).filter(|n| n.value != Value::Null)
    }

    fn path(&mut self, node: &Node, key: &str) -> Option<PathBuf> {
        let text = self.r.nonempty_text(node, key)?;
        self.absolute(node, key, &text)
    }

    fn absolute(&mut self, node: &Node, key: &str, text: &str) -> Option<PathBuf> {
        if text.starts_with('/') && !text.contains('\0') {
            Some(PathBuf::from(text))
        } else {
            self.r.error(
                node.pos,
                format!("`{key}` must be an absolute path, found `{}`", quote(text)),
            );
            None
        }
    }

    fn journald(&mut self, node: &Node) -> Option<JournaldMode> {
        match &node.value {
            Value::Bool(true) => return Some(JournaldMode::On),
            Value::Bool(false) => return Some(JournaldMode::Off),
            _ => {}
        }
        let text = self.r.text(node, "journald")?;
        match text.as_str() {
            "auto" => Some(JournaldMode::Auto),
            "on" => Some(JournaldMode::On),
            "off" => Some(JournaldMode::Off),
            _ => {
                self.r.error(
                    node.pos,
                    format!(
                        "unknown `journald` value `{}`; expected one of: auto, on, off",
                        quote(&text)
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, node: &Node, key: &str) -> Option<Duration> {
        let Some(text) = node.as_str() else {
            self.r.error(
                node.pos,
                format!(
                    "`{key}` must be a duration like 5s or 1h, found {}",
                    node.kind()
                ),
            );
            return None;
        };
        match parse_duration(text) {
            Ok(d) => Some(d),
            Err(message) => {
                self.r.error(node.pos, format!("`{key}`: {message}"));
                None
            }
        }
    }

    fn watch(&mut self, node: &Node, watch: &mut WatchConfig) {
        let Some(f) = self.r.fields(node, "`watch`", WATCH_FIELDS) else {
            return;
        };
        if let Some(n) = self.present(&f, "debounce_ms") {
            // Milliseconds as a number; a duration string is accepted too.
            let debounce = match n.value {
                Value::Str(_) => self.duration(n, "debounce_ms"),
                _ => match self.r.integer(n, "debounce_ms") {
                    Some(ms) if ms >= 0 => Some(Duration::from_millis(ms.unsigned_abs())),
                    Some(_) => {
                        self.r.error(n.pos, "`debounce_ms` must not be negative");
                        None
                    }
                    None => None,
                },
            };
            if let Some(d) = debounce {
                watch.debounce = d;
            }
        }
        for key in ["poll_interval", "full_rescan_interval"] {
            let Some(n) = self.present(&f, key) else {
                continue;
            };
            let Some(d) = self.duration(n, key) else {
                continue;
            };
            if d.is_zero() {
                self.r
                    .error(n.pos, format!("`{key}` must be longer than zero"));
                continue;
            }
            if key == "poll_interval" {
                watch.poll_interval = d;
            } else {
                watch.full_rescan_interval = d;
            }
        }
    }

    fn deadlines(&mut self, node: &Node, deadlines: &mut Deadlines) {
        let Some(f) = self.r.fields(node, "`deadlines`", DEADLINE_FIELDS) else {
            return;
        };
        for &(key, _, value) in f.entries() {
            // `none` or null: no deadline for this severity.
            let deadline = if value.value == Value::Null || value.as_str() == Some("none") {
                None
            } else {
                match self.duration(value, key) {
                    Some(d) => Some(d),
                    None => continue,
                }
            };
            match key {
                "critical" => deadlines.critical = deadline,
                "high" => deadlines.high = deadline,
                "medium" => deadlines.medium = deadline,
                _ => deadlines.low = deadline,
            }
        }
    }

    fn collector(&mut self, node: &Node) -> Option<CollectorConfig> {
        let f = self.r.fields(node, "`collector`", COLLECTOR_FIELDS)?;
        let url = self.r.required(&f, "url", "`collector`").and_then(|n| {
            let url = self.r.nonempty_text(n, "url")?;
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            match rest {
                Some(rest) if !rest.is_empty() && !rest.contains(char::is_whitespace) => Some(url),
                _ => {
                    self.r.error(
                        n.pos,
                        format!(
                            "invalid collector `url` `{}`: expected https://HOST:PORT",
                            quote(&url)
                        ),
                    );
                    None
                }
            }
        });
        let file = |key: &str, default: &str, this: &mut Self| match this.present(&f, key) {
            Some(n) => this.path(n, key),
            None => Some(PathBuf::from(default)),
        };
        let ca = file("ca", "/etc/hardend/ca.pem", self);
        let cert = file("cert", "/etc/hardend/agent.pem", self);
        let key = file("key", "/etc/hardend/agent.key", self);
        let outbox_max_drift_events = match self.present(&f, "outbox_max_drift_events") {
            None => Some(DEFAULT_OUTBOX_MAX_DRIFT_EVENTS),
            Some(n) => match self.r.integer(n, "outbox_max_drift_events") {
                Some(v) if (1..=MAX_OUTBOX_DRIFT_EVENTS).contains(&v) => usize::try_from(v).ok(),
                Some(_) => {
                    self.r.error(
                        n.pos,
                        format!(
                            "`outbox_max_drift_events` must be between 1 and {MAX_OUTBOX_DRIFT_EVENTS}"
                        ),
                    );
                    None
                }
                None => None,
            },
        };
        Some(CollectorConfig {
            url: url?,
            ca: ca?,
            cert: cert?,
            key: key?,
            outbox_max_drift_events: outbox_max_drift_events?,
        })
    }

    fn waivers(&mut self, node: &Node) -> Vec<Waiver> {
        let Some(items) = node.as_seq() else {
            self.r.error(
                node.pos,
                format!("`waivers` must be a list, found {}", node.kind()),
            );
            return Vec::new();
        };
        let mut out = Vec::with_capacity(items.len());
        let mut seen: HashMap<String, Pos> = HashMap::new();
        for item in items {
            let Some(waiver) = self.waiver(item) else {
                continue;
            };
            let key = format!("{}/{}", waiver.policy, waiver.rule);
            if let Some(first) = seen.get(&key) {
                self.r.error(
                    item.pos,
                    format!(
                        "duplicate waiver for `{key}` (first at line {})",
                        first.line
                    ),
                );
                continue;
            }
            seen.insert(key, item.pos);
            out.push(waiver);
        }
        out
    }

    fn waiver(&mut self, node: &Node) -> Option<Waiver> {
        let errors_before = self.r.diags.len();
        let f = self.r.fields(node, "a waiver", WAIVER_FIELDS)?;
        let rule = self.r.required(&f, "rule", "a waiver").and_then(|n| {
            let text = self.r.nonempty_text(n, "rule")?;
            match text.split_once('/') {
                Some((policy, rule)) if is_valid_id(policy) && is_valid_id(rule) => {
                    Some((policy.to_string(), rule.to_string()))
                }
                _ => {
                    self.r.error(
                        n.pos,
                        format!(
                            "invalid waiver `rule` `{}`: expected POLICY-ID/RULE-ID",
                            quote(&text)
                        ),
                    );
                    None
                }
            }
        });
        let reason = self
            .r
            .required(&f, "reason", "a waiver")
            .and_then(|n| self.r.nonempty_text(n, "reason"));
        let expires = self.r.required(&f, "expires", "a waiver").and_then(|n| {
            let text = self.r.text(n, "expires")?;
            match parse_date(&text) {
                Some(date) => Some(date),
                None => {
                    self.r.error(
                        n.pos,
                        format!(
                            "invalid `expires` date `{}`: expected YYYY-MM-DD",
                            quote(&text)
                        ),
                    );
                    None
                }
            }
        });
        let (policy, rule) = rule?;
        if self.r.diags.len() > errors_before {
            // An unknown key was reported: the waiver is not taken.
            return None;
        }
        Some(Waiver {
            policy,
            rule,
            reason: reason?,
            expires: expires?,
            location: location(self.file, node.pos),
        })
    }
}

/// A calendar date written exactly as `YYYY-MM-DD`.
fn parse_date(text: &str) -> Option<jiff::civil::Date> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    text.parse::<jiff::civil::Date>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in [
            "",
            "5",
            "s",
            "5 s",
            "1.5h",
            "-1s",
            "5x",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn dates() {
        assert!(parse_date("2027-01-31").is_some());
        assert!(parse_date("2027-02-30").is_none());
        assert!(parse_date("2027-1-31").is_none());
        assert!(parse_date("20270131").is_none());
        assert!(parse_date("2027-01-31T00:00").is_none());
    }
}
