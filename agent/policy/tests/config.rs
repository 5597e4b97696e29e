//! The agent's configuration file: defaults, the full example of the design, and every error reported at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hardend_policy::Severity;
use hardend_policy::config::{
    AgentConfig, CollectorConfig, JournaldMode, MetricsConfig, load_config, load_config_or_default,
    parse_config,
};

const HOUR: u64 = 3600;

fn errors(source: &str) -> Vec<String> {
    match parse_config(source, Path::new("hardend.yaml")) {
        Ok(config) => panic!("expected errors, parsed {config:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults_need_no_file() {
    let config = AgentConfig::default();
    assert_eq!(config.root, Path::new("/"));
    assert_eq!(
        config.policies,
        [
            PathBuf::from("/etc/hardend/policies.d"),
            PathBuf::from("/usr/share/hardend/policies")
        ]
    );
    assert_eq!(config.state_dir, Path::new("/var/lib/hardend"));
    assert_eq!(config.socket, Path::new("/run/hardend/hardend.sock"));
    assert_eq!(config.journald, JournaldMode::Auto);
    assert_eq!(config.watch.debounce, Duration::from_millis(50));
    assert_eq!(config.watch.poll_interval, Duration::from_secs(5));
    assert_eq!(config.watch.full_rescan_interval, Duration::from_secs(HOUR));
    assert_eq!(
        config.deadlines.deadline(Severity::Critical),
        Some(Duration::from_secs(4 * HOUR))
    );
    assert_eq!(
        config.deadlines.deadline(Severity::High),
        Some(Duration::from_secs(24 * HOUR))
    );
    assert_eq!(
        config.deadlines.deadline(Severity::Medium),
        Some(Duration::from_secs(72 * HOUR))
    );
    assert_eq!(config.deadlines.deadline(Severity::Low), None);
    assert_eq!(config.collector, None);
    assert!(config.waivers.is_empty());
    assert_eq!(config.metrics, None, "metrics are off by default");

    for empty in ["", "# nothing configured\n", "---\n", "~\n"] {
        assert_eq!(
            parse_config(empty, Path::new("c.yaml")),
            Ok(AgentConfig::default()),
            "{empty:?}"
        );
    }
}

#[test]
fn the_design_example_parses_completely() {
    let source = r#"root: /                          # what to scan
policies: [/etc/hardend/policies.d, /usr/share/hardend/policies]
state_dir: /var/lib/hardend
socket: /run/hardend/hardend.sock
journald: auto                   # auto | on | off (off: stderr)
watch:
  debounce_ms: 50
  poll_interval: 5s              # backstop for /proc/sys, sockets, firewall
  full_rescan_interval: 1h
deadlines: { critical: 4h, high: 24h, medium: 72h }   # low: none
collector:                       # absent: no push
  url: https://collector.example:7443
  ca: /etc/hardend/ca.pem
  cert: /etc/hardend/agent.pem
  key: /etc/hardend/agent.key
waivers:
  - rule: linux-baseline-ssh/ssh-x11-forwarding-disabled
    reason: jump host needs X11
    expires: 2027-01-31
"#;
    let config = parse_config(source, Path::new("/etc/hardend/hardend.yaml")).expect("valid");
    let defaults = AgentConfig::default();
    assert_eq!(config.root, defaults.root);
    assert_eq!(config.policies, defaults.policies);
    assert_eq!(config.watch, defaults.watch);
    assert_eq!(config.deadlines, defaults.deadlines);
    assert_eq!(
        config.collector,
        Some(CollectorConfig {
            url: "https://collector.example:7443".to_string(),
            ca: PathBuf::from("/etc/hardend/ca.pem"),
            cert: PathBuf::from("/etc/hardend/agent.pem"),
            key: PathBuf::from("/etc/hardend/agent.key"),
            outbox_max_drift_events: hardend_policy::config::DEFAULT_OUTBOX_MAX_DRIFT_EVENTS,
        })
    );
    assert_eq!(config.waivers.len(), 1);
    let waiver = &config.waivers[0];
    assert_eq!(waiver.policy, "linux-baseline-ssh");
    assert_eq!(waiver.rule, "ssh-x11-forwarding-disabled");
    assert_eq!(waiver.reason, "jump host needs X11");
    assert_eq!(waiver.expires, jiff::civil::date(2027, 1, 31));
    assert_eq!((waiver.location.line, waiver.location.column), (17, 5));
    assert_eq!(waiver.location.file, Path::new("/etc/hardend/hardend.yaml"));
}

#[test]
fn values_other_than_the_defaults_are_taken() {
    let source = "root: /mnt/img\npolicies: /srv/policies\njournald: off\nwatch: { debounce_ms: 0, poll_interval: 250ms, full_rescan_interval: 1h30m }\ndeadlines: { critical: 1h, low: 30d, medium: none }\ncollector: { url: https://c:7443 }\n";
    let config = parse_config(source, Path::new("c.yaml")).expect("valid");
    assert_eq!(config.root, Path::new("/mnt/img"));
    assert_eq!(config.policies, [PathBuf::from("/srv/policies")]);
    assert_eq!(config.journald, JournaldMode::Off);
    assert_eq!(config.watch.debounce, Duration::ZERO);
    assert_eq!(config.watch.poll_interval, Duration::from_millis(250));
    assert_eq!(config.watch.full_rescan_interval, Duration::from_secs(5400));
    assert_eq!(
        config.deadlines.deadline(Severity::Critical),
        Some(Duration::from_secs(HOUR))
    );
    assert_eq!(
        config.deadlines.deadline(Severity::High),
        Some(Duration::from_secs(24 * HOUR))
    );
    assert_eq!(config.deadlines.deadline(Severity::Medium), None);
    assert_eq!(
        config.deadlines.deadline(Severity::Low),
        Some(Duration::from_secs(30 * 24 * HOUR))
    );
    let collector = config.collector.expect("collector");
    assert_eq!(
        collector.ca,
        Path::new("/etc/hardend/ca.pem"),
        "certificate paths default"
    );
    assert_eq!(collector.key, Path::new("/etc/hardend/agent.key"));
}

#[test]
fn every_config_error_is_reported_at_once() {
    let source = "root: relative/dir
journald: sometimes
watch:
  debounce_ms: -5
  poll_interval: 5
  full_rescan_interval: 0s
  jitter: 1s
deadlines: { critical: 4 hours, urgent: 1h }
collector: { url: ftp://c, cert: agent.pem }
listen: 0.0.0.0:7443
";
    assert_eq!(
        errors(source),
        [
            "hardend.yaml:1:7: `root` must be an absolute path, found `relative/dir`",
            "hardend.yaml:2:11: unknown `journald` value `sometimes`; expected one of: auto, on, off",
            "hardend.yaml:4:16: `debounce_ms` must not be negative",
            "hardend.yaml:5:18: `poll_interval` must be a duration like 5s or 1h, found an integer",
            "hardend.yaml:6:25: `full_rescan_interval` must be longer than zero",
            "hardend.yaml:7:3: unknown field `jitter` in `watch`; expected one of: debounce_ms, poll_interval, full_rescan_interval",
            "hardend.yaml:8:24: `critical`: invalid duration `4 hours`: expected e.g. 50ms, 5s, 10m, 1h, 2d",
            "hardend.yaml:8:33: unknown field `urgent` in `deadlines`; expected one of: critical, high, medium, low",
            "hardend.yaml:9:19: invalid collector `url` `ftp://c`: expected https://HOST:PORT",
            "hardend.yaml:9:34: `cert` must be an absolute path, found `agent.pem`",
            "hardend.yaml:10:1: unknown field `listen` in the configuration; expected one of: root, policies, state_dir, socket, journald, watch, deadlines, collector, waivers, metrics",
        ]
    );
}

#[test]
fn waiver_errors() {
    let source = "waivers:
  - rule: linux-baseline-ssh
    reason: \"\"
    expires: 2027-02-30
  - rule: Bad/Rule
    reason: ok
    expires: 31.01.2027
  - { rule: p/r, reason: ok }
  - { rule: p/r, reason: ok, expires: 2027-01-31, owner: me }
  - { rule: p/r, reason: ok, expires: 2027-01-31 }
  - { rule: p/r, reason: again, expires: 2028-01-31 }
";
    assert_eq!(
        errors(source),
        [
            "hardend.yaml:2:11: invalid waiver `rule` `linux-baseline-ssh`: expected POLICY-ID/RULE-ID",
            "hardend.yaml:3:13: `reason` must not be empty",
            "hardend.yaml:4:14: invalid `expires` date `2027-02-30`: expected YYYY-MM-DD",
            "hardend.yaml:5:11: invalid waiver `rule` `Bad/Rule`: expected POLICY-ID/RULE-ID",
            "hardend.yaml:7:14: invalid `expires` date `31.01.2027`: expected YYYY-MM-DD",
            "hardend.yaml:8:5: missing required field `expires` in a waiver",
            "hardend.yaml:9:51: unknown field `owner` in a waiver; expected one of: rule, reason, expires",
            "hardend.yaml:11:5: duplicate waiver for `p/r` (first at line 10)",
        ]
    );
}

#[test]
fn config_syntax_errors_have_a_position() {
    let errors = errors("root: /\nwatch: { poll_interval: 5s\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("hardend.yaml:"), "{errors:?}");
}

#[test]
fn loading_from_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("hardend.yaml");
    assert_eq!(load_config_or_default(&missing), Ok(AgentConfig::default()));
    let errors = load_config(&missing).expect_err("missing file");
    assert_eq!(errors[0].location().file, missing);
    assert!(
        errors[0].message().starts_with("cannot read: "),
        "{errors:?}"
    );

    std::fs::write(&missing, "journald: on\n").expect("write");
    let config = load_config_or_default(&missing).expect("valid");
    assert_eq!(config.journald, JournaldMode::On);

    std::fs::write(&missing, "journald: loud\n").expect("write");
    let errors = load_config(&missing).expect_err("invalid");
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}:1:11: unknown `journald` value `loud`; expected one of: auto, on, off",
            missing.display()
        )]
    );
}

