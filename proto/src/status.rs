//! Errors <-> `tonic::Status`, in one place.
//!
//! A micro error travels as a gRPC status whose code is mapped from the HTTP code, whose
//! message is the error's JSON (as Micro v3 did) and whose details carry the encoded
//! `errors.Error`. Readers prefer the details, then the JSON message, then the code.

use micro_core::{Code, HasCode, MicroError};
use prost::Message;
use tonic::codegen::Bytes;

/// The gRPC status of a micro error.
pub fn status_from_micro(err: &MicroError) -> tonic::Status {
    let detail = crate::errors::Error {
        id: err.id.clone(),
        code: err.code,
        detail: err.detail.clone(),
        status: err.status.clone(),
    };
    tonic::Status::with_details(
        grpc_code(err.kind()),
        err.to_json(),
        Bytes::from(detail.encode_to_vec()),
    )
}

/// The gRPC status of any coded error, attributed to service `id`.
pub fn status_from_error<E: HasCode + std::fmt::Display>(id: &str, err: &E) -> tonic::Status {
    status_from_micro(&MicroError::from_error(id, err))
}

/// The micro error a gRPC status carries; statuses from other servers (or from tonic
/// itself) become a micro error with the mapped code and the status message as detail.
pub fn micro_from_status(id: &str, status: &tonic::Status) -> MicroError {
    if !status.details().is_empty()
        && let Ok(err) = crate::errors::Error::decode(status.details())
        && err.code != 0
    {
        return MicroError {
            id: err.id,
            code: err.code,
            detail: err.detail,
            status: err.status,
        };
    }
    if let Some(err) = MicroError::from_json(status.message()) {
        return err;
    }
    MicroError::new(id, code_of_grpc(status.code()), status.message())
}

/// The gRPC code for a micro code (Micro v3's mapping, plus 413 and 5xx).
fn grpc_code(code: Code) -> tonic::Code {
    match code {
        Code::BadRequest => tonic::Code::InvalidArgument,
        Code::Unauthorized => tonic::Code::Unauthenticated,
        Code::Forbidden => tonic::Code::PermissionDenied,
        Code::NotFound => tonic::Code::NotFound,
        Code::MethodNotAllowed | Code::NotImplemented => tonic::Code::Unimplemented,
        Code::Timeout | Code::GatewayTimeout => tonic::Code::DeadlineExceeded,
        Code::Conflict => tonic::Code::AlreadyExists,
        Code::PreconditionFailed => tonic::Code::FailedPrecondition,
        Code::PayloadTooLarge | Code::InsufficientStorage | Code::TooManyRequests => {
            tonic::Code::ResourceExhausted
        }
        Code::Internal => tonic::Code::Internal,
        Code::BadGateway | Code::Unavailable => tonic::Code::Unavailable,
    }
}

/// The micro code for a gRPC code.
fn code_of_grpc(code: tonic::Code) -> Code {
    match code {
        tonic::Code::InvalidArgument | tonic::Code::OutOfRange => Code::BadRequest,
        tonic::Code::Unauthenticated => Code::Unauthorized,
        tonic::Code::PermissionDenied => Code::Forbidden,
        tonic::Code::NotFound => Code::NotFound,
        tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => Code::Timeout,
        tonic::Code::AlreadyExists | tonic::Code::Aborted => Code::Conflict,
        tonic::Code::FailedPrecondition => Code::PreconditionFailed,
        tonic::Code::ResourceExhausted => Code::PayloadTooLarge,
        tonic::Code::Unimplemented => Code::NotImplemented,
        tonic::Code::Unavailable => Code::Unavailable,
        _ => Code::Internal,
    }
}

/// The start of tonic's message for a request body that is not valid protobuf, as it
/// appears in `grpc-message` (percent-encoded) and decoded.
const BAD_PROTOBUF: [&[u8]; 2] = [
    b"failed%20to%20decode%20Protobuf%20message",
    b"failed to decode Protobuf message",
];

/// An axum middleware for gRPC servers: tonic answers a request whose body is not valid
/// protobuf with `INTERNAL`; this makes it `INVALID_ARGUMENT`, since the caller sent bad
/// input and the server is fine (Micro's 400, not 500).
pub async fn bad_protobuf_is_invalid_argument(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|v| v == "13");
    let undecodable = headers
        .get("grpc-message")
        .is_some_and(|m| BAD_PROTOBUF.iter().any(|p| m.as_bytes().starts_with(p)));
    if internal && undecodable {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("3"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_statuses_map_by_code() {
        let err = micro_from_status("store", &tonic::Status::unavailable("down"));
        assert_eq!(
            (err.kind(), err.detail.as_str()),
            (Code::Unavailable, "down")
        );
    }

    #[test]
    fn every_code_survives_the_round_trip() {
        for http in [
            400, 401, 403, 404, 408, 409, 412, 413, 429, 500, 501, 503, 507,
        ] {
            let err = MicroError::new("x", Code::from_http_status(http), "d");
            assert_eq!(micro_from_status("x", &status_from_micro(&err)), err);
        }
    }
}
