//! The push to the collector: the alert sink that queues every drift event
//! and snapshot in the durable outbox, and the task that streams the outbox
//! to the collector over mutual TLS (`Collector.Connect`: a Hello, then the
//! queued messages in order, then new ones as they come), deletes only what
//! the collector acknowledged, and reconnects with exponential backoff and
//! full jitter.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hardend_policy::config::CollectorConfig;
use hardend_proto as pb;
use hardend_proto::collector_client::CollectorClient;
use tokio::sync::{Notify, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::convert::{drift_to_proto, rule_result_to_proto, view_report_to_proto};
use crate::outbox::{Outbox, OutboxError, OutboxOptions, ReplayReport};
use crate::{AgentView, AlertSink, Command, DriftEvent, DriftKind, Shared};

/// The first wait before reconnecting.
pub const BACKOFF_MIN: Duration = Duration::from_millis(500);
/// The longest wait before reconnecting.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How many queued messages are read from the outbox at a time.
const READ_BATCH: usize = 256;
/// Messages sent and not yet taken by the transport.
const SEND_BUFFER: usize = 256;
/// How long a TCP and TLS connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest message the agent sends or accepts.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Why a session with the collector ended (each one is logged, then the
/// task reconnects).
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// A certificate or key file could not be read.
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The collector's URL is not usable.
    #[error("collector url `{url}`: {reason}")]
    Url { url: String, reason: String },
    /// The connection could not be made.
    #[error("cannot connect to the collector: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// The collector refused the stream or ended it with an error.
    #[error("the collector answered: {0}")]
    Status(#[from] tonic::Status),
    /// The stream ended without an error.
    #[error("the collector closed the stream")]
    Closed,
    /// The outbox failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// The outbox's lock was poisoned by a panic elsewhere.
    #[error("the outbox lock is poisoned")]
    Poisoned,
}

/// The outbox shared by the sink (the core loop appends) and the push task
/// (which reads and acknowledges), with a wake-up for new entries.
#[derive(Debug, Clone)]
pub struct SharedOutbox {
    inner: Arc<Mutex<Outbox>>,
    appended: Arc<Notify>,
}

impl SharedOutbox {
    /// Opens the outbox in `state_dir` and logs what the replay found.
    pub fn open(state_dir: &Path, options: OutboxOptions) -> Result<SharedOutbox, OutboxError> {
        let (outbox, report) = Outbox::open(state_dir, options)?;
        let ReplayReport {
            records,
            truncated,
            deleted_segments,
        } = report;
        tracing::info!(
            records,
            truncated = truncated.len(),
            deleted_segments,
            queued = outbox.len(),
            acked = outbox.acked(),
            last_seq = outbox.last_seq(),
            "outbox opened"
        );
        Ok(SharedOutbox::new(outbox))
    }

    /// Shares an opened outbox.
    pub fn new(outbox: Outbox) -> SharedOutbox {
        SharedOutbox {
            inner: Arc::new(Mutex::new(outbox)),
            appended: Arc::new(Notify::new()),
        }
    }

    /// The outbox, locked.
    pub fn lock(&self) -> Result<MutexGuard<'_, Outbox>, PushError> {
        self.inner.lock().map_err(|_| PushError::Poisoned)
    }

    /// Appends durably and wakes the push task.
    pub fn append(&self, messages: Vec<pb::AgentMessage>) -> Result<(), PushError> {
        self.lock()?.append(messages)?;
        self.appended.notify_waiters();
        Ok(())
    }

    /// The sink that queues the core's events and snapshots here.
    pub fn sink(&self) -> OutboxSink {
        OutboxSink {
            outbox: self.clone(),
        }
    }
}

/// The alert sink that queues drift events and snapshots in the outbox.
#[derive(Debug)]
pub struct OutboxSink {
    outbox: SharedOutbox,
}

fn drift_message(event: pb::DriftEvent) -> pb::AgentMessage {
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Drift(event)),
    }
}

/// The snapshot of a view, as queued (the outbox fills `folded_events`).
pub fn snapshot_message(seq: u64, view: &AgentView) -> pb::AgentMessage {
    let first_failed_at = view
        .first_failed
        .iter()
        .map(|((policy, rule), at)| (format!("{policy}/{rule}"), at.to_string()))
        .collect();
    pb::AgentMessage {
        body: Some(pb::agent_message::Body::Snapshot(pb::Snapshot {
            seq,
            report: Some(view_report_to_proto(view)),
            first_failed_at,
            folded_events: 0,
        })),
    }
}

