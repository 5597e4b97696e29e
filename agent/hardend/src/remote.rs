//! `hardend status`, `report` and `watch`: clients of the running daemon's
//! local API (its Unix socket). Errors go to stderr with exit code 2.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use hardend::output;
use hardend_daemon::client::{self, ClientError, WatchEnd, WatchFormat};
use hardend_policy::Severity;

use crate::{Format, parse_severity, print};

/// Where the daemon listens.
#[derive(Debug, clap::Args)]
pub struct SocketArgs {
    /// The daemon's socket. [default: the `socket` of --config, else
    /// /run/hardend/hardend.sock]
    #[arg(long, value_name = "PATH", env = "HARDEND_SOCKET")]
    socket: Option<PathBuf>,
    /// The agent configuration file the daemon runs with, for its `socket`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

impl SocketArgs {
    fn path(&self) -> Result<PathBuf, ExitCode> {
        if let Some(socket) = &self.socket {
            return Ok(socket.clone());
        }
        match &self.config {
            Some(file) => match hardend::load_settings(file) {
                Ok(config) => Ok(config.socket),
                Err(e) => {
                    eprintln!("{e}");
                    Err(ExitCode::from(2))
                }
            },
            None => Ok(hardend_policy::config::AgentConfig::default().socket),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    socket: SocketArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    socket: SocketArgs,
    /// How to print the results.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Never colour the table.
    #[arg(long)]
    no_color: bool,
    /// Have the daemon evaluate everything now, and print that.
    #[arg(long)]
    evaluate: bool,
}

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    #[command(flatten)]
    socket: SocketArgs,
    /// Print one JSON object per event and line instead of text.
    #[arg(long)]
    json: bool,
    /// Only events of rules at or above this severity: critical, high,
    /// medium or low.
    #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
    min_severity: Option<Severity>,
}

fn fail(e: &ClientError) -> ExitCode {
    eprintln!("hardend: {e}");
    ExitCode::from(2)
}

pub fn status(args: StatusArgs) -> ExitCode {
    let socket = match args.socket.path() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let answer = client::runtime().and_then(|rt| rt.block_on(client::status(&socket)));
    let status = match answer {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if args.json {
        match serde_json::to_string_pretty(&status) {
            Ok(text) => print(&format!("{text}\n")),
            Err(e) => fail(&ClientError::Json(e)),
        }
    } else {
        print(&client::render_status(&status))
    }
}

pub fn report(args: ReportArgs) -> ExitCode {
    let socket = match args.socket.path() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let answer = client::runtime().and_then(|rt| {
        if args.evaluate {
            rt.block_on(client::evaluate(&socket))
        } else {
            rt.block_on(client::report(&socket))
        }
    });
    let report = match answer {
        Ok(r) => r,
        Err(e) => return fail(&e),
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
    print(&text)
}

pub fn watch(args: WatchArgs) -> ExitCode {
    let socket = match args.socket.path() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let format = if args.json {
        WatchFormat::Json
    } else {
        WatchFormat::Lines
    };
    let runtime = match client::runtime() {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let mut stdout = std::io::stdout().lock();
    loop {
        let ctrl_c = async {
            // Without a signal handler, only the end of the stream stops us.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let watched = runtime.block_on(client::watch(
            &socket,
            args.min_severity,
            format,
            &mut stdout,
            ctrl_c,
        ));
        match watched {
            Ok(WatchEnd::Stopped) => {
                let _ = stdout.flush();
                return ExitCode::SUCCESS;
            }
            Ok(WatchEnd::Closed) => {
                eprintln!(
                    "hardend: the daemon at {} ended the stream",
                    socket.display()
                );
                return ExitCode::from(2);
            }
            // This terminal fell behind: say so, and watch again.
            Err(ClientError::Lagged { message }) => {
                eprintln!(
                    "hardend: {message} (watching again; `hardend report` shows the current state)"
                );
            }
            Err(e) => return fail(&e),
        }
    }
}
