//! Compiles `proto/helloworld.proto` into messages, the `Helloworld` handler trait and
//! `helloworld_handler`.

fn main() -> std::io::Result<()> {
    micro::build::compile(&["proto/helloworld.proto"], &["proto"])
}
