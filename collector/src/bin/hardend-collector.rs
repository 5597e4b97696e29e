//! `hardend-collector`: runs the fleet collector, or manages its PKI.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hardend_collector::cli::{CollectorCli as Cli, CollectorCommand as Command, PkiCommand};
use hardend_collector::config::load_config;
use hardend_collector::pki;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => run(cli.config),
        Some(Command::Run { config }) => run(config.unwrap_or(cli.config)),
        Some(Command::Pki { command }) => {
            let result = match &command {
                PkiCommand::Init { dir } => pki::init(dir).map(|()| {
                    println!(
                        "wrote {} and {}",
                        dir.join("ca.pem").display(),
                        dir.join("ca.key").display()
                    );
                }),
                PkiCommand::Issue {
                    dir,
                    kind,
                    name,
                    days,
                } => pki::issue_for_days(dir, *kind, name, *days).map(|()| {
                    let (cert, key) = pki::leaf_paths(dir, name);
                    println!(
                        "wrote {} and {} ({kind} {name})",
                        cert.display(),
                        key.display()
                    );
                }),
            };
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("hardend-collector: pki: {err}");
                    ExitCode::from(1)
                }
            }
        }
    }
}

fn run(config_path: PathBuf) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = match load_config(&config_path) {
        Ok(config) => config,
        Err(errors) => {
            for err in errors {
                eprintln!("{err}");
            }
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("hardend-collector: cannot start the runtime: {err}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let shutdown = async {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                        return;
                    }
                };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            tracing::info!("stopping");
        };
        tracing::info!(listen = %config.listen, store = %redact(&config.store), "hardend-collector starting");
        hardend_collector::server::serve(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hardend-collector: {err}");
            ExitCode::from(1)
        }
    }
}

/// The store URL without a password, for the log.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}
