//! `hardenctl`: the operator's console for the fleet (the collector's
//! Console service over mutual TLS) or for one agent (its local API on a
//! Unix socket). What it prints is made in `hardend_collector::console`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Parser;
use hardend_collector::cli::{CtlCli as Cli, CtlCommand as Command};
use hardend_collector::console::{self, agent::FindingFilter};
use hardend_collector::pki::CertKind;
use hardend_collector::tls;
use hardend_proto as pb;
use hardend_proto::agent_client::AgentClient;
use hardend_proto::console_client::ConsoleClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// The largest answer accepted (a fleet's findings run to many MiB).
const MAX_RESPONSE_SIZE: usize = 64 * 1024 * 1024;

/// How long connecting may take before the collector counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hardenctl: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hardenctl: {}", anyhow_chain(&e));
            ExitCode::from(2)
        }
    }
}

/// Where the answers come from.
enum Target {
    Collector(ConsoleClient<Channel>),
    Agent(AgentClient<Channel>),
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let target = connect(&cli).await?;
    let now = jiff::Timestamp::now();
    let mut out = std::io::stdout().lock();
    match (cli.command, target) {
        (Command::Summary, target) => {
            let summary = match target {
                Target::Collector(mut c) => c
                    .fleet_summary(pb::FleetSummaryRequest {})
                    .await
                    .map_err(|s| call_error("FleetSummary", s))?
                    .into_inner(),
                Target::Agent(mut a) => console::agent::fleet_summary(&agent_report(&mut a).await?),
            };
            if cli.json {
                print_json(&mut out, &console::summary_json(&summary))
            } else {
                print_text(&mut out, &console::summary_table(&summary))
            }
        }
        (Command::Hosts, target) => {
            let hosts = match target {
                Target::Collector(mut c) => {
                    c.list_hosts(pb::ListHostsRequest {})
                        .await
                        .map_err(|s| call_error("ListHosts", s))?
                        .into_inner()
                        .hosts
                }
                Target::Agent(mut a) => {
                    let status = agent_status(&mut a).await?;
                    vec![console::agent::host_summary(&status, &now.to_string())]
                }
            };
            if cli.json {
                print_json(&mut out, &console::hosts_json(&hosts))
            } else {
                print_text(&mut out, &console::hosts_table(&hosts, now))
            }
        }
        (Command::Host { name }, target) => {
            let host = match target {
                Target::Collector(mut c) => c
                    .get_host(pb::GetHostRequest { host: name.clone() })
                    .await
                    .map_err(|s| {
                        if s.code() == tonic::Code::NotFound {
                            anyhow!("the collector knows no host {name:?}")
                        } else {
                            call_error("GetHost", s)
                        }
                    })?
                    .into_inner(),
                Target::Agent(mut a) => {
                    let status = agent_status(&mut a).await?;
                    if status.hostname != name {
                        bail!(
                            "this agent is host {:?}, not {name:?}",
                            console::table::clean(&status.hostname)
                        );
                    }
                    let report = agent_report(&mut a).await?;
                    console::agent::host(&status, &report, &now.to_string())
                }
            };
            if cli.json {
                print_json(&mut out, &console::host_json(&host))
            } else {
                print_text(&mut out, &console::host_table(&host, now))
            }
        }
        (
            Command::Findings {
                severity,
                policy,
                rule,
                overdue,
                host,
            },
            target,
        ) => {
            let filter = FindingFilter {
                severity,
                policy,
                rule,
                overdue_only: overdue,
                host,
            };
            let findings = match target {
                Target::Collector(mut c) => {
                    c.list_findings(filter.to_request())
                        .await
                        .map_err(|s| call_error("ListFindings", s))?
                        .into_inner()
                        .findings
                }
                Target::Agent(mut a) => {
                    console::agent::findings(&agent_report(&mut a).await?, &filter)
                }
            };
            if cli.json {
                print_json(&mut out, &console::findings_json(&findings))
            } else {
                print_text(&mut out, &console::findings_table(&findings, now))
            }
        }
        (Command::Watch { severity, host }, target) => {
            let min_severity = severity.unwrap_or(pb::Severity::Unspecified);
            watch(target, min_severity, host, cli.json, &mut out).await
        }
    }
}

