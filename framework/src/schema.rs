//! Registry schemas ([`Value`]) of request and response messages, read from the
//! descriptors, so `micro services`-style listings and the gateway can show them.
//!
//! A message becomes `Value { name, type: <message name>, values: <fields> }`; a field
//! is `{ name: <proto field name>, type: "string" | "int64" | ... | <message name> }`,
//! `[]T` when repeated and `map[K]V` for maps. Nesting stops at [`SCHEMA_DEPTH_MAX`]
//! levels, so recursive messages (a tree node holding nodes) stay finite.

use micro_core::registry::Value;
use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

/// How many message levels a schema shows.
pub const SCHEMA_DEPTH_MAX: usize = 4;

/// The schema of `message`.
pub fn message_value(message: &MessageDescriptor) -> Value {
    // Bounded recursion (at most SCHEMA_DEPTH_MAX frames) reads far better here than an
    // explicit stack that assembles the tree afterwards.
    message_at(message.name(), message, 0)
}

fn message_at(name: &str, message: &MessageDescriptor, depth: usize) -> Value {
    let values = if depth < SCHEMA_DEPTH_MAX {
        message
            .fields()
            .map(|f| field_value(&f, depth + 1))
            .collect()
    } else {
        Vec::new()
    };
    Value {
        name: name.to_owned(),
        r#type: message.name().to_owned(),
        values,
    }
}

fn field_value(field: &FieldDescriptor, depth: usize) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return scalar(field.name(), "map");
        };
        let key = kind_name(&entry.map_entry_key_field().kind());
        let value_field = entry.map_entry_value_field();
        let mut value = field_value(&value_field, depth);
        value.name = field.name().to_owned();
        value.r#type = format!("map[{key}]{}", value.r#type);
        return value;
    }
    let mut value = match field.kind() {
        Kind::Message(message) => message_at(field.name(), &message, depth),
        other => scalar(field.name(), &kind_name(&other)),
    };
    if field.is_list() {
        value.r#type = format!("[]{}", value.r#type);
    }
    value
}

fn scalar(name: &str, r#type: &str) -> Value {
    Value {
        name: name.to_owned(),
        r#type: r#type.to_owned(),
        values: Vec::new(),
    }
}

fn kind_name(kind: &Kind) -> String {
    let name = match kind {
        Kind::Double => "double",
        Kind::Float => "float",
        Kind::Int32 => "int32",
        Kind::Int64 => "int64",
        Kind::Uint32 => "uint32",
        Kind::Uint64 => "uint64",
        Kind::Sint32 => "sint32",
        Kind::Sint64 => "sint64",
        Kind::Fixed32 => "fixed32",
        Kind::Fixed64 => "fixed64",
        Kind::Sfixed32 => "sfixed32",
        Kind::Sfixed64 => "sfixed64",
        Kind::Bool => "bool",
        Kind::String => "string",
        Kind::Bytes => "bytes",
        Kind::Message(message) => message.name(),
        Kind::Enum(enumeration) => enumeration.name(),
    };
    name.to_owned()
}
