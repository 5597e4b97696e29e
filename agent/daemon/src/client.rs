//! The client side of the local API, used by `hardend status`, `report` and
//! `watch`: connecting over the Unix socket, the three calls, and how their
//! answers are printed for people.

use std::fmt::Write as _;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardend_engine::Report;
use hardend_policy::Severity;
use hardend_proto as pb;
use hardend_proto::agent_client::AgentClient;
use tonic::transport::Channel;

use crate::DriftKind;
use crate::convert::{self, AgentStatus, ConvertError, RemoteDrift};

/// The largest answer the client accepts (a report of thousands of rules is
/// a few MiB; tonic's default of 4 MiB is too tight).
pub const MAX_RESPONSE_SIZE: usize = 64 * 1024 * 1024;

/// How long connecting may take: the socket is local, so this only matters
/// when the daemon hangs without accepting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long `status` and `report` wait for their answer (the daemon answers
/// them from memory).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a call to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the hardend daemon at {}: {reason} ({hint})", path.display())]
    Connect {
        path: PathBuf,
        reason: String,
        hint: &'static str,
    },
    #[error("the hardend daemon refused {call}: {}", .status.message())]
    Denied {
        call: &'static str,
        status: tonic::Status,
    },
    /// The client read drift events too slowly and the daemon dropped some
    /// for it; the message says how many.
    #[error("{message}")]
    Lagged { message: String },
    #[error("{call} failed: {}: {}", .status.code(), .status.message())]
    Call {
        call: &'static str,
        status: tonic::Status,
    },
    #[error("the daemon sent an answer this hardend cannot read: {0}")]
    Convert(#[from] ConvertError),
    #[error("cannot start the client runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
    #[error("cannot encode the output as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

impl ClientError {
    fn call(call: &'static str, status: tonic::Status) -> ClientError {
        if status.code() == tonic::Code::PermissionDenied {
            ClientError::Denied { call, status }
        } else {
            ClientError::Call { call, status }
        }
    }
}

/// An error and every cause below it, joined with `: `.
fn chain(error: &dyn std::error::Error) -> String {
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

/// Connects to the daemon's socket. The connection is made here, so a
/// daemon that is not running is reported at once.
pub async fn connect(socket: &Path) -> Result<AgentClient<Channel>, ClientError> {
    Ok(AgentClient::new(channel(socket).await?).max_decoding_message_size(MAX_RESPONSE_SIZE))
}

/// A gRPC channel over the daemon's socket, for any of its services
/// (`hardend.v1.Agent`, `grpc.health.v1.Health`, reflection).
pub async fn channel(socket: &Path) -> Result<Channel, ClientError> {
    let path = socket.to_path_buf();
    let channel = hardend_proto::unix::unix_channel(socket, CONNECT_TIMEOUT)
        .await
        .map_err(|e| {
            let denied =
                find_io_error(&e).is_some_and(|k| k == std::io::ErrorKind::PermissionDenied);
            ClientError::Connect {
                path,
                reason: chain(&e),
                hint: if denied {
                    "only root and members of group hardend may use it"
                } else {
                    "is `hardend run` running?"
                },
            }
        })?;
    Ok(channel)
}

fn find_io_error(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut cur = Some(error);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        cur = e.source();
    }
    None
}

fn timed_out() -> tonic::Status {
    tonic::Status::deadline_exceeded(format!(
        "the daemon did not answer within {} s",
        CALL_TIMEOUT.as_secs()
    ))
}

/// The daemon's state (`GetStatus`).
pub async fn status(socket: &Path) -> Result<AgentStatus, ClientError> {
    let mut client = connect(socket).await?;
    let answer = tokio::time::timeout(CALL_TIMEOUT, client.get_status(pb::GetStatusRequest {}))
        .await
        .map_err(|_| ClientError::call("GetStatus", timed_out()))?
        .map_err(|s| ClientError::call("GetStatus", s))?;
    Ok(convert::status_from_response(answer.into_inner()))
}

/// The daemon's current results (`GetReport`), as a `hardend.report/v1` report.
pub async fn report(socket: &Path) -> Result<Report, ClientError> {
    let mut client = connect(socket).await?;
    let answer = tokio::time::timeout(CALL_TIMEOUT, client.get_report(pb::GetReportRequest {}))
        .await
        .map_err(|_| ClientError::call("GetReport", timed_out()))?
        .map_err(|s| ClientError::call("GetReport", s))?;
    Ok(convert::report_from_proto(answer.into_inner())?)
}

/// Has the daemon evaluate everything now (`Evaluate`) and returns the new
/// report. Waits as long as the daemon allows an evaluation (its own timeout
/// answers DEADLINE_EXCEEDED).
pub async fn evaluate(socket: &Path) -> Result<Report, ClientError> {
    let mut client = connect(socket).await?;
    let answer = client
        .evaluate(pb::EvaluateRequest {})
        .await
        .map_err(|s| ClientError::call("Evaluate", s))?;
    Ok(convert::report_from_proto(answer.into_inner())?)
}

/// How `watch` prints each event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchFormat {
    /// One human line per event.
    Lines,
    /// One JSON object per line.
    Json,
}

