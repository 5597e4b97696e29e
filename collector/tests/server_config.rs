//! The collector's configuration file: defaults for every key but `tls`,
//! the documented forms, and every error at once with file:line:col.

use std::path::Path;
use std::time::Duration;

use hardend_collector::config::{
    DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_STORE, load_config, parse_config,
};

const FILE: &str = "/etc/hardend-collector/collector.yaml";

#[test]
fn server_config_defaults_for_every_key_but_tls() {
    let config = parse_config(
        "tls: { ca: /etc/c/ca.pem, cert: /etc/c/collector.pem, key: /etc/c/collector.key }\n",
        Path::new(FILE),
    )
    .expect("valid");
    assert_eq!(config.listen.to_string(), "0.0.0.0:7443");
    assert_eq!(config.store, DEFAULT_STORE);
    assert_eq!(config.tls.key, Path::new("/etc/c/collector.key"));
    assert_eq!(
        config.deadlines.critical,
        Some(Duration::from_secs(4 * 3600))
    );
    assert_eq!(config.deadlines.high, Some(Duration::from_secs(24 * 3600)));
    assert_eq!(
        config.deadlines.medium,
        Some(Duration::from_secs(72 * 3600))
    );
    assert_eq!(config.deadlines.low, None);
    assert_eq!(config.max_message_bytes, DEFAULT_MAX_MESSAGE_BYTES);
    assert_eq!(config.metrics, None, "metrics are off by default");
}

#[test]
fn server_config_metrics_default_to_loopback_port_9274() {
    let tls = "tls: { ca: /c/ca.pem, cert: /c/c.pem, key: /c/c.key }\n";
    let parse = |extra: &str| {
        parse_config(&format!("{tls}{extra}"), Path::new(FILE))
            .expect("valid")
            .metrics
            .map(|m| m.listen.to_string())
    };
    assert_eq!(parse("metrics:\n"), None);
    assert_eq!(parse("metrics: {}\n").as_deref(), Some("127.0.0.1:9274"));
    assert_eq!(
        parse("metrics: { listen: 127.0.0.1:0 }\n").as_deref(),
        Some("127.0.0.1:0")
    );
    assert_eq!(
        parse("metrics: { listen: 10.0.0.5:9274 }\n").as_deref(),
        Some("10.0.0.5:9274")
    );
    let errors = parse_config(
        &format!("{tls}metrics: {{ listen: collector:9274, tls: yes }}\n"),
        Path::new(FILE),
    )
    .expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        lines,
        [
            format!(
                "{FILE}:2:20: `listen` must be an IP address and port such as 127.0.0.1:9273, not `collector:9274`"
            ),
            format!("{FILE}:2:36: unknown key `tls` in `metrics` (expected one of: listen)"),
        ]
    );
}

#[test]
fn server_config_the_documented_example() {
    let text = "\
listen: 127.0.0.1:9443
tls: { ca: /etc/hardend-collector/ca.pem, cert: /etc/hardend-collector/collector.pem, key: /etc/hardend-collector/collector.key }
store: postgres://hardend@db.example/hardend
deadlines: { critical: 1h30m, high: 12h, medium: 3d, low: 30d }
max_message_bytes: 65536
";
    let config = parse_config(text, Path::new(FILE)).expect("valid");
    assert_eq!(config.listen.to_string(), "127.0.0.1:9443");
    assert_eq!(config.store, "postgres://hardend@db.example/hardend");
    assert_eq!(config.deadlines.critical, Some(Duration::from_secs(5400)));
    assert_eq!(
        config.deadlines.medium,
        Some(Duration::from_secs(3 * 86400))
    );
    assert_eq!(config.deadlines.low, Some(Duration::from_secs(30 * 86400)));
    assert_eq!(config.max_message_bytes, 65536);
}

#[test]
fn server_config_every_error_at_once_with_positions() {
    let text = "\
listen: nowhere
store: mysql://x
deadlines: { critical: soon, urgent: 1h }
max_message_bytes: -1
colour: blue
";
    let errors = parse_config(text, Path::new(FILE)).expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let at = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
    assert!(at(&format!("{FILE}:1:9: `listen`")), "{lines:#?}");
    assert!(at(&format!("{FILE}:2:8: `store`")), "{lines:#?}");
    assert!(
        at(&format!("{FILE}:3:24: `deadlines.critical`")),
        "{lines:#?}"
    );
    assert!(
        at(&format!("{FILE}:3:30: unknown key `urgent`")),
        "{lines:#?}"
    );
    assert!(
        at(&format!("{FILE}:4:20: `max_message_bytes`")),
        "{lines:#?}"
    );
    assert!(
        at(&format!("{FILE}:5:1: unknown key `colour`")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("`tls` key is required")),
        "{lines:#?}"
    );
    assert_eq!(lines.len(), 7, "{lines:#?}");
}

#[test]
fn server_config_tls_needs_all_three_files_and_bad_yaml_is_located() {
    let errors = parse_config("tls: { ca: /ca.pem }\n", Path::new(FILE)).expect_err("invalid");
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.starts_with(&format!("{FILE}:1:"))),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("needs `cert`")));
    assert!(lines.iter().any(|l| l.contains("needs `key`")));

    let errors = parse_config("tls: [unclosed\n", Path::new(FILE)).expect_err("syntax");
    assert!(errors[0].to_string().starts_with(FILE), "{}", errors[0]);

    let missing = load_config(Path::new("/nonexistent/collector.yaml")).expect_err("missing");
    assert!(
        missing[0]
            .to_string()
            .starts_with("/nonexistent/collector.yaml:1:1: cannot read")
    );
}
