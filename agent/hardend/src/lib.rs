//! The hardend agent as a library: the commands behind the `hardend` binary,
//! so tests and benchmarks run them in process.
