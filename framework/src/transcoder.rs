//! [`Transcoder`]: JSON bodies <-> protobuf, driven by the services' descriptors.
//!
//! ```text
//! {"name":"bob"} ──DynamicMessage::deserialize──> encode ──> handler decodes CallRequest
//! handler's CallResponse bytes ──DynamicMessage::decode──> serialize ──> {"msg":"Hello bob"}
//! ```
//!
//! Replies use the proto field names and plain JSON numbers for 64-bit integers, as the
//! Go structs generated for Micro v3 encoded them; requests accept both field-name styles
//! and both number forms.

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, SerializeOptions};

use crate::error::{self, Error};

/// Converts JSON bodies to protobuf and back for the messages of a descriptor pool.
#[derive(Debug, Clone)]
pub struct Transcoder {
    pool: DescriptorPool,
}

impl Transcoder {
    /// A transcoder over the union of the encoded `FileDescriptorSet`s `descriptors`
    /// (files present in several sets are taken once).
    pub fn new<'a>(descriptors: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, Error> {
        let mut pool = DescriptorPool::new();
        for descriptor in descriptors {
            pool.decode_file_descriptor_set(descriptor)
                .map_err(|e| error::internal("micro", format!("invalid descriptor set: {e}")))?;
        }
        Ok(Self { pool })
    }

    /// The descriptor of the message `full_name` (`helloworld.CallRequest`).
    pub fn message(&self, full_name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(full_name)
    }

    /// The union of the descriptor sets, encoded as one `FileDescriptorSet`.
    pub fn encoded_descriptor_set(&self) -> Vec<u8> {
        self.pool.encode_to_vec()
    }

    /// Encodes the JSON `body` as the protobuf message `full_name`; an empty body is the
    /// empty message. Malformed JSON and unknown fields are `BadRequest`.
    pub fn json_to_proto(&self, id: &str, full_name: &str, body: &[u8]) -> Result<Vec<u8>, Error> {
        let desc = self.descriptor(id, full_name)?;
        let body = if body.iter().all(u8::is_ascii_whitespace) {
            b"{}".as_slice()
        } else {
            body
        };
        let mut json = serde_json::Deserializer::from_slice(body);
        let message = DynamicMessage::deserialize(desc, &mut json)
            .and_then(|message| json.end().map(|()| message))
            .map_err(|e| {
                error::bad_request(id, format!("the request is not a valid {full_name}: {e}"))
            })?;
        Ok(message.encode_to_vec())
    }

    /// Decodes the protobuf `bytes` of the message `full_name` and writes them as JSON.
    pub fn proto_to_json(&self, id: &str, full_name: &str, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let desc = self.descriptor(id, full_name)?;
        let message = DynamicMessage::decode(desc, bytes).map_err(|e| {
            error::internal(
                id,
                format!("the handler replied with an invalid {full_name}: {e}"),
            )
        })?;
        let options = SerializeOptions::new()
            .use_proto_field_name(true)
            .stringify_64_bit_integers(false);
        let mut json = serde_json::Serializer::new(Vec::new());
        message
            .serialize_with_options(&mut json, &options)
            .map_err(|e| error::internal(id, format!("cannot write {full_name} as JSON: {e}")))?;
        Ok(json.into_inner())
    }

    fn descriptor(&self, id: &str, full_name: &str) -> Result<MessageDescriptor, Error> {
        self.message(full_name).ok_or_else(|| {
            error::internal(
                id,
                format!("message {full_name} is missing from the descriptors"),
            )
        })
    }
}
