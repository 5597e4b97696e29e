//! `hardend run`: reads the configuration, sets up logging, builds the tokio
//! runtime, starts the daemon with the journald sink, serves the local API,
//! and turns signals into reloads (SIGHUP) and a clean stop (SIGTERM,
//! SIGINT).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hardend_policy::config::{
    AgentConfig, ConfigError, DEFAULT_CONFIG_PATH, load_config_or_default,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::Command;
use crate::api::{ApiError, ApiServer, ServeOptions};
use crate::app::{AppError, Daemon, DaemonOptions};
use crate::sd_notify::SdNotify;

/// How long the API server gets to finish after the core loop stopped.
const API_STOP_GRACE: Duration = Duration::from_secs(5);

/// Why `hardend run` could not start (or had to stop).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration file is invalid; each error is `file:line:col: message`.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Config(Vec<ConfigError>),
    /// The daemon could not start (invalid policies, unusable root or state).
    #[error(transparent)]
    Start(#[from] AppError),
    /// The local API's socket could not be set up.
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The outbox for the collector could not be opened.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    /// The metrics endpoint could not listen.
    #[error(transparent)]
    Metrics(#[from] hardend_metrics::HttpError),
    /// The runtime or the signal handlers could not be set up.
    #[error("cannot set up the daemon's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs the daemon until SIGTERM or SIGINT. `config_path` defaults to
/// `/etc/hardend/hardend.yaml`; a missing file means the defaults. Returns
/// an error only for fatal start-up problems.
pub fn run(config_path: Option<&Path>) -> Result<(), DaemonError> {
    // First of all: the YAML parser already runs on a thread of its own.
    crate::memory::configure();
    init_logging();
    let path = config_path.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    let config = load_config_or_default(path).map_err(DaemonError::Config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(4)
        .thread_name("hardend")
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    runtime.block_on(serve(config, path.to_path_buf()))
}

/// Logs (not alerts) to stderr as key=value lines; `HARDEND_LOG` sets the
/// filter (default `info`). A second call does nothing.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARDEND_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

async fn serve(config: AgentConfig, config_path: PathBuf) -> Result<(), DaemonError> {
    let notify = SdNotify::from_env();
    let socket = config.socket.clone();
    let mut sink = crate::journal::sink(config.journald);
    // With a collector, every event and snapshot is also queued durably.
    let push = match &config.collector {
        Some(collector) => {
            let outbox = crate::push::SharedOutbox::open(
                &config.state_dir,
                crate::outbox::OutboxOptions {
                    max_drift_events: collector.outbox_max_drift_events,
                    ..Default::default()
                },
            )?;
            sink = Box::new(crate::FanOut(vec![sink, Box::new(outbox.sink())]));
            Some((crate::push::PushOptions::from_config(collector), outbox))
        }
        None => None,
    };
    // Bound before the start, so an unusable address is a start-up error.
    let metrics = match config.metrics {
        Some(m) => Some(crate::metrics::Endpoint::bind(m.listen).await?),
        None => None,
    };
    // Signals are set up before the slow start so none is missed.
    let mut sigterm = signal(SignalKind::terminate()).map_err(DaemonError::Runtime)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(DaemonError::Runtime)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(DaemonError::Runtime)?;
    let daemon = tokio::task::block_in_place(|| {
        Daemon::start(DaemonOptions {
            config,
            config_path: Some(config_path),
            sink,
            notify: notify.clone(),
            metrics: metrics.as_ref().map(|m| m.metrics.clone()),
        })
    })?;
    let shared = daemon.shared();
    let (stop_tx, stop_rx) = watch::channel(false);

    let commands = shared.commands.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = sigterm.recv() => break,
                _ = sigint.recv() => break,
                _ = sighup.recv() => {
                    tracing::info!("SIGHUP: reload");
                    if commands.send(Command::Reload).await.is_err() {
                        break;
                    }
                }
            }
        }
        tracing::info!("stopping");
        let _ = stop_tx.send(true);
    });

    // Bound before READY=1, so an unusable socket is a start-up error.
    let server = ApiServer::bind(&socket, ServeOptions::standard())?;
    let api_stop = stopped(stop_rx.clone());
    let api = tokio::spawn(async move {
        if let Err(e) = server.serve(shared, api_stop).await {
            tracing::error!(error = %e, "the local API stopped");
        }
    });
    if let Some(endpoint) = metrics {
        let view = daemon.shared().view;
        let outbox = push.as_ref().map(|(_, outbox)| outbox.clone());
        tokio::spawn(endpoint.serve(view, outbox, stopped(stop_rx.clone())));
    }
    let pusher = push.map(|(options, outbox)| {
        let shared = daemon.shared();
        let stop = stopped(stop_rx.clone());
        tokio::spawn(crate::push::run_push(options, outbox, shared, stop))
    });
    // What start-up parsed and threw away (policies, the first full
    // evaluation, the API's set-up) goes back to the kernel.
    crate::memory::release_free();
    notify.ready(&daemon.status_line());
    tracing::info!(
        watched = daemon.watched_paths(),
        status = %daemon.status_line(),
        "ready"
    );
    daemon.run(stopped(stop_rx)).await?;
    if let Some(pusher) = pusher
        && tokio::time::timeout(API_STOP_GRACE, pusher).await.is_err()
    {
        tracing::warn!("the collector push did not stop in time");
    }
    if tokio::time::timeout(API_STOP_GRACE, api).await.is_err() {
        tracing::warn!("the API server did not stop in time");
    }
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(socket = %socket.display(), error = %e, "cannot remove the socket")
        }
    }
    Ok(())
}

/// Completes when the stop flag is set (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}
