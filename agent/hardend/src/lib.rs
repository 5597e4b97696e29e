//! The hardend agent as a library: the commands behind the `hardend` binary,
//! so tests and benchmarks run them in process.
//!
//! `check` is load policies -> ask the engine which facts they need -> probe
//! exactly those below the root -> evaluate -> build the report. The binary
//! (`main.rs`) only parses arguments, prints, and maps results to exit codes.

pub mod cli;
pub mod output;

/// Re-exported so callers can build the `today` of [`CheckOptions`].
pub use jiff;

use std::path::{Path, PathBuf};
use std::time::Instant;

use hardend_engine::{Context, HostInfo, Report, Status};
use hardend_policy::config::{AgentConfig, ConfigError};
use hardend_policy::{ConfiguredPoliciesError, Policy, PolicyError, Severity, Waiver};
use hardend_probe::{Probe, RootFs};

/// What `hardend check` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    /// The root to scan; `None` takes the configuration's (default `/`).
    pub root: Option<PathBuf>,
    /// Policy files and directories; empty takes the configuration's
    /// (default `/etc/hardend/policies.d`, then `/usr/share/hardend/policies`).
    pub policies: Vec<PathBuf>,
    /// The agent configuration (waivers, and defaults for root and policies).
    pub config: Option<PathBuf>,
    /// Today's date for waiver expiry; `None` is the local date now. Tests
    /// pin it so waivers do not rot.
    pub today: Option<jiff::civil::Date>,
}

/// Why a check could not run at all (as opposed to a rule failing).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// One or more policy files are invalid; each error is `file:line:col: message`.
    #[error("{}", hardend_policy::join_lines(.0))]
    Policy(Vec<PolicyError>),
    /// The configuration file is invalid.
    #[error("{}", hardend_policy::join_lines(.0))]
    Config(Vec<ConfigError>),
    /// No policy path was given and none of the configured directories exists.
    #[error("no policy directory exists (looked in {})", hardend_policy::show_paths(.tried))]
    NoPolicyDirectory { tried: Vec<PathBuf> },
    /// The root to scan is not a directory.
    #[error("{}: the root to scan is not a readable directory: {reason}", .root.display())]
    Root { root: PathBuf, reason: String },
}

/// Reads the agent configuration file (a missing file is an error: it was named).
pub fn load_settings(path: &Path) -> Result<AgentConfig, CheckError> {
    hardend_policy::config::load_config(path).map_err(CheckError::Config)
}

/// Loads the policy files and directories given on the command line; every
/// one must exist.
pub fn load_policies(paths: &[PathBuf]) -> Result<Vec<Policy>, CheckError> {
    hardend_policy::load_paths(paths).map_err(CheckError::Policy)
}

/// Configured policy directories: those that exist are loaded, missing ones
/// are skipped, and none existing is an error.
pub fn load_configured_policies(dirs: &[PathBuf]) -> Result<Vec<Policy>, CheckError> {
    hardend_policy::load_configured(dirs).map_err(|e| match e {
        ConfiguredPoliciesError::NoPolicyDirectory { tried } => {
            CheckError::NoPolicyDirectory { tried }
        }
        ConfiguredPoliciesError::Policy(errors) => CheckError::Policy(errors),
    })
}

/// The host's name (see [`hardend_probe::root::hostname`]).
pub fn hostname(fs: &RootFs) -> String {
    hardend_probe::root::hostname(fs)
}

/// Runs one evaluation: loads the policies, probes the facts they need below
/// the root, evaluates, and builds the report.
pub fn run_check(opts: &CheckOptions) -> Result<Report, CheckError> {
    let config = match &opts.config {
        Some(path) => load_settings(path)?,
        None => AgentConfig::default(),
    };
    let policies = if opts.policies.is_empty() {
        load_configured_policies(&config.policies)?
    } else {
        load_policies(&opts.policies)?
    };
    let root = opts.root.clone().unwrap_or(config.root);
    check_policies(&root, &policies, &config.waivers, opts.today)
}

/// Evaluates already-loaded policies against the root.
pub fn check_policies(
    root: &Path,
    policies: &[Policy],
    waivers: &[Waiver],
    today: Option<jiff::civil::Date>,
) -> Result<Report, CheckError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(CheckError::Root {
                root: root.to_path_buf(),
                reason: "not a directory".to_string(),
            });
        }
        Err(e) => {
            return Err(CheckError::Root {
                root: root.to_path_buf(),
                reason: e.to_string(),
            });
        }
    }
    let now = jiff::Timestamp::now();
    // Milliseconds are plenty for a report, and keep the timestamp readable.
    let started_at = now.round(jiff::Unit::Millisecond).unwrap_or(now);
    let clock = Instant::now();
    let today = today.unwrap_or_else(|| jiff::Zoned::now().date());
    let probe = Probe::new(root);
    let facts = probe.collect(&hardend_engine::required_facts(policies));
    let ctx = Context { waivers, today };
    let results = policies
        .iter()
        .flat_map(|p| hardend_engine::evaluate(p, &facts, &ctx))
        .collect();
    let host = HostInfo {
        hostname: hostname(probe.fs()),
        root: root.display().to_string(),
    };
    let duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
    Ok(hardend_engine::build_report(
        host,
        started_at.to_string(),
        duration_ms,
        policies,
        results,
    ))
}

/// True when some rule at or above `fail_on` failed or errored: exit code 1.
pub fn has_failures(report: &Report, fail_on: Severity) -> bool {
    report
        .results
        .iter()
        .any(|r| r.severity >= fail_on && matches!(r.status, Status::Fail | Status::Error))
}

/// What `hardend validate` found in good files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidateSummary {
    pub policies: usize,
    pub rules: usize,
}

/// Loads and validates policy files and directories; every error is returned.
pub fn validate(paths: &[PathBuf]) -> Result<ValidateSummary, Vec<PolicyError>> {
    let policies = hardend_policy::load_paths(paths)?;
    Ok(ValidateSummary {
        policies: policies.len(),
        rules: policies.iter().map(|p| p.rules.len()).sum(),
    })
}
