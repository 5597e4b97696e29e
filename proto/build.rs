//! Compiles `hardend.proto` with protox (pure Rust, no system protoc) and
//! keeps the encoded descriptor set for server reflection.

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=hardend.proto");
    let fds = protox::compile(["hardend.proto"], ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("hardend_descriptor.bin"), fds.encode_to_vec())?;
    // No generated `connect` constructors: the Collector service has an RPC of
    // that name, and every client here builds its own channel anyway.
    tonic_prost_build::configure()
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
