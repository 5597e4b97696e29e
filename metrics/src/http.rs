//! The exporter: a small HTTP/1.1 server for `GET /metrics` (404 for any
//! other path), built to be left running next to a daemon: at most
//! [`MAX_CONNECTIONS`] at once (more are closed at once), request heads
//! bounded by [`MAX_REQUEST_HEAD_BYTES`] and read within
//! [`HEADER_TIMEOUT`], and no connection kept longer than
//! [`CONNECTION_LIFETIME`], so a slow client cannot pin the process.
//! It is plain HTTP without authentication: an address other than loopback
//! is served, but with a warning.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Connections served at once; more are closed as soon as accepted.
pub const MAX_CONNECTIONS: usize = 8;
/// The largest request head (request line and headers) read.
pub const MAX_REQUEST_HEAD_BYTES: usize = 8192;
/// How long a client has to send a request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is kept, keep-alive included.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(30);
/// The path served.
pub const METRICS_PATH: &str = "/metrics";

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("metrics: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What the exporter serves: one exposition in the text format, made anew
/// for each scrape.
pub trait Exposition: Send + Sync + 'static {
    fn render(&self) -> impl Future<Output = String> + Send;
}

/// A bound exporter, not serving yet.
#[derive(Debug)]
pub struct Exporter {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Exporter {
    /// Binds `addr` (port 0 picks a free port) and logs the address bound,
    /// with a warning when it is not a loopback address.
    pub async fn bind(addr: SocketAddr) -> Result<Exporter, HttpError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| HttpError::Bind { addr, source })?;
        if !bound.ip().is_loopback() {
            tracing::warn!(
                listen = %bound,
                "the metrics endpoint is reachable from the network: plain HTTP, no authentication"
            );
        }
        tracing::info!(listen = %bound, "metrics endpoint listening");
        Ok(Exporter {
            listener,
            addr: bound,
        })
    }

    /// The address bound (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes.
    pub async fn serve<E: Exposition>(
        self,
        exposition: Arc<E>,
        shutdown: impl Future<Output = ()>,
    ) {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .max_buf_size(MAX_REQUEST_HEAD_BYTES)
            .max_headers(64);
        let builder = Arc::new(builder);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: back off briefly.
                    tracing::warn!(error = %e, "metrics: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!("metrics: too many connections; one refused");
                drop(stream);
                continue;
            };
            let exposition = exposition.clone();
            let builder = builder.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let exposition = exposition.clone();
                    async move { Ok::<_, Infallible>(respond(request, &*exposition).await) }
                });
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
                    Ok(Ok(())) | Err(_) => {}
                    Ok(Err(e)) => tracing::debug!(error = %e, "metrics: connection ended"),
                }
                drop(slot);
            });
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

async fn respond<E: Exposition>(
    request: Request<Incoming>,
    exposition: &E,
) -> Response<Full<Bytes>> {
    if request.uri().path() != METRICS_PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found; metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
        response
            .headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let body = exposition.render().await;
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(crate::text::CONTENT_TYPE),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Fixed;

    impl Exposition for Fixed {
        async fn render(&self) -> String {
            "# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n".to_string()
        }
    }

    /// Sends `request` raw and reads the answer until the server closes
    /// (the requests ask it to); a connection reset ends the answer too.
    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut answer = Vec::new();
        if stream.write_all(request).await.is_ok() {
            let mut buf = [0u8; 4096];
            loop {
                let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                    .await
                    .expect("an answer within 10 s");
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                }
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    }

    async fn started() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let exporter = Exporter::bind("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let addr = exporter.local_addr();
        assert_ne!(addr.port(), 0);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(exporter.serve(Arc::new(Fixed), async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    #[tokio::test]
    async fn serves_metrics_with_the_text_content_type() {
        let (addr, _stop) = started().await;
        let answer = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
            "{answer}"
        );
        assert!(
            answer.ends_with("\r\n\r\n# HELP t_up Up.\n# TYPE t_up gauge\nt_up 1\n"),
            "{answer}"
        );
        // A query string does not change the path.
        let answer = exchange(
            addr,
            b"GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }

    #[tokio::test]
    async fn other_paths_are_404_and_other_methods_405() {
        let (addr, _stop) = started().await;
        for path in ["/", "/metrics/", "/metricsx", "/other"] {
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let answer = exchange(addr, request.as_bytes()).await;
            assert!(
                answer.starts_with("HTTP/1.1 404 Not Found\r\n"),
                "{path}: {answer}"
            );
        }
        let answer = exchange(
            addr,
            b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(
            answer.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{answer}"
        );
        assert!(answer.contains("allow: GET, HEAD\r\n"), "{answer}");
    }

    #[tokio::test]
    async fn an_oversized_request_head_is_refused() {
        let (addr, _stop) = started().await;
        let mut request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', 64 * 1024));
        request.extend_from_slice(b"\r\n\r\n");
        let answer = exchange(addr, &request).await;
        assert!(
            answer.starts_with("HTTP/1.1 431 "),
            "{}",
            &answer[..answer.len().min(200)]
        );
        // The server still answers others.
        let answer = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }

    #[tokio::test]
    async fn silent_clients_neither_block_others_nor_exceed_the_connection_limit() {
        let (addr, _stop) = started().await;
        // Fill every slot with a client that never sends anything.
        let mut idle = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            idle.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        // One more is closed at once, without an answer.
        let answer = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(answer, "", "a connection past the limit was served");
        // The silent clients are dropped after the header timeout, and the
        // slots are free again.
        for stream in &mut idle {
            // Whatever it says first (nothing, or a 408), the server ends
            // the connection: the read returns instead of waiting on.
            let _ = tokio::time::timeout(HEADER_TIMEOUT * 3, stream.read_to_end(&mut Vec::new()))
                .await
                .expect("the server closes a silent client");
        }
        drop(idle);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = exchange(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    }
}
