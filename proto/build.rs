//! Compiles the wire contract with protox (pure Rust: no system `protoc`), writes the
//! encoded descriptor set for reflection and transcoding, and generates prost/tonic code.

use std::path::PathBuf;

use prost::Message;

const FILES: [&str; 13] = [
    "auth/auth.proto",
    "broker/broker.proto",
    "config/config.proto",
    "events/events.proto",
    "registry/registry.proto",
    "runtime/runtime.proto",
    "store/store.proto",
    "debug/debug.proto",
    "errors/errors.proto",
    "cluster/cluster.proto",
    "peer/peer.proto",
    "router/router.proto",
    "network/network.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed=proto/{file}");
    }
    let descriptors = protox::compile(FILES, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    // The descriptor set travels in every core service's registration: without source
    // info (comments, spans) it is a fifth of the size.
    let mut stripped = descriptors.clone();
    for file in &mut stripped.file {
        file.source_code_info = None;
    }
    std::fs::write(out.join("descriptor.bin"), stripped.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // No `XClient::connect(dst)` constructors: `network.Network` has an rpc named
        // Connect, and every client here is built from a channel anyway.
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
