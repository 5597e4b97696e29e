//! The hardend fleet collector and its console: the `Collector` service that
//! agents push to, the `Console` service operators query, the store behind
//! them (SQLite or PostgreSQL), and the small PKI that issues their
//! certificates.

pub mod cli;
pub mod console;
pub mod pki;
pub mod tls;

pub mod config;
pub mod metrics;
pub mod server;
pub mod store;
