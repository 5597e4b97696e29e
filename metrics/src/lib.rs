//! Prometheus metrics shared by the daemon and the collector: lock-free
//! counters, gauges and histograms (`registry`), the text exposition format
//! 0.0.4 (`text`), and an HTTP/1.1 exporter for `GET /metrics` (`http`).
//! It knows tokio and hyper, but not tonic, and nothing of hardend's model.

pub mod http;
pub mod registry;
pub mod text;

pub use http::{Exporter, Exposition, HttpError};
pub use registry::{Counter, Family, Gauge, Histogram, LATENCY_BUCKETS};
pub use text::{CONTENT_TYPE, MetricType, TextEncoder};
