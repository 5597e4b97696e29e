//! The collector's configuration file (`/etc/hardend-collector/collector.yaml`): its keys, their defaults, and parsing with every error reported at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use hardend_policy::config::MetricsConfig;
use hardend_policy::config::{Deadlines, parse_duration, parse_metrics_listen};
use hardend_policy::raw::{self, Node, Pos, Value};

/// Where the collector looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hardend-collector/collector.yaml";

/// The default store: one SQLite file.
pub const DEFAULT_STORE: &str = "sqlite:///var/lib/hardend-collector/hardend.db";

/// The default limit on one gRPC message from an agent or console.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Where the collector serves Prometheus metrics when `metrics:` is present
/// without a `listen` address.
pub const DEFAULT_METRICS_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9274);

const TOP_FIELDS: &[&str] = &[
    "listen",
    "tls",
    "store",
    "deadlines",
    "max_message_bytes",
    "metrics",
];
const METRICS_FIELDS: &[&str] = &["listen"];
const TLS_FIELDS: &[&str] = &["ca", "cert", "key"];
const DEADLINE_FIELDS: &[&str] = &["critical", "high", "medium", "low"];

/// The collector's certificates: the CA that signs agents' and consoles'
/// client certificates, and the collector's own certificate and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The collector's whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectorConfig {
    /// The TCP address the gRPC server listens on.
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    /// `sqlite:///path/to/file.db` or `postgres://user@host/db`.
    pub store: String,
    pub deadlines: Deadlines,
    /// The largest gRPC message accepted; larger ones are refused.
    pub max_message_bytes: usize,
    /// The Prometheus endpoint; `None` (the default) serves none.
    pub metrics: Option<MetricsConfig>,
}

impl CollectorConfig {
    /// A configuration with every default and the given certificates.
    pub fn with_tls(tls: TlsConfig) -> CollectorConfig {
        CollectorConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 7443)),
            tls,
            store: DEFAULT_STORE.to_string(),
            deadlines: Deadlines::default(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            metrics: None,
        }
    }
}

/// One problem with the configuration file; `Display` is `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}:1:1: cannot read: {reason}")]
    Read { file: PathBuf, reason: String },
    /// The text is not YAML, or a key or value is wrong.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Reads and parses the configuration file.
pub fn load_config(path: &Path) -> Result<CollectorConfig, Vec<ConfigError>> {
    let read_error = |reason: String| {
        vec![ConfigError::Read {
            file: path.to_path_buf(),
            reason,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|err| read_error(err.to_string()))?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(read_error(format!(
            "the file is {} bytes, over the limit of {MAX_CONFIG_BYTES} bytes",
            meta.len()
        )));
    }
    let bytes = std::fs::read(path).map_err(|err| read_error(err.to_string()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| read_error("the file is not valid UTF-8".to_string()))?;
    parse_config(&text, path)
}

/// Parses the configuration text; every problem is returned, sorted by position.
pub fn parse_config(source: &str, file: &Path) -> Result<CollectorConfig, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        errors: Vec::new(),
    };
    let root = match raw::parse(source) {
        Ok(root) => root,
        Err(err) => {
            p.error(err.pos, raw::sanitize(&err.message));
            return Err(p.errors);
        }
    };
    let Some(root) = root else {
        p.error(Pos::START, "the `tls` key is required (ca, cert, key)");
        return Err(p.errors);
    };
    let config = p.config(&root);
    if p.errors.is_empty()
        && let Some(config) = config
    {
        return Ok(config);
    }
    p.errors.sort_by_key(|e| match e {
        ConfigError::Invalid { line, column, .. } => (*line, *column),
        ConfigError::Read { .. } => (0, 0),
    });
    Err(p.errors)
}

