//! `micro::build`: compile a service's `.proto` files from its `build.rs`.
//!
//! ```text
//! build.rs: micro::build::compile(&["proto/helloworld.proto"], &["proto"])
//!   protox ──FileDescriptorSet──> $OUT_DIR/micro_descriptor.bin (source info stripped)
//!          └──> prost-build ──> $OUT_DIR/helloworld.rs: messages
//!                   └── MicroGenerator, per proto service:
//!                       trait Helloworld { async fn call(&self, ctx, CallRequest) -> ... }
//!                       fn helloworld_handler(impl Helloworld) -> micro::Handler
//!                       const FILE_DESCRIPTOR_SET (once per package)
//! src/lib.rs: micro::include_proto!("helloworld");
//! ```
//!
//! Unary methods become `fn m(&self, ctx, req) -> impl Future<Output = Result<Resp,
//! micro::Error>> + Send` (implement them with `async fn`); server-streaming methods
//! return `Result<micro::ReplyStream<Resp>, micro::Error>`. Client-streaming and
//! bidirectional methods get no trait method: they are registered and answer 501 Not
//! Implemented, because the raw gRPC path (`micro_proto::raw`) carries one request
//! message per call.
//!
//! Call [`compile`] once per crate with every file: each call rewrites the descriptor
//! set. The crate needs `micro` and `prost` as dependencies (the generated messages
//! derive `prost::Message`).
//!
//! ```no_run
//! // build.rs
//! fn main() -> std::io::Result<()> {
//!     micro::build::compile(&["proto/helloworld.proto"], &["proto"])
//! }
//! ```

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use prost::Message;

/// The file in `OUT_DIR` holding the encoded `FileDescriptorSet`.
pub const DESCRIPTOR_FILE: &str = "micro_descriptor.bin";

/// Compiles `files` (searched in `includes`) with protox, writes the descriptor set to
/// `$OUT_DIR/`[`DESCRIPTOR_FILE`] and generates messages, handler traits and handler
/// constructors into `$OUT_DIR/<package>.rs`.
pub fn compile(files: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) -> io::Result<()> {
    for file in files {
        println!("cargo:rerun-if-changed={}", file.as_ref().display());
    }
    let descriptors = protox::compile(files, includes)
        .map_err(|e| io::Error::other(format!("cannot compile the .proto files: {e}")))?;
    let out_dir = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .ok_or_else(|| io::Error::other("OUT_DIR is not set: call micro::build from build.rs"))?;
    // Comments and spans are only needed for generating docs; the registered descriptor
    // must stay small (a registration is capped at 512 KiB).
    let mut stripped = descriptors.clone();
    for file in &mut stripped.file {
        file.source_code_info = None;
    }
    std::fs::write(out_dir.join(DESCRIPTOR_FILE), stripped.encode_to_vec())?;
    prost_build::Config::new()
        .service_generator(Box::new(MicroGenerator))
        .compile_fds(descriptors)
}

/// The prost-build service generator writing micro handler traits and constructors.
#[derive(Debug, Clone, Copy, Default)]
pub struct MicroGenerator;

impl prost_build::ServiceGenerator for MicroGenerator {
    fn generate(&mut self, service: prost_build::Service, buf: &mut String) {
        write_trait(&service, buf);
        write_constructor(&service, buf);
    }

    fn finalize_package(&mut self, package: &str, buf: &mut String) {
        let _ = writeln!(
            buf,
            "/// The encoded `FileDescriptorSet` of the files compiled with package `{package}`.\n\
             pub const FILE_DESCRIPTOR_SET: &[u8] = \
             include_bytes!(concat!(env!(\"OUT_DIR\"), \"/{DESCRIPTOR_FILE}\"));"
        );
    }
}

fn write_trait(service: &prost_build::Service, buf: &mut String) {
    service.comments.append_with_indent(0, buf);
    let _ = writeln!(
        buf,
        "/// The handler of proto service `{}`: implement it and serve it with \
         [`{}_handler`].\n\
         pub trait {}: ::core::marker::Send + ::core::marker::Sync + 'static {{",
        full_name(service),
        snake_case(&service.name),
        service.name
    );
    for method in service.methods.iter().filter(|m| !m.client_streaming) {
        method.comments.append_with_indent(1, buf);
        if !method.comments.leading.is_empty() {
            buf.push_str("    ///\n");
        }
        let output = if method.server_streaming {
            format!("::micro::ReplyStream<{}>", method.output_type)
        } else {
            method.output_type.clone()
        };
        let _ = writeln!(
            buf,
            "    /// Endpoint `{}.{}`.\n    fn {}(&self, ctx: ::micro::Context, req: {}) -> \
             impl ::core::future::Future<Output = ::core::result::Result<{output}, \
             ::micro::Error>> + ::core::marker::Send;",
            service.proto_name, method.proto_name, method.name, method.input_type
        );
    }
    buf.push_str("}\n\n");
}

fn write_constructor(service: &prost_build::Service, buf: &mut String) {
    let _ = writeln!(
        buf,
        "/// Serves an implementation of [`{name}`] as a [`::micro::Handler`].\n\
         #[allow(unused_variables)]\n\
         pub fn {snake}_handler<T: {name}>(inner: T) -> ::micro::Handler {{\n    \
         let inner = ::std::sync::Arc::new(inner);\n    \
         ::micro::Handler::new(\"{full}\", FILE_DESCRIPTOR_SET)",
        name = service.name,
        snake = snake_case(&service.name),
        full = full_name(service),
    );
    for method in &service.methods {
        let endpoint = format!("{}.{}", service.proto_name, method.proto_name);
        let input = method.input_proto_type.trim_start_matches('.');
        let output = method.output_proto_type.trim_start_matches('.');
        if method.client_streaming {
            let _ = writeln!(
                buf,
                "        .not_implemented(\"{endpoint}\", \"{input}\", \"{output}\", {})",
                method.server_streaming
            );
            continue;
        }
        let builder = if method.server_streaming {
            "server_stream"
        } else {
            "unary"
        };
        let _ = writeln!(
            buf,
            "        .{builder}(\"{endpoint}\", \"{input}\", \"{output}\", {{\n            \
             let inner = ::std::sync::Arc::clone(&inner);\n            \
             move |ctx: ::micro::Context, req: {rust_input}| {{\n                \
             let inner = ::std::sync::Arc::clone(&inner);\n                \
             async move {{ <T as {name}>::{method}(&inner, ctx, req).await }}\n            \
             }}\n        }})",
            rust_input = method.input_type,
            name = service.name,
            method = method.name,
        );
    }
    buf.push_str("}\n\n");
}

fn full_name(service: &prost_build::Service) -> String {
    if service.package.is_empty() {
        service.proto_name.clone()
    } else {
        format!("{}.{}", service.package, service.proto_name)
    }
}

/// `MyService` -> `my_service`.
fn snake_case(name: &str) -> String {
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_splits_words() {
        assert_eq!(snake_case("Helloworld"), "helloworld");
        assert_eq!(snake_case("MyService"), "my_service");
    }
}
