//! Dialling a gRPC server on a Unix socket (the agent's local API), shared by
//! the agent's own commands and `hardenctl --agent`.

use std::path::Path;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// A channel over the Unix socket at `path`, connected now (so a server that
/// is not running is reported at once), giving up after `timeout`.
pub async fn unix_channel(
    path: &Path,
    timeout: Duration,
) -> Result<Channel, tonic::transport::Error> {
    let dial = path.to_path_buf();
    // The URI is required by the HTTP/2 layer and never resolved: the
    // connector always dials the socket.
    Endpoint::from_static("http://hardend.sock")
        .connect_timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let dial = dial.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(&dial).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}
