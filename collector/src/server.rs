//! The collector's gRPC server over TCP and mutual TLS: the `Collector`
//! service that agents push to (identity from the client certificate, each
//! stored message acknowledged in order), the read-only `Console` service,
//! health and reflection.
//!
//! The push protocol, as the agent sees it: open `Connect` with a client
//! certificate of kind agent and send `Hello` first (its `host` must be the
//! certificate's name, or the call fails with PERMISSION_DENIED). When the
//! collector already holds messages of this host it answers at once with
//! `Ack { seq: highest stored }`. Then every `Snapshot` and `Drift` is
//! answered by `Ack { seq }` in the order sent, after its transaction
//! committed; a (host, seq) stored before (seq not above the host's
//! high-water mark) is acknowledged and ignored, so sequence numbers start
//! at 1 and must increase. An agent whose `Hello.last_seq` is below the
//! stored high-water mark has lost its state, and the mark is lowered to it.
//! A message over `max_message_bytes` ends the stream with an error.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hardend_proto::collector_server::{Collector, CollectorServer};
use hardend_proto::console_server::{Console, ConsoleServer};
use hardend_proto::{
    Ack, AgentMessage, CollectorMessage, ConsoleWatchDriftRequest, DriftEvent, FleetSummaryRequest,
    FleetSummaryResponse, GetHostRequest, GetHostResponse, ListFindingsRequest,
    ListFindingsResponse, ListHostsRequest, ListHostsResponse, agent_message, collector_message,
};
use jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status, Streaming};

use crate::config::CollectorConfig;
use crate::metrics::{CollectorExposition, CollectorMetrics, Ingest, Reject, StoreOp};
use crate::pki::CertKind;
use crate::store::{PendingWrite, Store, StoreError};
use crate::tls::{TlsError, peer_identity};

/// How long an agent has to send its Hello after opening the stream.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);
/// How many of one agent's messages may be in flight (stored, not yet acked).
const IN_FLIGHT: usize = 1024;