/// The first wait before subscribing again after the drift stream ended.
const WATCH_BACKOFF_START: Duration = Duration::from_millis(500);

/// The longest wait between two attempts to subscribe again.
const WATCH_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Prints drift events as they arrive until Ctrl-C. When the stream ends
/// or breaks (a collector restart), it subscribes again with a growing
/// pause, and says so on stderr; a refusal ends it with an error.
async fn watch(
    mut target: Target,
    min_severity: pb::Severity,
    host: Option<String>,
    json: bool,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut backoff = WATCH_BACKOFF_START;
    let mut subscribed_before = false;
    loop {
        let subscribed = tokio::select! {
            _ = &mut stop => return Ok(()),
            s = subscribe(&mut target, min_severity, &host) => s,
        };
        match subscribed {
            Ok(mut stream) => {
                if subscribed_before {
                    eprintln!(
                        "hardenctl: watching again (events in the gap are not replayed; \
                         `hardenctl findings` shows the current state)"
                    );
                }
                subscribed_before = true;
                backoff = WATCH_BACKOFF_START;
                loop {
                    let message = tokio::select! {
                        _ = &mut stop => return Ok(()),
                        m = stream.message() => m,
                    };
                    match message {
                        Ok(Some(event)) => {
                            // The agent's stream has no host filter of its own.
                            if host.as_ref().is_some_and(|h| *h != event.hostname) {
                                continue;
                            }
                            let line = if json {
                                console::drift_json(&event).to_string()
                            } else {
                                console::drift_line(&event)
                            };
                            writeln!(out, "{line}").context("cannot write the output")?;
                            out.flush().context("cannot write the output")?;
                        }
                        Ok(None) => {
                            eprintln!("hardenctl: the drift stream ended; subscribing again");
                            break;
                        }
                        Err(status) if retryable(&status) => {
                            eprintln!(
                                "hardenctl: the drift stream broke ({}: {}); subscribing again",
                                status.code(),
                                console::table::clean(status.message())
                            );
                            break;
                        }
                        Err(status) => return Err(call_error("WatchDrift", status)),
                    }
                }
            }
            Err(status) if subscribed_before && retryable(&status) => {}
            Err(status) => return Err(call_error("WatchDrift", status)),
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(WATCH_BACKOFF_MAX);
    }
}

/// Whether a failed drift stream is worth subscribing to again (a refusal
/// or a request the server does not understand is not).
fn retryable(status: &tonic::Status) -> bool {
    !matches!(
        status.code(),
        tonic::Code::Unauthenticated
            | tonic::Code::PermissionDenied
            | tonic::Code::InvalidArgument
            | tonic::Code::Unimplemented
            | tonic::Code::NotFound
    )
}

/// Opens the drift stream of the collector or the agent.
async fn subscribe(
    target: &mut Target,
    min_severity: pb::Severity,
    host: &Option<String>,
) -> Result<tonic::Streaming<pb::DriftEvent>, tonic::Status> {
    let answer = match target {
        Target::Collector(c) => {
            c.watch_drift(pb::ConsoleWatchDriftRequest {
                min_severity: min_severity.into(),
                host: host.clone().unwrap_or_default(),
            })
            .await?
        }
        Target::Agent(a) => {
            a.watch_drift(pb::WatchDriftRequest {
                min_severity: min_severity.into(),
            })
            .await?
        }
    };
    Ok(answer.into_inner())
}

fn print_json(out: &mut impl Write, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode the output")?;
    writeln!(out, "{text}").context("cannot write the output")?;
    out.flush().context("cannot write the output")
}

fn print_text(out: &mut impl Write, text: &str) -> anyhow::Result<()> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the output")
}

/// A failed call, with a hint when the server refused this console.
fn call_error(call: &str, status: tonic::Status) -> anyhow::Error {
    let hint = match status.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            " (the console needs a certificate of kind console from the collector's CA)"
        }
        tonic::Code::Unavailable => {
            " (is the server running, and does it accept this certificate?)"
        }
        _ => "",
    };
    anyhow!(
        "{call} failed: {}: {}{hint}",
        status.code(),
        console::table::clean(status.message())
    )
}

