//! The local gRPC API on a Unix socket: `hardend.v1.Agent`, `grpc.health.v1`
//! and server reflection, for root and the members of group `hardend` only
//! (checked on every call from the kernel's record of the caller, besides the
//! socket file's mode and group).
//!
//! Clients built on gRPC's C core (Python `grpcio`, C++, Ruby) must set the
//! `:authority` to `localhost` (channel option `grpc.default_authority`; for
//! grpcurl versions that send the path, `-authority localhost`): their
//! default for a `unix:` target is the percent-encoded socket path, which the
//! HTTP/2 layer under tonic rejects as malformed before any of this code
//! runs. grpc-go and tonic clients send `localhost` by themselves.

mod peer;
mod service;

use std::future::Future;
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hardend_proto::agent_server::AgentServer;
use tokio::sync::{Semaphore, watch};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::service::InterceptorLayer;
use tonic::transport::Server;
use tonic::{Request, Status};

pub use peer::{Access, Peer, PeerInfo, group_gid, lookup_group};

use crate::Shared;
use service::AgentService;

/// The group whose members may use the API besides root.
pub const API_GROUP: &str = "hardend";

/// The largest request the server decodes. Requests are tiny; this only
/// bounds what a misbehaving client can make the daemon buffer.
pub const MAX_DECODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How the API is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeOptions {
    /// Members of this group (primary or supplementary) may call besides
    /// root; the socket file is given this group. `None`: root only.
    pub allowed_gid: Option<u32>,
    /// The socket file's mode.
    pub socket_mode: u32,
    /// How long `Evaluate` waits for the core loop.
    pub evaluate_timeout: Duration,
    pub max_decoding_message_size: usize,
    /// How many `WatchDrift` streams may be open at once; more are refused
    /// with RESOURCE_EXHAUSTED, so no caller can make the daemon hold an
    /// unbounded number of subscriptions.
    pub max_watchers: usize,
}

impl ServeOptions {
    /// The production settings: group `hardend` when `/etc/group` has it,
    /// mode 0660, a 60 s evaluation timeout.
    pub fn standard() -> ServeOptions {
        ServeOptions {
            allowed_gid: lookup_group(API_GROUP),
            socket_mode: 0o660,
            evaluate_timeout: Duration::from_secs(60),
            max_decoding_message_size: MAX_DECODING_MESSAGE_SIZE,
            max_watchers: 64,
        }
    }
}

/// Why the API could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}: cannot {what}: {source}", path.display())]
    Socket {
        path: PathBuf,
        what: &'static str,
        source: io::Error,
    },
    #[error("{}: exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("{}: another process is already serving on this socket", path.display())]
    InUse { path: PathBuf },
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the local API server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

