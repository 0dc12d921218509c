//! The dynamic commands' flags (`micro SERVICE ENDPOINT --field value`), as the CLI turns
//! them into a request, on every method of micro-proto's own services:
//!
//! ```text
//! args (flags named after real field paths, or arbitrary) ─parse_dynamic─> flags
//!   ─request_from_flags(method input)─> JSON ─DynamicMessage::deserialize─> protobuf
//! ```
//!
//! Never a panic; what is encoded decodes as the method's input again.

#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use micro_cli::fuzzing::{parse_dynamic, request_from_flags};
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, Kind, MessageDescriptor, MethodDescriptor};

#[derive(Arbitrary, Debug)]
enum Arg {
    /// `--a_b=value` (or `--a_b value`) naming a real field path: an index per level.
    Field {
        path: Vec<u8>,
        value: String,
        equals: bool,
    },
    /// Any argument at all.
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method_index: u16,
    args: Vec<Arg>,
}

/// Every method of micro-proto's descriptor set, decoded once.
fn methods() -> &'static [MethodDescriptor] {
    static METHODS: OnceLock<Vec<MethodDescriptor>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let pool = DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET)
            .expect("micro-proto's descriptors");
        pool.services()
            .flat_map(|s| s.methods().collect::<Vec<_>>())
            .collect()
    })
}

/// The flag name of the field path `path` picks in `message`.
fn flag_name(message: &MessageDescriptor, path: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut message = message.clone();
    for index in path {
        let fields: Vec<_> = message.fields().collect();
        if fields.is_empty() {
            break;
        }
        let field = &fields[usize::from(*index) % fields.len()];
        parts.push(field.name().to_owned());
        match field.kind() {
            Kind::Message(inner) => message = inner,
            _ => break,
        }
    }
    parts.join("_")
}

fuzz_target!(|input: Input| {
    let methods = methods();
    let method = &methods[usize::from(input.method_index) % methods.len()];
    let mut args = Vec::new();
    for arg in input.args {
        match arg {
            Arg::Field {
                path,
                value,
                equals,
            } => {
                let name = flag_name(&method.input(), &path);
                if equals {
                    args.push(format!("--{name}={value}"));
                } else {
                    args.push(format!("--{name}"));
                    args.push(value);
                }
            }
            Arg::Raw(raw) => args.push(raw),
        }
    }
    let (_words, flags, _help) = parse_dynamic(&args);
    let Ok(json) = request_from_flags(&method.input(), &flags) else {
        return;
    };
    let Ok(message) = DynamicMessage::deserialize(method.input(), json) else {
        return;
    };
    let bytes = message.encode_to_vec();
    if let Err(e) = DynamicMessage::decode(method.input(), bytes.as_slice()) {
        panic!(
            "the encoded request is not a {}: {e}",
            method.input().full_name()
        );
    }
});
