//! `hardend status`, `report` and `watch`: clients of the running daemon's
//! local API (its Unix socket). Errors go to stderr with exit code 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use hardend::cli::{ReportArgs, SocketArgs, StatusArgs, WatchArgs};
use hardend_daemon::client::{self, ClientError, WatchEnd, WatchFormat};

use crate::{print, render};

/// The daemon's socket: --socket, else the `socket` of --config, else the
/// default.
fn socket_path(args: &SocketArgs) -> Result<PathBuf, ExitCode> {
    if let Some(socket) = &args.socket {
        return Ok(socket.clone());
    }
    match &args.config {
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

fn fail(e: &ClientError) -> ExitCode {
    eprintln!("hardend: {e}");
    ExitCode::from(2)
}

pub fn status(args: StatusArgs) -> ExitCode {
    let socket = match socket_path(&args.socket) {
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
    let socket = match socket_path(&args.socket) {
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
    match render(&report, args.format, args.no_color) {
        Ok(text) => print(&text),
        Err(code) => code,
    }
}

pub fn watch(args: WatchArgs) -> ExitCode {
    let socket = match socket_path(&args.socket) {
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