fn socket_error<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> ApiError + 'a {
    move |source| ApiError::Socket {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// A bound API socket, not yet serving. Binding first lets the daemon fail
/// at start-up (before it reports readiness) when the socket is unusable.
#[derive(Debug)]
pub struct ApiServer {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    options: ServeOptions,
}

impl ApiServer {
    /// Binds `socket`: creates its directory (0755) if missing, removes a
    /// stale socket file left by a previous run (only a socket, and only when
    /// nothing answers on it), then sets the file's mode and group.
    pub fn bind(socket: &Path, options: ServeOptions) -> Result<ApiServer, ApiError> {
        if let Some(parent) = socket.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(socket_error(parent, "create the socket's directory"))?;
        }
        remove_stale(socket)?;
        let listener = std::os::unix::net::UnixListener::bind(socket)
            .map_err(socket_error(socket, "bind the socket"))?;
        listener
            .set_nonblocking(true)
            .map_err(socket_error(socket, "make the socket non-blocking"))?;
        std::fs::set_permissions(socket, std::fs::Permissions::from_mode(options.socket_mode))
            .map_err(socket_error(socket, "set the socket's mode"))?;
        // Without the group the socket keeps the daemon's own group: only
        // root can use it, which is safe, so a failure here is not fatal (a
        // daemon not running as root may not be allowed to give it away).
        if let Some(gid) = options.allowed_gid
            && let Err(e) = std::os::unix::fs::chown(socket, None, Some(gid))
        {
            tracing::warn!(
                socket = %socket.display(),
                "cannot give the socket group {API_GROUP} (gid {gid}): {e}; its members cannot reach the API"
            );
        }
        Ok(ApiServer {
            listener,
            path: socket.to_path_buf(),
            options,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` completes, then ends open `WatchDrift`
    /// streams, waits for calls in progress, and removes the socket file.
    /// Must run inside a tokio runtime.
    pub async fn serve(
        self,
        shared: Shared,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ApiError> {
        let ApiServer {
            listener,
            path,
            options,
        } = self;
        let listener = tokio::net::UnixListener::from_std(listener)
            .map_err(socket_error(&path, "register the socket"))?;
        let incoming = UnixListenerStream::new(listener).map(|r| r.map(peer::PeerStream::new));

        let (stop_tx, stop_rx) = watch::channel(false);
        let signal = async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        };

        let agent = AgentServer::new(AgentService {
            shared,
            evaluate_timeout: options.evaluate_timeout,
            watchers: Arc::new(Semaphore::new(options.max_watchers)),
            stopping: stop_rx,
        })
        .max_decoding_message_size(options.max_decoding_message_size);
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_serving::<AgentServer<AgentService>>()
            .await;
        let health = health.max_decoding_message_size(options.max_decoding_message_size);
        let reflection_v1 = reflection()
            .build_v1()?
            .max_decoding_message_size(options.max_decoding_message_size);
        let reflection_v1alpha = reflection()
            .build_v1alpha()?
            .max_decoding_message_size(options.max_decoding_message_size);

        let access = Access {
            gid: options.allowed_gid,
        };
        let result = Server::builder()
            .layer(InterceptorLayer::new(move |request: Request<()>| {
                check_peer(access, request)
            }))
            .add_service(agent)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .serve_with_incoming_shutdown(incoming, signal)
            .await;
        remove_socket_file(&path);
        result.map_err(ApiError::from)
    }
}

/// Binds `socket` with the standard options and serves until `shutdown`.
pub async fn serve(
    socket: &Path,
    shared: Shared,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    serve_with(socket, shared, ServeOptions::standard(), shutdown).await
}

/// Binds `socket` with `options` and serves until `shutdown`.
pub async fn serve_with(
    socket: &Path,
    shared: Shared,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    ApiServer::bind(socket, options)?
        .serve(shared, shutdown)
        .await
}

fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(hardend_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Refuses every call whose caller is neither root nor in the allowed group.
fn check_peer(access: Access, request: Request<()>) -> Result<Request<()>, Status> {
    let peer = request
        .extensions()
        .get::<PeerInfo>()
        .and_then(|p| p.0.clone());
    match peer {
        Some(peer) if access.allows(&peer) => Ok(request),
        Some(peer) => {
            tracing::warn!(
                uid = peer.uid,
                gid = peer.gid,
                pid = peer.pid,
                "refused a local API call from a process outside group {API_GROUP}"
            );
            Err(Status::permission_denied(format!(
                "uid {} is neither root nor a member of group {API_GROUP}",
                peer.uid
            )))
        }
        None => Err(Status::permission_denied(
            "the caller's credentials are unknown",
        )),
    }
}

/// Removes what a previous run left at `path`: only a socket, and only when
/// nothing accepts connections on it.
fn remove_stale(path: &Path) -> Result<(), ApiError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(socket_error(path, "inspect the socket path")(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(ApiError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(ApiError::InUse {
            path: path.to_path_buf(),
        });
    }
    std::fs::remove_file(path).map_err(socket_error(path, "remove the stale socket"))
}

fn remove_socket_file(path: &Path) {
    let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if is_socket && let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("cannot remove {}: {e}", path.display());
    }
}
