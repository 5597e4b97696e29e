//! The `hardend` command: one-shot checks and policy validation. A thin shell
//! over the `hardend` library: parse arguments, run, print, exit.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use hardend::{CheckError, CheckOptions, output};
use hardend_policy::Severity;

mod remote;

const EXIT_CODES: &str = "\
Exit codes:
  0  every rule passed, was not applicable, or was waived
  1  a rule at or above --fail-on failed or errored (check)
  2  bad usage, or an invalid policy or configuration (printed as file:line:col: message)";

/// Keeps Linux servers at a hardening baseline.
#[derive(Debug, Parser)]
#[command(name = "hardend", version, about, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    Status(remote::StatusArgs),
    /// Print the running daemon's current results, as `check` prints them.
    Report(remote::ReportArgs),
    /// Print drift events from the running daemon as they happen, until Ctrl-C.
    Watch(remote::WatchArgs),
    /// Run the drift-watching daemon (as the systemd service does). Exits
    /// non-zero only when it cannot start; SIGHUP reloads, SIGTERM stops.
    Run {
        /// The agent configuration file; a missing file means the defaults.
        #[arg(long, value_name = "FILE", default_value = "/etc/hardend/hardend.yaml")]
        config: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The root to scan: `/` is the running system; a directory is an image
    /// or a mounted disk, read without following links out of it.
    /// [default: the configuration's `root`, else /]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// A policy file, or a directory of them (repeatable). Without it, the
    /// configuration's `policies` are loaded (default /etc/hardend/policies.d,
    /// then /usr/share/hardend/policies; missing directories are skipped).
    #[arg(long = "policy", value_name = "PATH")]
    policies: Vec<PathBuf>,
    /// The agent configuration file, for its waivers and its `root` and
    /// `policies` defaults.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The lowest severity whose failure or error makes the exit code 1:
    /// critical, high, medium or low.
    #[arg(long, value_name = "SEVERITY", default_value = "low", value_parser = parse_severity)]
    fail_on: Severity,
    /// Never colour the table (colour is used only on a terminal, and never
    /// when NO_COLOR is set).
    #[arg(long)]
    no_color: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// A table for people, 80 columns wide, failing rules with their details.
    Table,
    /// The hardend.report/v1 JSON document.
    Json,
    /// JUnit XML: one test suite per policy, one test case per rule.
    Junit,
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(args),
        Command::Validate { paths } => validate(&paths),
        Command::Status(a) => remote::status(a),
        Command::Report(a) => remote::report(a),
        Command::Watch(a) => remote::watch(a),
        Command::Run { config } => run_daemon(&config),
    }
}

fn print(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        // A closed pipe (`hardend check | head`) is not worth a panic.
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

fn check(args: CheckArgs) -> ExitCode {
    let opts = CheckOptions {
        root: args.root,
        policies: args.policies,
        config: args.config,
        today: None,
    };
    let report = match hardend::run_check(&opts) {
        Ok(r) => r,
        Err(e) => {
            report_error(&e);
            return ExitCode::from(2);
        }
    };
    let text = match args.format {
        Format::Table => {
            let colour = !args.no_color
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal();
            output::render_table(&report, colour)
        }
        Format::Json => match output::render_json(&report) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("hardend: {e}");
                return ExitCode::from(2);
            }
        },
        Format::Junit => output::render_junit(&report),
    };
    let printed = print(&text);
    if printed != ExitCode::SUCCESS {
        return printed;
    }
    if hardend::has_failures(&report, args.fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn run_daemon(config: &std::path::Path) -> ExitCode {
    match hardend_daemon::run(Some(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Configuration and policy errors are already `file:line:col: message`.
            eprintln!("{e}");
            ExitCode::from(1)
        }
    }
}

fn report_error(e: &CheckError) {
    match e {
        // Policy and configuration errors are already `file:line:col: message`.
        CheckError::Policy(_) | CheckError::Config(_) => eprintln!("{e}"),
        other => eprintln!("hardend: {other}"),
    }
}

fn validate(paths: &[PathBuf]) -> ExitCode {
    match hardend::validate(paths) {
        Ok(s) => print(&format!("{} policies, {} rules: ok\n", s.policies, s.rules)),
        Err(errors) => {
            let mut text = String::new();
            for e in &errors {
                text.push_str(&e.to_string());
                text.push('\n');
            }
            let _ = print(&text);
            ExitCode::from(2)
        }
    }
}