#[test]
fn metrics_are_off_unless_asked_for_and_default_to_loopback() {
    let parse = |source: &str| parse_config(source, Path::new("hardend.yaml")).expect("valid");
    assert_eq!(
        parse("metrics:\n").metrics,
        None,
        "a null section is absent"
    );
    assert_eq!(
        parse("metrics: {}\n").metrics,
        Some(MetricsConfig {
            listen: "127.0.0.1:9273".parse().expect("addr")
        })
    );
    assert_eq!(
        parse("metrics: { listen: 127.0.0.1:0 }\n").metrics,
        Some(MetricsConfig {
            listen: "127.0.0.1:0".parse().expect("addr")
        })
    );
    // Another address is taken when written (the daemon warns about it).
    assert_eq!(
        parse("metrics:\n  listen: \"[::]:9100\"\n").metrics,
        Some(MetricsConfig {
            listen: "[::]:9100".parse().expect("addr")
        })
    );
    assert_eq!(
        errors("metrics: { listen: localhost:9273, path: /m }\n"),
        [
            "hardend.yaml:1:20: `listen` must be an IP address and port such as 127.0.0.1:9273, not `localhost:9273`",
            "hardend.yaml:1:36: unknown field `path` in `metrics`; expected one of: listen",
        ]
    );
    assert_eq!(
        errors("metrics: on\n"),
        ["hardend.yaml:1:10: `metrics` must be a mapping, found a string"]
    );
}

#[test]
fn the_outbox_bound_is_configurable_within_limits() {
    let source = "collector:
  url: https://c.example:7443
  outbox_max_drift_events: 5000
";
    let config = parse_config(source, Path::new("hardend.yaml")).expect("valid");
    assert_eq!(
        config.collector.map(|c| c.outbox_max_drift_events),
        Some(5000)
    );
    assert_eq!(
        errors("collector: { url: https://c.example:7443, outbox_max_drift_events: 0 }\n"),
        ["hardend.yaml:1:68: `outbox_max_drift_events` must be between 1 and 10000000"]
    );
    assert_eq!(
        errors("collector: { url: https://c.example:7443, outbox_max_drift_events: lots }\n"),
        ["hardend.yaml:1:68: `outbox_max_drift_events` must be an integer, found a string"]
    );
}