impl OutboxSink {
    fn queue(&mut self, messages: Vec<pb::AgentMessage>, what: &str) {
        let n = messages.len();
        if let Err(e) = self.outbox.append(messages) {
            tracing::error!(error = %e, messages = n, what, "cannot queue for the collector");
        }
    }
}

impl AlertSink for OutboxSink {
    fn drift(&mut self, event: &DriftEvent) {
        // Without a view (the core passes one through `drift_batch`): no
        // host name and no first-failed time.
        let overdue = event.kind == DriftKind::Overdue;
        let message = drift_message(pb::DriftEvent {
            seq: event.seq,
            at: event.at.to_string(),
            kind: crate::convert::kind_to_proto(event.kind).into(),
            previous: event
                .previous
                .map_or(pb::Status::Unspecified, crate::convert::status_to_proto)
                .into(),
            result: Some(rule_result_to_proto(&event.result, None, overdue)),
            hostname: String::new(),
        });
        self.queue(vec![message], "drift event");
    }

    fn policy_errors(&mut self, _errors: &[String]) {}

    fn drift_batch(&mut self, events: &[DriftEvent], view: &AgentView) {
        let messages = events
            .iter()
            .map(|e| drift_message(drift_to_proto(e, view)))
            .collect();
        self.queue(messages, "drift events");
    }

    fn wants_snapshots(&self) -> bool {
        true
    }

    fn snapshot(&mut self, seq: u64, view: &AgentView) {
        self.queue(vec![snapshot_message(seq, view)], "snapshot");
    }

    fn next_seq_floor(&self) -> u64 {
        match self.outbox.lock() {
            Ok(o) => o.last_seq().saturating_add(1),
            Err(_) => 0,
        }
    }
}

