//! The command lines of `hardend`: every subcommand, flag and help text, in
//! the library so the man pages and shell completions are generated from the
//! same definitions the binary parses with.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use hardend_policy::Severity;

pub const EXIT_CODES: &str = "\
Exit codes:
  0  every rule passed, was not applicable, or was waived
  1  a rule at or above --fail-on failed or errored (check)
  2  bad usage, or an invalid policy or configuration (printed as file:line:col: message)";

/// Keeps Linux servers at a hardening baseline.
#[derive(Debug, Parser)]
#[command(name = "hardend", version, propagate_version = true, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Evaluate the policies once against a root and print the results.
    #[command(after_help = EXIT_CODES)]
    Check(CheckArgs),
    /// Check policy files and directories, printing every error.
    #[command(
        after_help = "Exit codes:\n  0  every file is a valid policy\n  2  some file is invalid (each error printed as file:line:col: message)"
    )]
    Validate {
        /// Policy files, or directories whose *.yaml and *.yml files are loaded.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Show the running daemon's state (over its Unix socket).
    Status(StatusArgs),
    /// Print the running daemon's current results, as `check` prints them.
    Report(ReportArgs),
    /// Print drift events from the running daemon as they happen, until Ctrl-C.
    Watch(WatchArgs),
    /// Run the drift-watching daemon (as the systemd service does). Exits
    /// non-zero only when it cannot start; SIGHUP reloads, SIGTERM stops.
    Run {
        /// The agent configuration file; a missing file means the defaults.
        #[arg(long, value_name = "FILE", default_value = "/etc/hardend/hardend.yaml")]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The root to scan: `/` is the running system; a directory is an image
    /// or a mounted disk, read without following links out of it.
    /// [default: the configuration's `root`, else /]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// A policy file, or a directory of them (repeatable). Without it, the
    /// configuration's `policies` are loaded (default /etc/hardend/policies.d,
    /// then /usr/share/hardend/policies; missing directories are skipped).
    #[arg(long = "policy", value_name = "PATH")]
    pub policies: Vec<PathBuf>,
    /// The agent configuration file, for its waivers and its `root` and
    /// `policies` defaults.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The lowest severity whose failure or error makes the exit code 1:
    /// critical, high, medium or low.
    #[arg(long, value_name = "SEVERITY", default_value = "low", value_parser = parse_severity)]
    pub fail_on: Severity,
    /// Never colour the table (colour is used only on a terminal, and never
    /// when NO_COLOR is set).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table for people, 80 columns wide, failing rules with their details.
    Table,
    /// The hardend.report/v1 JSON document.
    Json,
    /// JUnit XML: one test suite per policy, one test case per rule.
    Junit,
}

pub fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// Where the daemon listens.
#[derive(Debug, clap::Args)]
pub struct SocketArgs {
    /// The daemon's socket. [default: the `socket` of --config, else
    /// /run/hardend/hardend.sock]
    #[arg(long, value_name = "PATH", env = "HARDEND_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The agent configuration file the daemon runs with, for its `socket`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Never colour the table.
    #[arg(long)]
    pub no_color: bool,
    /// Have the daemon evaluate everything now, and print that.
    #[arg(long)]
    pub evaluate: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub socket: SocketArgs,
    /// Print one JSON object per event and line instead of text.
    #[arg(long)]
    pub json: bool,
    /// Only events of rules at or above this severity: critical, high,
    /// medium or low.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    pub min_severity: Option<Severity>,
}

/// The `hardend` command as clap sees it, for generating man pages and
/// completions.
pub fn command() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}