/// Why the collector could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum CollectorError {
    #[error("TLS: {0}")]
    Tls(#[from] TlsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error(transparent)]
    Metrics(#[from] hardend_metrics::HttpError),
}

/// Opens the store, binds `config.listen` and serves until `shutdown`.
pub async fn serve(
    config: CollectorConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CollectorError> {
    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| CollectorError::Listen {
                addr: config.listen,
                source,
            })?;
    let store = Store::open(&config.store, config.deadlines.clone()).await?;
    serve_with(config, store, listener, shutdown).await
}

/// Serves on an already bound listener with an already open store (tests
/// bind port 0 and read the address first).
pub async fn serve_with(
    config: CollectorConfig,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), CollectorError> {
    let tls = crate::tls::server_tls(&config.tls.ca, &config.tls.cert, &config.tls.key)?;
    let limit = config.max_message_bytes;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<CollectorServer<CollectorService>>()
        .await;
    health_reporter
        .set_serving::<ConsoleServer<ConsoleService>>()
        .await;
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(hardend_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1()?.max_decoding_message_size(limit);
    let reflection_v1alpha = reflection()
        .build_v1alpha()?
        .max_decoding_message_size(limit);
    let metrics = Arc::new(CollectorMetrics::new());
    // The metrics endpoint, when configured, stops when the server does.
    let (metrics_stop, metrics_stopped) = oneshot::channel::<()>();
    if let Some(m) = config.metrics {
        let exporter = hardend_metrics::Exporter::bind(m.listen).await?;
        let exposition = Arc::new(CollectorExposition::new(metrics.clone(), store.clone()));
        tokio::spawn(exporter.serve(exposition, async move {
            let _ = metrics_stopped.await;
        }));
    }
    let collector = CollectorService {
        store: store.clone(),
        connections: Arc::new(Mutex::new(HashMap::new())),
        metrics: metrics.clone(),
    };
    let console = ConsoleService { store, metrics };
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .tls_config(tls)?
        .concurrency_limit_per_connection(256)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .add_service(
            CollectorServer::new(collector)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .add_service(
            ConsoleServer::new(console)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(usize::MAX),
        )
        .add_service(health.max_decoding_message_size(limit))
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    let _ = metrics_stop.send(());
    Ok(())
}

fn internal(err: StoreError) -> Status {
    tracing::error!(error = %err, "store failure");
    Status::internal(format!("store: {err}"))
}

/// The `Collector` service.
#[derive(Clone)]
pub struct CollectorService {
    store: Store,
    /// Live streams per host, so that a host is marked disconnected only
    /// when its last stream ends.
    connections: Arc<Mutex<HashMap<String, usize>>>,
    metrics: Arc<CollectorMetrics>,
}

impl CollectorService {
    fn opened(&self, host: &str) {
        if let Ok(mut map) = self.connections.lock() {
            *map.entry(host.to_string()).or_insert(0) += 1;
        }
    }

    /// True when this was the host's last live stream.
    fn closed(&self, host: &str) -> bool {
        let Ok(mut map) = self.connections.lock() else {
            return true;
        };
        match map.get_mut(host) {
            Some(n) if *n > 1 => {
                *n -= 1;
                false
            }
            _ => {
                map.remove(host);
                true
            }
        }
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<CollectorMessage, Status>> + Send>>;
type DriftStream = Pin<Box<dyn Stream<Item = Result<DriftEvent, Status>> + Send>>;

fn ack(seq: u64) -> CollectorMessage {
    CollectorMessage {
        body: Some(collector_message::Body::Ack(Ack { seq })),
    }
}

#[tonic::async_trait]
impl Collector for CollectorService {
    type ConnectStream = AckStream;

    async fn connect(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let identity = peer_identity(&request)?;
        if identity.kind != CertKind::Agent {
            self.metrics.rejected(Reject::NotAgentCertificate);
            return Err(Status::permission_denied(format!(
                "a {} certificate may not report; only agent certificates may",
                identity.kind
            )));
        }
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| {
                self.metrics.rejected(Reject::NoHello);
                Status::deadline_exceeded("no Hello within 30 s")
            })?
            .inspect_err(|status| {
                if status.code() == tonic::Code::OutOfRange {
                    self.metrics.rejected(Reject::TooLarge);
                }
            })?;
        let hello = match first.and_then(|m| m.body) {
            Some(agent_message::Body::Hello(hello)) => hello,
            _ => {
                self.metrics.rejected(Reject::NoHello);
                return Err(Status::invalid_argument(
                    "the first message must be a Hello",
                ));
            }
        };
        if hello.host != identity.name {
            self.metrics.rejected(Reject::HostMismatch);
            tracing::warn!(
                certificate = identity.name.as_str(),
                claimed = hello.host.as_str(),
                "refused a Hello for another host"
            );
            return Err(Status::permission_denied(format!(
                "this certificate is for host `{}`, not `{}`",
                identity.name, hello.host
            )));
        }
        let host = identity.name;
        let stored = self
            .metrics
            .timed(StoreOp::Hello, self.store.hello(&hello, Timestamp::now()))
            .await
            .map_err(|err| {
                self.metrics.rejected(Reject::StoreFailure);
                internal(err)
            })?;
        self.metrics.ingested(Ingest::Hello);
        self.opened(&host);
        tracing::info!(
            host = host.as_str(),
            agent_version = hello.agent_version.as_str(),
            stored_seq = stored,
            "agent connected"
        );

        let (out_tx, out_rx) = mpsc::channel::<Result<CollectorMessage, Status>>(IN_FLIGHT);
        let (pending_tx, mut pending_rx) =
            mpsc::channel::<(u64, Ingest, Result<PendingWrite, Status>)>(IN_FLIGHT);
        if stored > 0 {
            // Tell the agent at once what is already stored, so it can drop
            // what it would otherwise resend.
            let _ = out_tx.send(Ok(ack(stored))).await;
        }

        // The acker: answers each message in order once its commit is done.
        let acker_out = out_tx.clone();
        let (acker_done_tx, acker_done_rx) = oneshot::channel::<()>();
        let metrics = self.metrics.clone();
        tokio::spawn(async move {
            while let Some((seq, kind, pending)) = pending_rx.recv().await {
                let result = match pending {
                    Ok(pending) => match metrics.timed(StoreOp::Commit, pending.stored()).await {
                        Ok(_) => {
                            metrics.ingested(kind);
                            Ok(())
                        }
                        Err(err) => {
                            metrics.rejected(Reject::StoreFailure);
                            Err(internal(err))
                        }
                    },
                    Err(status) => Err(status),
                };
                let message = match result {
                    Ok(_) => Ok(ack(seq)),
                    Err(status) => Err(status),
                };
                let failed = message.is_err();
                if acker_out.send(message).await.is_err() || failed {
                    break;
                }
            }
            let _ = acker_done_tx.send(());
        });

        // The reader: queues each message for the writer as it arrives.
        let service = self.clone();
        tokio::spawn(async move {
            loop {
                let message = match inbound.message().await {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(status) => {
                        if status.code() == tonic::Code::OutOfRange {
                            service.metrics.rejected(Reject::TooLarge);
                        }
                        tracing::info!(host = host.as_str(), error = %status, "agent stream ended with an error");
                        let _ = out_tx.send(Err(status)).await;
                        break;
                    }
                };
                let now = Timestamp::now();
                let metrics = &service.metrics;
                let queued = match message.body {
                    Some(agent_message::Body::Snapshot(snapshot)) => Some((
                        snapshot.seq,
                        Ingest::Snapshot,
                        metrics
                            .timed(
                                StoreOp::QueueSnapshot,
                                service.store.queue_snapshot(&host, &snapshot, now),
                            )
                            .await,
                    )),
                    Some(agent_message::Body::Drift(event)) => Some((
                        event.seq,
                        Ingest::Drift,
                        metrics
                            .timed(
                                StoreOp::QueueDrift,
                                service.store.queue_drift(&host, &event, now),
                            )
                            .await,
                    )),
                    Some(agent_message::Body::Hello(_)) => {
                        metrics.rejected(Reject::SecondHello);
                        tracing::warn!(host = host.as_str(), "ignored a second Hello");
                        None
                    }
                    None => None,
                };
                let Some((seq, kind, queued)) = queued else {
                    continue;
                };
                let queued = queued.map_err(|err| match err {
                    StoreError::Incomplete(what) => {
                        metrics.rejected(Reject::Incomplete);
                        Status::invalid_argument(what)
                    }
                    other => {
                        metrics.rejected(Reject::StoreFailure);
                        internal(other)
                    }
                });
                let failed = queued.is_err();
                if pending_tx.send((seq, kind, queued)).await.is_err() || failed {
                    break;
                }
            }
            drop(pending_tx);
            // Every queued message is answered before the host is marked gone.
            let _ = acker_done_rx.await;
            if service.closed(&host)
                && let Err(err) = service
                    .metrics
                    .timed(
                        StoreOp::SetConnected,
                        service.store.set_connected(&host, false, Timestamp::now()),
                    )
                    .await
            {
                tracing::warn!(host = host.as_str(), error = %err, "cannot mark the host disconnected");
            }
            tracing::info!(host = host.as_str(), "agent disconnected");
        });

        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }
}

/// The read-only `Console` service.
#[derive(Clone)]
pub struct ConsoleService {
    store: Store,
    metrics: Arc<CollectorMetrics>,
}

fn console_only<T>(request: &Request<T>) -> Result<(), Status> {
    let identity = peer_identity(request)?;
    if identity.kind != CertKind::Console {
        return Err(Status::permission_denied(format!(
            "a {} certificate may not use the console API",
            identity.kind
        )));
    }
    Ok(())
}

#[tonic::async_trait]
impl Console for ConsoleService {
    type WatchDriftStream = DriftStream;

    async fn fleet_summary(
        &self,
        request: Request<FleetSummaryRequest>,
    ) -> Result<Response<FleetSummaryResponse>, Status> {
        console_only(&request)?;
        let summary = self
            .metrics
            .timed(
                StoreOp::FleetSummary,
                self.store.fleet_summary(Timestamp::now()),
            )
            .await
            .map_err(internal)?;
        Ok(Response::new(summary))
    }

    async fn list_hosts(
        &self,
        request: Request<ListHostsRequest>,
    ) -> Result<Response<ListHostsResponse>, Status> {
        console_only(&request)?;
        let hosts = self
            .metrics
            .timed(StoreOp::ListHosts, self.store.list_hosts(Timestamp::now()))
            .await
            .map_err(internal)?;
        Ok(Response::new(ListHostsResponse { hosts }))
    }

    async fn get_host(
        &self,
        request: Request<GetHostRequest>,
    ) -> Result<Response<GetHostResponse>, Status> {
        console_only(&request)?;
        let name = request.into_inner().host;
        match self
            .metrics
            .timed(
                StoreOp::GetHost,
                self.store.get_host(&name, Timestamp::now()),
            )
            .await
            .map_err(internal)?
        {
            Some(host) => Ok(Response::new(host)),
            None => Err(Status::not_found(format!("no host `{name}`"))),
        }
    }

    async fn list_findings(
        &self,
        request: Request<ListFindingsRequest>,
    ) -> Result<Response<ListFindingsResponse>, Status> {
        console_only(&request)?;
        let findings = self
            .metrics
            .timed(
                StoreOp::ListFindings,
                self.store
                    .list_findings(request.get_ref(), Timestamp::now()),
            )
            .await
            .map_err(internal)?;
        Ok(Response::new(ListFindingsResponse { findings }))
    }

    async fn watch_drift(
        &self,
        request: Request<ConsoleWatchDriftRequest>,
    ) -> Result<Response<Self::WatchDriftStream>, Status> {
        console_only(&request)?;
        let filter = request.into_inner();
        let mut events = self.store.subscribe_drift();
        let (tx, rx) = mpsc::channel::<Result<DriftEvent, Status>>(256);
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "a console fell behind the live drift stream");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                if !filter.host.is_empty() && event.hostname != filter.host {
                    continue;
                }
                let severity = event.result.as_ref().map(|r| r.severity).unwrap_or(0);
                if filter.min_severity != 0 && severity < filter.min_severity {
                    continue;
                }
                if tx.send(Ok(event)).await.is_err() {
                    break;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