/// Where and how the push task connects.
#[derive(Debug, Clone)]
pub struct PushOptions {
    pub url: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl PushOptions {
    /// The options for the configuration's `collector:` section.
    pub fn from_config(c: &CollectorConfig) -> PushOptions {
        PushOptions {
            url: c.url.clone(),
            ca: c.ca.clone(),
            cert: c.cert.clone(),
            key: c.key.clone(),
            backoff_min: BACKOFF_MIN,
            backoff_max: BACKOFF_MAX,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, PushError> {
    std::fs::read(path).map_err(|source| PushError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The endpoint with mutual TLS, from the PEM files as they are now (so a
/// renewed certificate is used at the next connection).
fn endpoint(options: &PushOptions) -> Result<Endpoint, PushError> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(&options.ca)?))
        .identity(Identity::from_pem(
            read(&options.cert)?,
            read(&options.key)?,
        ));
    let url_err = |reason: String| PushError::Url {
        url: options.url.clone(),
        reason,
    };
    if !options.url.starts_with("https://") {
        return Err(url_err("must start with https://".to_string()));
    }
    Endpoint::from_shared(options.url.clone())
        .map_err(|e| url_err(e.to_string()))?
        .tls_config(tls)
        .map_err(|e| url_err(e.to_string()))
        .map(|e| {
            e.connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(20))
        })
}

/// A small xorshift generator for the jitter, seeded from the clock and
/// the process id (no cryptographic use).
#[derive(Debug)]
struct Jitter(u64);

impl Jitter {
    fn new() -> Jitter {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Jitter((nanos ^ (u64::from(std::process::id()) << 32)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// The wait before reconnect attempt `attempt` (0-based): uniformly random
/// up to min(max, min * 2^attempt).
pub fn backoff(attempt: u32, min: Duration, max: Duration, random: u64) -> Duration {
    let cap = min
        .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(max)
        .min(max);
    let ms = cap.as_millis().min(u128::from(u64::MAX)) as u64;
    Duration::from_millis(random % (ms + 1))
}

/// Streams the outbox to the collector until `shutdown` completes,
/// reconnecting after every failure.
pub async fn run_push(
    options: PushOptions,
    outbox: SharedOutbox,
    shared: Shared,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let (ack_tx, ack_rx) = watch::channel(0u64);
    let acker = tokio::spawn(acker(outbox.clone(), ack_rx));
    let mut jitter = Jitter::new();
    let mut attempt: u32 = 0;
    loop {
        let mut progressed = false;
        let result = tokio::select! {
            () = &mut shutdown => break,
            r = session(&options, &outbox, &shared, &ack_tx, &mut progressed) => r,
        };
        if progressed {
            attempt = 0;
        }
        let wait = backoff(
            attempt,
            options.backoff_min,
            options.backoff_max,
            jitter.next(),
        );
        attempt = attempt.saturating_add(1);
        match result {
            Ok(()) => tracing::info!("collector stream ended"),
            Err(e) => tracing::warn!(
                error = %e,
                retry_in_ms = wait.as_millis() as u64,
                "collector push failed; reconnecting"
            ),
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    drop(ack_tx);
    let _ = acker.await;
}

/// Writes acknowledgements to the outbox, the latest one each time (so a
/// burst of acks costs one fsync).
async fn acker(outbox: SharedOutbox, mut acks: watch::Receiver<u64>) {
    while acks.changed().await.is_ok() {
        let seq = *acks.borrow_and_update();
        let outbox = outbox.clone();
        let result =
            tokio::task::spawn_blocking(move || outbox.lock().and_then(|mut o| Ok(o.ack(seq)?)))
                .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, seq, "cannot record an acknowledgement"),
            Err(e) => tracing::error!(error = %e, "the acknowledgement writer failed"),
        }
    }
}

fn seq_of(message: &pb::AgentMessage) -> u64 {
    match &message.body {
        Some(pb::agent_message::Body::Drift(d)) => d.seq,
        Some(pb::agent_message::Body::Snapshot(s)) => s.seq,
        _ => 0,
    }
}

/// One connection: Hello, then the outbox in order, acknowledgements back.
async fn session(
    options: &PushOptions,
    outbox: &SharedOutbox,
    shared: &Shared,
    acks: &watch::Sender<u64>,
    progressed: &mut bool,
) -> Result<(), PushError> {
    let channel: Channel = endpoint(options)?
        .connect()
        .await
        .map_err(PushError::Connect)?;
    let view = shared.view.borrow().clone();
    // Resume after the last acknowledgement, even one the acker has not
    // written yet.
    let (last_seq, mut sent) = {
        let o = outbox.lock()?;
        (o.last_seq(), o.acked().max(*acks.borrow()))
    };
    let hello = pb::Hello {
        host: view.hostname.clone(),
        agent_version: env!("CARGO_PKG_VERSION").to_string(),
        policies: view
            .policies
            .iter()
            .map(|p| pb::PolicyRef {
                id: p.id.clone(),
                version: p.version.clone(),
            })
            .collect(),
        last_seq,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(SEND_BUFFER);
    // The collector reads the Hello before it answers the call.
    tx.send(pb::AgentMessage {
        body: Some(pb::agent_message::Body::Hello(hello)),
    })
    .await
    .map_err(|_| PushError::Closed)?;
    let mut client = CollectorClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut inbound = client.connect(ReceiverStream::new(rx)).await?.into_inner();
    tracing::info!(url = %options.url, host = %view.hostname, queued_after = sent, "connected to the collector");
    *progressed = true;
    // A fresh snapshot goes to the end of the queue, after what waits.
    if shared.commands.try_send(Command::Snapshot).is_err() {
        tracing::debug!("the core is busy; the next full rescan sends a snapshot");
    }

    tokio::select! {
        r = send_queued(outbox, &tx, &mut sent) => r,
        r = receive_acks(&mut inbound, acks) => r,
    }
}

/// Sends what the outbox holds after `sent`, in order, then new entries as
/// they are appended. Returns only on an error.
async fn send_queued(
    outbox: &SharedOutbox,
    tx: &tokio::sync::mpsc::Sender<pb::AgentMessage>,
    sent: &mut u64,
) -> Result<(), PushError> {
    loop {
        let notified = outbox.appended.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch = outbox.lock()?.read_after(*sent, READ_BATCH)?;
        if batch.is_empty() {
            notified.await;
            continue;
        }
        for message in batch {
            let seq = seq_of(&message);
            tx.send(message).await.map_err(|_| PushError::Closed)?;
            *sent = seq;
        }
    }
}

/// Passes the collector's acknowledgements on to the acker. Returns only
/// when the stream ends.
async fn receive_acks(
    inbound: &mut tonic::Streaming<pb::CollectorMessage>,
    acks: &watch::Sender<u64>,
) -> Result<(), PushError> {
    loop {
        match inbound.message().await? {
            Some(pb::CollectorMessage {
                body: Some(pb::collector_message::Body::Ack(pb::Ack { seq })),
            }) => {
                acks.send_if_modified(|current| {
                    if seq > *current {
                        *current = seq;
                        true
                    } else {
                        false
                    }
                });
            }
            Some(_) => {}
            None => return Err(PushError::Closed),
        }
    }
}
