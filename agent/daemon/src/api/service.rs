//! The `hardend.v1.Agent` service: answers from the core's current view,
//! forwards `Evaluate` to the core loop, and streams drift events from the
//! core's broadcast.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hardend_policy::Severity;
use hardend_proto as pb;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::convert;
use crate::{AgentView, Command, Shared};

/// How many encoded events may wait for a slow `WatchDrift` client before the
/// forwarding task waits too (the broadcast then buffers, and past its
/// capacity the client is told how much it missed).
const STREAM_BUFFER: usize = 64;

pub(crate) struct AgentService {
    pub(crate) shared: Shared,
    pub(crate) evaluate_timeout: Duration,
    /// One permit per open `WatchDrift` stream.
    pub(crate) watchers: Arc<Semaphore>,
    /// Becomes true when the server shuts down; open streams end then.
    pub(crate) stopping: watch::Receiver<bool>,
}

type DriftStream = Pin<Box<dyn Stream<Item = Result<pb::DriftEvent, Status>> + Send>>;

impl AgentService {
    fn view(&self) -> Arc<AgentView> {
        self.shared.view.borrow().clone()
    }
}

/// Waits until the server is stopping (or its stop signal is gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}

#[tonic::async_trait]
impl pb::agent_server::Agent for AgentService {
    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        Ok(Response::new(convert::status_response(&self.view())))
    }

    async fn get_report(
        &self,
        _request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        Ok(Response::new(convert::view_report_to_proto(&self.view())))
    }

    async fn evaluate(
        &self,
        _request: Request<pb::EvaluateRequest>,
    ) -> Result<Response<pb::Report>, Status> {
        let (reply, answer) = oneshot::channel();
        let ask = async {
            self.shared
                .commands
                .send(Command::Evaluate(reply))
                .await
                .map_err(|_| Status::unavailable("the daemon is shutting down"))?;
            answer
                .await
                .map_err(|_| Status::unavailable("the daemon dropped the evaluation"))
        };
        let view = tokio::time::timeout(self.evaluate_timeout, ask)
            .await
            .map_err(|_| {
                Status::deadline_exceeded(format!(
                    "the evaluation did not finish within {} s",
                    self.evaluate_timeout.as_secs_f64()
                ))
            })??;
        Ok(Response::new(convert::view_report_to_proto(&view)))
    }

    type WatchDriftStream = DriftStream;

    async fn watch_drift(
        &self,
        request: Request<pb::WatchDriftRequest>,
    ) -> Result<Response<DriftStream>, Status> {
        let min = convert::severity_from_proto("min_severity", request.get_ref().min_severity)
            .map_err(|e| Status::invalid_argument(e.to_string()))?
            .unwrap_or(Severity::Low);
        let permit = self.watchers.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted("too many WatchDrift streams are open; try again later")
        })?;
        // Subscribe before answering, so every event after the client has
        // its response is delivered.
        let events = self.shared.drift.subscribe();
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(forward(
            permit,
            events,
            self.shared.view.clone(),
            min,
            tx,
            self.stopping.clone(),
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn list_policies(
        &self,
        _request: Request<pb::ListPoliciesRequest>,
    ) -> Result<Response<pb::ListPoliciesResponse>, Status> {
        let view = self.view();
        Ok(Response::new(pb::ListPoliciesResponse {
            policies: view
                .policies
                .iter()
                .map(convert::policy_info_to_proto)
                .collect(),
        }))
    }
}

/// Copies drift events at or above `min` from the broadcast to one client's
/// stream, until the client goes away, the core stops, or the server stops.
/// A client that falls so far behind that the broadcast dropped events for it
/// gets `RESOURCE_EXHAUSTED` naming how many, and its stream ends: silently
/// skipping would leave it with a wrong picture, and it can resynchronise with
/// `GetReport` and watch again.
async fn forward(
    // Held until the stream ends, freeing its place.
    _permit: OwnedSemaphorePermit,
    mut events: broadcast::Receiver<Arc<crate::DriftEvent>>,
    view: watch::Receiver<Arc<AgentView>>,
    min: Severity,
    tx: mpsc::Sender<Result<pb::DriftEvent, Status>>,
    stopping: watch::Receiver<bool>,
) {
    let stop = stopped(stopping);
    tokio::pin!(stop);
    loop {
        let item = tokio::select! {
            _ = &mut stop => return,
            _ = tx.closed() => return,
            received = events.recv() => match received {
                Ok(event) if event.result.severity >= min => {
                    let view = view.borrow().clone();
                    Ok(convert::drift_to_proto(&event, &view))
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!("a WatchDrift client fell {missed} events behind; ending its stream");
                    Err(Status::resource_exhausted(format!(
                        "this client fell behind and missed {missed} drift events; \
                         call GetReport for the current state and watch again"
                    )))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        let last = item.is_err();
        tokio::select! {
            _ = &mut stop => return,
            sent = tx.send(item) => if sent.is_err() { return },
        }
        if last {
            return;
        }
    }
}