async fn agent_status(a: &mut AgentClient<Channel>) -> anyhow::Result<pb::GetStatusResponse> {
    Ok(a.get_status(pb::GetStatusRequest {})
        .await
        .map_err(|s| call_error("GetStatus", s))?
        .into_inner())
}

async fn agent_report(a: &mut AgentClient<Channel>) -> anyhow::Result<pb::Report> {
    Ok(a.get_report(pb::GetReportRequest {})
        .await
        .map_err(|s| call_error("GetReport", s))?
        .into_inner())
}

async fn connect(cli: &Cli) -> anyhow::Result<Target> {
    if let Some(agent) = &cli.agent {
        let path = agent.strip_prefix("unix:").ok_or_else(|| {
            anyhow!("--agent takes unix:PATH (for example unix:/run/hardend/hardend.sock), not {agent:?}")
        })?;
        let channel = unix_channel(Path::new(path)).await?;
        return Ok(Target::Agent(
            AgentClient::new(channel).max_decoding_message_size(MAX_RESPONSE_SIZE),
        ));
    }
    let url = cli.collector.as_deref().ok_or_else(|| {
        anyhow!(
            "no collector: give --collector https://HOST:PORT (or HARDENCTL_COLLECTOR), \
             or --agent unix:PATH for one agent"
        )
    })?;
    let uri: Uri = url
        .parse()
        .with_context(|| format!("invalid collector URL {url:?}"))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        bail!("invalid collector URL {url:?}: expected https://HOST:PORT");
    }
    let need = |value: &Option<PathBuf>, flag: &str, env: &str| {
        value
            .clone()
            .ok_or_else(|| anyhow!("{flag} FILE (or {env}) is required with --collector"))
    };
    let ca = need(&cli.ca, "--ca", "HARDENCTL_CA")?;
    let cert = need(&cli.cert, "--cert", "HARDENCTL_CERT")?;
    let key = need(&cli.key, "--key", "HARDENCTL_KEY")?;
    let config = tls::client_tls(&ca, &cert, &key, cli.server_name.as_deref())?;
    // Say at once when the certificate is of the wrong kind, rather than
    // letting the collector refuse every call.
    let identity = tls::cert_file_identity(&cert)?;
    if identity.kind != CertKind::Console {
        bail!(
            "{} is a certificate of kind {}; hardenctl needs one of kind console \
             (hardend-collector pki issue --kind console --name OPERATOR)",
            cert.display(),
            identity.kind
        );
    }
    let endpoint = Endpoint::from_shared(url.to_string())
        .with_context(|| format!("invalid collector URL {url:?}"))?
        .tls_config(config)
        .context("cannot set up TLS")?
        .connect_timeout(CONNECT_TIMEOUT);
    let channel = endpoint.connect().await.map_err(|e| {
        let reason = chain(&e);
        let hint = if reason.contains("certificate") || reason.contains("Certificate") {
            format!(
                " (is {} the CA that signed the collector's certificate, and does that \
                 certificate name the host of the URL? --server-name NAME overrides it)",
                ca.display()
            )
        } else {
            " (is hardend-collector running and listening there?)".to_string()
        };
        anyhow!("cannot reach the collector at {url}: {reason}{hint}")
    })?;
    Ok(Target::Collector(
        ConsoleClient::new(channel).max_decoding_message_size(MAX_RESPONSE_SIZE),
    ))
}

/// A channel over an agent's Unix socket, connected now so a missing agent
/// is reported at once.
async fn unix_channel(path: &Path) -> anyhow::Result<Channel> {
    hardend_proto::unix::unix_channel(path, CONNECT_TIMEOUT)
        .await
        .map_err(|e| {
            anyhow!(
                "cannot reach the agent at {}: {} (is `hardend run` running, and may this \
                 user use its socket?)",
                path.display(),
                chain(&e)
            )
        })
}

/// An error and its causes, joined with `: `, each said once (most of
/// ours already include their cause in their message).
fn anyhow_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let more = cause.to_string();
        if !text.contains(&more) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&more);
        }
    }
    text
}

/// An error and its causes, joined with `: `, each said once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}
