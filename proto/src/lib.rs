//! The generated gRPC types and services of package `hardend.v1`.

#![allow(clippy::all, missing_docs)]

pub mod unix;

tonic::include_proto!("hardend.v1");

/// The encoded `FileDescriptorSet` of `hardend.proto`, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("hardend_descriptor");
