//! The flags of a dynamic command: how `micro SERVICE [HANDLER] [METHOD] --field=value`
//! becomes a JSON request, before it is transcoded like any `micro call`.
//!
//! ```text
//! args ─parse_dynamic─> words (the endpoint), [(flag, value)], --help?
//! (flag, value) ─find_field─> path of fields in the method's input ─coerce─> JSON value
//!     `--a_b=x` nests: {"a": {"b": "x"}}; a list field takes `x,y`; a message field JSON
//! ```
//!
//! Pure functions over descriptors, so the fuzz target `cli_flags` can drive them.

use prost_reflect::{Kind, MessageDescriptor};

use crate::exit::CliError;

/// The deepest a flag nests (`--a_b_c` is 3). A recursive message (`registry.Value`)
/// lets a flag nest a field per `_`; the request is built, transcoded and dropped by
/// recursion per level, and 10,000 levels overflowed a 2 MiB thread stack.
const FLAG_DEPTH_MAX: usize = 32;

/// Splits a dynamic command's arguments into words, `--flag[=| ]value` pairs and
/// whether help was asked for.
pub fn parse_dynamic(rest: &[String]) -> (Vec<String>, Vec<(String, String)>, bool) {
    let mut words = Vec::new();
    let mut flags: Vec<(String, String)> = Vec::new();
    let mut help = false;
    let mut iter = rest.iter().peekable();
    while let Some(arg) = iter.next() {
        if arg == "--help" || arg == "-h" {
            help = true;
        } else if let Some(flag) = arg.strip_prefix("--") {
            match flag.split_once('=') {
                Some((k, v)) => flags.push((k.to_owned(), v.to_owned())),
                None => {
                    let value = match iter.peek() {
                        Some(next) if !next.starts_with("--") => {
                            iter.next().cloned().unwrap_or_default()
                        }
                        _ => "true".to_owned(),
                    };
                    flags.push((flag.to_owned(), value));
                }
            }
        } else {
            words.push(arg.clone());
        }
    }
    (words, flags, help)
}

/// A field's type as `--help` shows it: `string`, `[]int64`, a message's name.
pub(crate) fn kind_name(field: &prost_reflect::FieldDescriptor) -> String {
    let base = match field.kind() {
        Kind::Message(m) => m.name().to_owned(),
        Kind::Enum(e) => e.name().to_owned(),
        other => format!("{other:?}").to_ascii_lowercase(),
    };
    if field.is_list() {
        format!("[]{base}")
    } else {
        base
    }
}

/// Builds the JSON request of a dynamic command from its flags, coercing each value to
/// its field's type; `--a_b=x` sets field `b` of message field `a`.
pub fn request_from_flags(
    message: &MessageDescriptor,
    flags: &[(String, String)],
) -> Result<serde_json::Value, CliError> {
    let mut root = serde_json::Map::new();
    for (name, value) in flags {
        let (path, field) = find_field(message, name).ok_or_else(|| {
            let known: Vec<String> = message
                .fields()
                .map(|f| format!("--{}", f.name()))
                .collect();
            CliError::usage(format!(
                "unknown flag --{name} for {} (flags: {})",
                message.full_name(),
                known.join(", ")
            ))
        })?;
        if path.len() > FLAG_DEPTH_MAX {
            return Err(CliError::usage(format!(
                "--{}_...: a flag nests at most {FLAG_DEPTH_MAX} fields deep, not {}",
                path[0],
                path.len()
            )));
        }
        let coerced = coerce(&field, value).ok_or_else(|| {
            CliError::usage(format!(
                "--{name}: {value:?} is not a {}",
                kind_name(&field)
            ))
        })?;
        let mut object = &mut root;
        for part in &path[..path.len() - 1] {
            let entry = object
                .entry(part.clone())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
            let serde_json::Value::Object(inner) = entry else {
                return Err(CliError::usage(format!(
                    "--{name} conflicts with another flag"
                )));
            };
            object = inner;
        }
        let last = path[path.len() - 1].clone();
        match (object.get_mut(&last), coerced) {
            (Some(serde_json::Value::Array(items)), serde_json::Value::Array(more)) => {
                items.extend(more)
            }
            (_, coerced) => {
                object.insert(last, coerced);
            }
        }
    }
    Ok(serde_json::Value::Object(root))
}

/// The field a flag names: the whole name first, else split at `_` into nested fields.
/// A loop, not recursion: a flag may be as long as an argument (128 KiB).
fn find_field(
    message: &MessageDescriptor,
    name: &str,
) -> Option<(Vec<String>, prost_reflect::FieldDescriptor)> {
    let mut path = Vec::new();
    let mut message = message.clone();
    let mut rest = name;
    // Bounded by the name: each turn consumes a field name and its `_`.
    loop {
        if let Some(field) = message.get_field_by_name(rest) {
            path.push(rest.to_owned());
            return Some((path, field));
        }
        let (head, tail) = rest.split_once('_')?;
        let field = message.get_field_by_name(head)?;
        let Kind::Message(inner) = field.kind() else {
            return None;
        };
        path.push(head.to_owned());
        message = inner;
        rest = tail;
    }
}

