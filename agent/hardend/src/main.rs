//! The `hardend` command: one-shot checks and policy validation. A thin shell
//! over the `hardend` library: parse arguments, run, print, exit.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hardend::cli::{CheckArgs, Cli, Command, Format};
use hardend::{CheckError, CheckOptions, output};

mod remote;

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
    let text = match render(&report, args.format, args.no_color) {
        Ok(t) => t,
        Err(code) => return code,
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

/// The report in `format`; the table is coloured only on a terminal, unless
/// `no_color` or NO_COLOR says otherwise.
fn render(
    report: &hardend_engine::Report,
    format: Format,
    no_color: bool,
) -> Result<String, ExitCode> {
    Ok(match format {
        Format::Table => {
            let colour = !no_color
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal();
            output::render_table(report, colour)
        }
        Format::Json => output::render_json(report).map_err(|e| {
            eprintln!("hardend: {e}");
            ExitCode::from(2)
        })?,
        Format::Junit => output::render_junit(report),
    })
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
