//! `/events.Stream/Consume` as Micro v3 clients really use it: declared server streaming,
//! yet the client sends `AckRequest`s on the same stream after its `ConsumeRequest`. A
//! generated server would wait for the request stream to end before answering, so both
//! sides here take the request stream as raw messages and decode them by position.
//!
//! ```text
//! client ── ConsumeRequest, AckRequest, AckRequest, ... ──> node   (raw: decoded by position)
//! client <── Event, Event, ...                           ── node   (prost)
//! ```

use std::marker::PhantomData;

use futures_util::{Stream, StreamExt};
use prost::Message;
use tonic::codec::{BufferSettings, Codec, Streaming};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::events::{AckRequest, ConsumeRequest, Event};
use crate::raw::RawCodec;

/// The gRPC path of Consume.
pub const CONSUME_PATH: &str = "/events.Stream/Consume";

/// The metadata key of our extension to Consume: the most events the client may hold
/// unread or unacked (a slow handler asks for few, so queued events do not wait out
/// their `ack_wait`). Absent: the server's window (256).
pub const WINDOW_HEADER: &str = "micro-events-window";

/// The server's codec: raw requests in, prost `T` out.
#[derive(Debug)]
pub struct ServerCodec<T>(PhantomData<T>);

impl<T> Default for ServerCodec<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Message + Send + 'static> Codec for ServerCodec<T> {
    type Encode = T;
    type Decode = Vec<u8>;
    type Encoder = ProstEncoder<T>;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

/// The client's codec: raw requests out, prost `T` in.
#[derive(Debug)]
pub struct ClientCodec<T>(PhantomData<T>);

impl<T> Default for ClientCodec<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T: Message + Default + Send + 'static> Codec for ClientCodec<T> {
    type Encode = Vec<u8>;
    type Decode = T;
    type Encoder = RawCodec;
    type Decoder = ProstDecoder<T>;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(BufferSettings::default())
    }
}

/// Opens a consume stream on `channel`: `request` carries the metadata (namespace,
/// token) and the `ConsumeRequest`; every `AckRequest` from `acks` follows it on the same
/// stream. The stream of events ends when the server ends it.
pub async fn consume<S>(
    channel: tonic::transport::Channel,
    request: tonic::Request<ConsumeRequest>,
    acks: S,
) -> Result<Streaming<Event>, tonic::Status>
where
    S: Stream<Item = AckRequest> + Send + 'static,
{
    let (metadata, extensions, first) = request.into_parts();
    let messages = futures_util::stream::once(async move { first.encode_to_vec() })
        .chain(acks.map(|ack| ack.encode_to_vec()));
    let request = tonic::Request::from_parts(metadata, extensions, messages);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("the proxy is not ready: {e}")))?;
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(CONSUME_PATH);
    let response = grpc
        .streaming(request, path, ClientCodec::<Event>::default())
        .await?;
    Ok(response.into_inner())
}
