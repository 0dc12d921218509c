//! Generates, for the system tests only, gRPC clients from `tests/proto/v3_store.proto`
//! (an independent copy of Micro v3's store contract) and `v3_helloworld.proto`, so the tests talk to the node as any
//! v3 client would. Pure Rust (protox); no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=tests/proto/v3_store.proto");
    println!("cargo:rerun-if-changed=tests/proto/v3_helloworld.proto");
    let descriptors = protox::compile(["v3_store.proto", "v3_helloworld.proto"], ["tests/proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("v3");
    std::fs::create_dir_all(&out)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .out_dir(out)
        .compile_fds(descriptors)?;
    Ok(())
}