/// Why `watch` returned without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEnd {
    /// `stop` completed.
    Stopped,
    /// The daemon ended the stream (it is shutting down).
    Closed,
}

/// Streams drift events at or above `min_severity` to `out` as they arrive,
/// until `stop` completes (Ctrl-C) or the daemon ends the stream. Each event
/// is flushed at once, so a pipe sees it without delay.
pub async fn watch(
    socket: &Path,
    min_severity: Option<Severity>,
    format: WatchFormat,
    out: &mut impl Write,
    stop: impl Future<Output = ()>,
) -> Result<WatchEnd, ClientError> {
    let mut client = connect(socket).await?;
    let request = pb::WatchDriftRequest {
        min_severity: min_severity
            .map_or(pb::Severity::Unspecified, convert::severity_to_proto)
            .into(),
    };
    let mut stream = client
        .watch_drift(request)
        .await
        .map_err(|s| ClientError::call("WatchDrift", s))?
        .into_inner();
    tokio::pin!(stop);
    loop {
        let message = tokio::select! {
            _ = &mut stop => return Ok(WatchEnd::Stopped),
            m = stream.message() => m.map_err(|s| {
                if s.code() == tonic::Code::ResourceExhausted {
                    ClientError::Lagged { message: s.message().to_string() }
                } else {
                    ClientError::call("WatchDrift", s)
                }
            })?,
        };
        let Some(message) = message else {
            return Ok(WatchEnd::Closed);
        };
        let drift = convert::drift_from_proto(message)?;
        let mut line = match format {
            WatchFormat::Lines => drift_line(&drift),
            WatchFormat::Json => serde_json::to_string(&drift)?,
        };
        line.push('\n');
        out.write_all(line.as_bytes())
            .and_then(|_| out.flush())
            .map_err(ClientError::Output)?;
    }
}

/// Replaces control characters (a hostile file's escape sequences must not
/// reach the terminal) with `?`, and tabs and newlines with a space.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// One human line for a drift event:
/// `<time> <host> <KIND> <severity> <policy>/<rule> <previous> -> <status>: <title> (actual: .., expected: ..)`.
pub fn drift_line(drift: &RemoteDrift) -> String {
    let event = &drift.event;
    let r = &event.result;
    let kind = match event.kind {
        DriftKind::Failing => "FAILING",
        DriftKind::Passing => "PASSING",
        DriftKind::Error => "ERROR",
        DriftKind::Overdue => "OVERDUE",
    };
    let previous = event.previous.map_or("new", |s| s.as_str());
    let mut line = format!(
        "{} {} {kind} {} {}/{} {previous} -> {}: {}",
        event.at,
        printable(&drift.hostname),
        r.severity,
        printable(&r.policy),
        printable(&r.rule),
        r.status,
        printable(&r.title),
    );
    let mut details = Vec::new();
    if let Some(actual) = &r.actual {
        details.push(format!("actual: {}", printable(actual)));
    }
    if let Some(expected) = &r.expected {
        details.push(format!("expected: {}", printable(expected)));
    }
    if let Some(message) = &r.message {
        details.push(printable(message));
    }
    if let Some(since) = &drift.first_failed_at {
        details.push(format!("failing since {}", printable(since)));
    }
    if !details.is_empty() {
        let _ = write!(line, " ({})", details.join(", "));
    }
    line
}