fn coerce(field: &prost_reflect::FieldDescriptor, value: &str) -> Option<serde_json::Value> {
    let one = |v: &str| -> Option<serde_json::Value> {
        Some(match field.kind() {
            Kind::Bool => serde_json::Value::Bool(v.parse().ok()?),
            Kind::Int32
            | Kind::Sint32
            | Kind::Sfixed32
            | Kind::Int64
            | Kind::Sint64
            | Kind::Sfixed64 => {
                serde_json::json!(v.parse::<i64>().ok()?)
            }
            Kind::Uint32 | Kind::Fixed32 | Kind::Uint64 | Kind::Fixed64 => {
                serde_json::json!(v.parse::<u64>().ok()?)
            }
            Kind::Float | Kind::Double => serde_json::json!(v.parse::<f64>().ok()?),
            Kind::Message(_) => serde_json::from_str(v).ok()?,
            _ => serde_json::Value::String(v.to_owned()),
        })
    };
    if field.is_list() {
        value
            .split(',')
            .map(one)
            .collect::<Option<Vec<_>>>()
            .map(serde_json::Value::Array)
    } else {
        one(value)
    }
}

#[cfg(test)]
mod tests {
    //! Property tests (the fuzz target `cli_flags` in fuzz/ drives the same functions):
    //! never a panic on arbitrary arguments and flags; `--field=value` and `--a_b=value`
    //! set that field, nested; what parses as a request transcodes to protobuf that
    //! decodes as the method's input.

    use std::sync::OnceLock;

    use proptest::prelude::*;
    use prost::Message as _;
    use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};

    use super::*;

    fn pool() -> &'static DescriptorPool {
        static POOL: OnceLock<DescriptorPool> = OnceLock::new();
        POOL.get_or_init(|| DescriptorPool::decode(micro_proto::FILE_DESCRIPTOR_SET).unwrap())
    }

    fn methods() -> &'static [MethodDescriptor] {
        static METHODS: OnceLock<Vec<MethodDescriptor>> = OnceLock::new();
        METHODS.get_or_init(|| {
            pool()
                .services()
                .flat_map(|s| s.methods().collect::<Vec<_>>())
                .collect()
        })
    }

    fn input(name: &str) -> MessageDescriptor {
        pool().get_message_by_name(name).unwrap()
    }

    /// A flag name: a field path of `message` picked by `indices`, or anything.
    fn flag_name(message: &MessageDescriptor, indices: &[prop::sample::Index]) -> String {
        let mut parts = Vec::new();
        let mut message = message.clone();
        for index in indices {
            let fields: Vec<_> = message.fields().collect();
            if fields.is_empty() {
                break;
            }
            let field = index.get(&fields);
            parts.push(field.name().to_owned());
            let Kind::Message(inner) = field.kind() else {
                break;
            };
            message = inner;
        }
        parts.join("_")
    }

    fn arg() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,12}",
            "--[a-z_]{0,10}",
            "--[a-z_]{0,10}=.{0,10}",
            Just("--help".to_owned()),
        ]
    }

    proptest! {
        #[test]
        fn parse_dynamic_keeps_every_flag(args in proptest::collection::vec(arg(), 0..8)) {
            let (words, flags, _) = parse_dynamic(&args);
            let dashed = args.iter().filter(|a| a.starts_with("--") && *a != "--help").count();
            prop_assert_eq!(flags.len(), dashed);
            prop_assert!(words.len() + flags.len() <= args.len());
        }

        /// Flags naming real field paths (or not) with any value, on every method.
        #[test]
        fn requests_from_flags_transcode_or_fail_cleanly(
            method in any::<prop::sample::Index>(),
            flags in proptest::collection::vec(
                (proptest::collection::vec(any::<prop::sample::Index>(), 1..4), ".{0,12}"),
                0..5,
            ),
        ) {
            let method = method.get(methods());
            let flags: Vec<(String, String)> = flags
                .iter()
                .map(|(path, value)| (flag_name(&method.input(), path), value.clone()))
                .collect();
            let Ok(json) = request_from_flags(&method.input(), &flags) else {
                return Ok(());
            };
            if let Ok(message) = DynamicMessage::deserialize(method.input(), json) {
                let bytes = message.encode_to_vec();
                prop_assert!(DynamicMessage::decode(method.input(), bytes.as_slice()).is_ok());
            }
        }

        #[test]
        fn a_flag_sets_its_field_nested(
            key in ".{0,12}",
            table in ".{0,12}",
            prefix in any::<bool>(),
            limit in any::<u64>(),
        ) {
            let flags = [
                ("key".to_owned(), key.clone()),
                ("options_table".to_owned(), table.clone()),
                ("options_prefix".to_owned(), prefix.to_string()),
                ("options_limit".to_owned(), limit.to_string()),
            ];
            let json = request_from_flags(&input("store.ReadRequest"), &flags).unwrap();
            let options = serde_json::json!({"table": table, "prefix": prefix, "limit": limit});
            prop_assert_eq!(json, serde_json::json!({"key": key, "options": options}));
        }
    }
    /// Regression: `--values_values_..._name` nests a field per `_` in a recursive message
    /// (`registry.Value`); 10,000 of them (a 70 KB argument, under the kernel's 128 KiB)
    /// recursed as deep finding the field and transcoding the request: a stack overflow.
    #[test]
    fn a_flag_nested_too_deep_is_a_usage_error_not_a_stack_overflow() {
        let name = format!("{}name", "values_".repeat(10_000));
        let flags = [(name, "x".to_owned())];
        let message = input("registry.Value");
        let result = request_from_flags(&message, &flags).map(|json| {
            // What the CLI does next with the request.
            DynamicMessage::deserialize(message.clone(), json).map(|m| m.encode_to_vec())
        });
        let err = result.unwrap_err();
        assert_eq!(err.code, crate::exit::USAGE);
        assert!(err.message.contains("deep"), "{}", err.message);
        let shallow = [("values_values_name".to_owned(), "x".to_owned())];
        let json = request_from_flags(&message, &shallow).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"values": {"values": {"name": "x"}}})
        );
    }
}