struct Parser<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Parser<'_> {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.errors.push(ConfigError::Invalid {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        });
    }

    /// The entries of a mapping with string keys, reporting unknown keys and
    /// duplicates.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &[&str],
    ) -> Option<Vec<(&'n str, &'n Node)>> {
        let Some(entries) = node.as_map() else {
            self.error(
                node.pos,
                format!("{what} must be a mapping, not {}", node.kind()),
            );
            return None;
        };
        let mut out: Vec<(&'n str, &'n Node)> = Vec::new();
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                self.error(key.pos, format!("a key of {what} must be a string"));
                continue;
            };
            if !known.contains(&name) {
                self.error(
                    key.pos,
                    format!(
                        "unknown key `{}` in {what} (expected one of: {})",
                        raw::sanitize(name),
                        known.join(", ")
                    ),
                );
                continue;
            }
            if out.iter().any(|(k, _)| *k == name) {
                self.error(key.pos, format!("duplicate key `{name}` in {what}"));
                continue;
            }
            out.push((name, value));
        }
        Some(out)
    }

    fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        match &node.value {
            Value::Str(s) if !s.is_empty() => Some(s.clone()),
            Value::Str(_) => {
                self.error(node.pos, format!("`{key}` must not be empty"));
                None
            }
            _ => {
                self.error(
                    node.pos,
                    format!("`{key}` must be a string, not {}", node.kind()),
                );
                None
            }
        }
    }

    fn config(&mut self, root: &Node) -> Option<CollectorConfig> {
        let fields = self.fields(root, "the configuration", TOP_FIELDS)?;
        let mut tls = None;
        let mut config = CollectorConfig::with_tls(TlsConfig {
            ca: PathBuf::new(),
            cert: PathBuf::new(),
            key: PathBuf::new(),
        });
        for (key, value) in fields {
            match key {
                "listen" => {
                    if let Some(text) = self.text(value, key) {
                        match text.parse::<SocketAddr>() {
                            Ok(addr) => config.listen = addr,
                            Err(_) => self.error(
                                value.pos,
                                format!(
                                    "`listen` must be an address and port such as 0.0.0.0:7443, not `{}`",
                                    raw::sanitize(&text)
                                ),
                            ),
                        }
                    }
                }
                "tls" => tls = self.tls(value),
                "store" => {
                    if let Some(text) = self.text(value, key) {
                        if text.starts_with("sqlite://")
                            || text.starts_with("postgres://")
                            || text.starts_with("postgresql://")
                        {
                            config.store = text;
                        } else {
                            self.error(
                                value.pos,
                                "`store` must be sqlite:///PATH or postgres://USER@HOST/DB",
                            );
                        }
                    }
                }
                "deadlines" => self.deadlines(value, &mut config.deadlines),
                "max_message_bytes" => {
                    if let Some(n) = self.positive(value, key) {
                        config.max_message_bytes = n;
                    }
                }
                // A null section is an absent one: no metrics.
                "metrics" if value.value == Value::Null => {}
                "metrics" => config.metrics = self.metrics(value),
                _ => {}
            }
        }
        match tls {
            Some(tls) => config.tls = tls,
            None => {
                if !root
                    .as_map()
                    .is_some_and(|m| m.iter().any(|(k, _)| k.as_str() == Some("tls")))
                {
                    self.error(root.pos, "the `tls` key is required (ca, cert, key)");
                }
                return None;
            }
        }
        Some(config)
    }

    fn metrics(&mut self, node: &Node) -> Option<MetricsConfig> {
        let fields = self.fields(node, "`metrics`", METRICS_FIELDS)?;
        let mut metrics = MetricsConfig {
            listen: DEFAULT_METRICS_LISTEN,
        };
        if let Some((_, value)) = fields.iter().find(|(k, _)| *k == "listen") {
            let text = self.text(value, "listen")?;
            match parse_metrics_listen(&text) {
                Ok(addr) => metrics.listen = addr,
                Err(message) => {
                    self.error(value.pos, raw::sanitize(&message));
                    return None;
                }
            }
        }
        Some(metrics)
    }

    fn positive(&mut self, node: &Node, key: &str) -> Option<usize> {
        match node.value {
            Value::Int(n) if n > 0 => match usize::try_from(n) {
                Ok(n) => Some(n),
                Err(_) => {
                    self.error(node.pos, format!("`{key}` is too large"));
                    None
                }
            },
            _ => {
                self.error(node.pos, format!("`{key}` must be a positive integer"));
                None
            }
        }
    }

    fn tls(&mut self, node: &Node) -> Option<TlsConfig> {
        let fields = self.fields(node, "`tls`", TLS_FIELDS)?;
        let get = |p: &mut Self, name: &str| match fields.iter().find(|(k, _)| *k == name) {
            Some((_, value)) => p.text(value, name).map(PathBuf::from),
            None => {
                p.error(node.pos, format!("`tls` needs `{name}`"));
                None
            }
        };
        let ca = get(self, "ca");
        let cert = get(self, "cert");
        let key = get(self, "key");
        Some(TlsConfig {
            ca: ca?,
            cert: cert?,
            key: key?,
        })
    }

    fn deadlines(&mut self, node: &Node, deadlines: &mut Deadlines) {
        let Some(fields) = self.fields(node, "`deadlines`", DEADLINE_FIELDS) else {
            return;
        };
        for (key, value) in fields {
            let parsed: Option<Option<Duration>> = match &value.value {
                Value::Null => Some(None),
                Value::Str(s) if s == "none" => Some(None),
                Value::Str(s) => match parse_duration(s) {
                    Ok(d) if !d.is_zero() => Some(Some(d)),
                    Ok(_) => {
                        self.error(
                            value.pos,
                            format!("`deadlines.{key}` must be longer than 0"),
                        );
                        None
                    }
                    Err(message) => {
                        self.error(value.pos, format!("`deadlines.{key}`: {message}"));
                        None
                    }
                },
                _ => {
                    self.error(
                        value.pos,
                        format!(
                            "`deadlines.{key}` must be a duration such as 4h, not {}",
                            value.kind()
                        ),
                    );
                    None
                }
            };
            if let Some(d) = parsed {
                match key {
                    "critical" => deadlines.critical = d,
                    "high" => deadlines.high = d,
                    "medium" => deadlines.medium = d,
                    _ => deadlines.low = d,
                }
            }
        }
    }
}