/// `hardend status` for people.
pub fn render_status(s: &AgentStatus) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "hardend {} on {} (root {})",
        printable(&s.agent_version),
        printable(&s.hostname),
        printable(&s.root)
    );
    let _ = writeln!(out, "running since      {}", printable(&s.started_at));
    let _ = writeln!(
        out,
        "last full scan     {}",
        s.last_full_scan_at
            .as_deref()
            .map_or_else(|| "not yet".to_string(), printable)
    );
    let policies: Vec<String> = s
        .policies
        .iter()
        .map(|p| format!("{} {}", printable(&p.id), printable(&p.version)))
        .collect();
    let _ = writeln!(
        out,
        "policies           {}",
        if policies.is_empty() {
            "none".to_string()
        } else {
            policies.join(", ")
        }
    );
    let m = &s.summary;
    let _ = writeln!(
        out,
        "rules              {} total: {} pass, {} fail, {} error, {} n/a, {} waived",
        m.total, m.pass, m.fail, m.error, m.not_applicable, m.waived
    );
    let _ = writeln!(out, "overdue            {}", s.overdue);
    let _ = writeln!(out, "drift events       {} since start", s.drift_events);
    if !s.policy_errors.is_empty() {
        let _ = writeln!(out, "refused policies (the last good ones stay in force):");
        for e in &s.policy_errors {
            let _ = writeln!(out, "  {}", printable(e));
        }
    }
    out
}

/// A single-threaded runtime for the CLI's calls.
pub fn runtime() -> Result<tokio::runtime::Runtime, ClientError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ClientError::Runtime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardend_engine::{RuleResult, Status, Summary};

    fn drift() -> RemoteDrift {
        RemoteDrift {
            hostname: "web-1".into(),
            event: crate::DriftEvent {
                seq: 3,
                at: "2026-11-22T10:00:00Z".parse().expect("timestamp"),
                kind: DriftKind::Failing,
                previous: Some(Status::Pass),
                result: RuleResult {
                    policy: "linux-baseline-ssh".into(),
                    rule: "ssh-password-auth-disabled".into(),
                    title: "SSH password authentication is disabled".into(),
                    severity: Severity::Critical,
                    status: Status::Fail,
                    waived_status: None,
                    expected: Some("passwordauthentication = no".into()),
                    actual: Some("yes\u{1b}[2J".into()),
                    evidence: vec![],
                    message: None,
                },
            },
            first_failed_at: Some("2026-11-22T09:59:59Z".into()),
            overdue: false,
        }
    }

    #[test]
    fn drift_line_is_one_clean_line() {
        assert_eq!(
            drift_line(&drift()),
            "2026-11-22T10:00:00Z web-1 FAILING critical linux-baseline-ssh/ssh-password-auth-disabled \
             pass -> fail: SSH password authentication is disabled \
             (actual: yes?[2J, expected: passwordauthentication = no, failing since 2026-11-22T09:59:59Z)"
        );
        let mut new = drift();
        new.event.previous = None;
        new.event.kind = DriftKind::Passing;
        new.event.result.status = Status::Pass;
        new.event.result.actual = None;
        new.event.result.expected = None;
        new.first_failed_at = None;
        assert!(
            drift_line(&new).ends_with("PASSING critical linux-baseline-ssh/ssh-password-auth-disabled new -> pass: SSH password authentication is disabled"),
            "{}",
            drift_line(&new)
        );
    }

    #[test]
    fn status_text_names_everything() {
        let s = AgentStatus {
            hostname: "web-1".into(),
            agent_version: "0.1.0".into(),
            root: "/".into(),
            started_at: "2026-11-22T09:00:00Z".into(),
            last_full_scan_at: None,
            summary: Summary {
                total: 3,
                pass: 1,
                fail: 1,
                error: 1,
                not_applicable: 0,
                waived: 0,
            },
            overdue: 1,
            policies: vec![],
            policy_errors: vec!["/etc/hardend/policies.d/x.yaml:1:1: bad".into()],
            drift_events: 4,
        };
        let text = render_status(&s);
        assert!(
            text.starts_with("hardend 0.1.0 on web-1 (root /)\n"),
            "{text}"
        );
        assert!(text.contains("last full scan     not yet\n"), "{text}");
        assert!(text.contains("policies           none\n"), "{text}");
        assert!(
            text.contains("rules              3 total: 1 pass, 1 fail, 1 error, 0 n/a, 0 waived\n"),
            "{text}"
        );
        assert!(text.contains("overdue            1\n"), "{text}");
        assert!(
            text.ends_with("  /etc/hardend/policies.d/x.yaml:1:1: bad\n"),
            "{text}"
        );
    }
}
