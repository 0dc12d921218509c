//! The error vocabulary shared by every service: a [`Code`] (the HTTP status a micro error
//! carries) and the wire error [`MicroError`] `{id, code, detail, status}`.
//!
//! Every public error type implements [`HasCode`]; the mapping to gRPC statuses lives in
//! `micro-proto` and to HTTP responses in `micro-gateway`, each in one place.

use serde::{Deserialize, Serialize};

/// The kind of failure, as the HTTP status code Micro v3 attached to its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Code {
    /// 400: the request is malformed or invalid.
    BadRequest,
    /// 401: no (valid) credentials.
    Unauthorized,
    /// 403: credentials valid but not allowed.
    Forbidden,
    /// 404: the thing asked for does not exist.
    NotFound,
    /// 405: the method is not allowed.
    MethodNotAllowed,
    /// 408: the request did not finish in time.
    Timeout,
    /// 409: the request conflicts with the current state.
    Conflict,
    /// 412: a precondition of the request does not hold.
    PreconditionFailed,
    /// 413: the request or one of its parts is too large.
    PayloadTooLarge,
    /// 429: too many attempts (failed logins); retry after the time the detail gives.
    TooManyRequests,
    /// 500: a bug or an unexpected failure inside the platform.
    Internal,
    /// 501: the method exists in the contract but is not implemented.
    NotImplemented,
    /// 502: an upstream service answered badly.
    BadGateway,
    /// 503: the platform cannot serve right now (no leader, shutting down); retry later.
    Unavailable,
    /// 504: an upstream service did not answer in time.
    GatewayTimeout,
    /// 507: the node's disk is (nearly) full; the write was refused, nothing changed.
    InsufficientStorage,
}

impl Code {
    /// The numeric HTTP status of this code.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Timeout => 408,
            Self::Conflict => 409,
            Self::PreconditionFailed => 412,
            Self::PayloadTooLarge => 413,
            Self::Internal => 500,
            Self::NotImplemented => 501,
            Self::BadGateway => 502,
            Self::Unavailable => 503,
            Self::GatewayTimeout => 504,
            Self::InsufficientStorage => 507,
            Self::TooManyRequests => 429,
        }
    }

    /// The code for a numeric HTTP status; unknown statuses map to the nearest class.
    pub fn from_http_status(status: u16) -> Self {
        const ALL: [Code; 16] = [
            Code::BadRequest,
            Code::Unauthorized,
            Code::Forbidden,
            Code::NotFound,
            Code::MethodNotAllowed,
            Code::Timeout,
            Code::Conflict,
            Code::PreconditionFailed,
            Code::PayloadTooLarge,
            Code::Internal,
            Code::NotImplemented,
            Code::BadGateway,
            Code::Unavailable,
            Code::GatewayTimeout,
            Code::InsufficientStorage,
            Code::TooManyRequests,
        ];
        if let Some(code) = ALL.iter().find(|c| c.http_status() == status) {
            return *code;
        }
        if (400..500).contains(&status) {
            Self::BadRequest
        } else {
            Self::Internal
        }
    }

    /// The reason phrase Micro puts in the `status` field (`"Not Found"`).
    pub fn status_text(self) -> &'static str {
        match self {
            Self::BadRequest => "Bad Request",
            Self::Unauthorized => "Unauthorized",
            Self::Forbidden => "Forbidden",
            Self::NotFound => "Not Found",
            Self::MethodNotAllowed => "Method Not Allowed",
            Self::Timeout => "Request Timeout",
            Self::Conflict => "Conflict",
            Self::PreconditionFailed => "Precondition Failed",
            Self::PayloadTooLarge => "Payload Too Large",
            Self::Internal => "Internal Server Error",
            Self::NotImplemented => "Not Implemented",
            Self::BadGateway => "Bad Gateway",
            Self::Unavailable => "Service Unavailable",
            Self::GatewayTimeout => "Gateway Timeout",
            Self::InsufficientStorage => "Insufficient Storage",
            Self::TooManyRequests => "Too Many Requests",
        }
    }
}

/// Implemented by every public error so edges can map it to the wire in one place.
pub trait HasCode {
    /// The kind of this failure.
    fn code(&self) -> Code;
}

/// The wire error of Micro: `{"id","code","detail","status"}`.
///
/// ```
/// use micro_core::{Code, MicroError};
/// let err = MicroError::new("store", Code::NotFound, "key foo not found");
/// assert_eq!(err.code, 404);
/// assert_eq!(err.status, "Not Found");
/// assert_eq!(MicroError::from_json(&err.to_json()).unwrap(), err);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MicroError {
    /// The service (or component) that produced the error.
    pub id: String,
    /// The HTTP status code.
    pub code: i32,
    /// A human-readable, actionable description.
    pub detail: String,
    /// The reason phrase of `code`.
    pub status: String,
}

impl MicroError {
    /// A micro error from `id`, `code` and `detail`.
    pub fn new(id: impl Into<String>, code: Code, detail: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            code: i32::from(code.http_status()),
            detail: detail.into(),
            status: code.status_text().to_owned(),
        }
    }

    /// A micro error from any error that has a code.
    pub fn from_error<E: HasCode + std::fmt::Display>(id: &str, err: &E) -> Self {
        Self::new(id, err.code(), err.to_string())
    }

    /// The [`Code`] of this error.
    pub fn kind(&self) -> Code {
        Code::from_http_status(u16::try_from(self.code).unwrap_or(500))
    }

    /// The JSON form, with lower-case keys as Micro v3.10+ writes it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings and an integer always serializes")
    }

    /// Parses the JSON form; keys are matched case-insensitively as Go's decoder did, so
    /// the capitalized keys of Micro before v3.10 are accepted too.
    pub fn from_json(text: &str) -> Option<Self> {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let object = value.as_object()?;
        let field = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let code = field("code")?.as_i64()?;
        Some(Self {
            id: field("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            code: i32::try_from(code).ok()?,
            detail: field("detail")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
            status: field("status")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned(),
        })
    }
}

impl std::fmt::Display for MicroError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.detail)
    }
}

impl std::error::Error for MicroError {}

impl HasCode for MicroError {
    fn code(&self) -> Code {
        self.kind()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_status() {
        for status in [
            400, 401, 403, 404, 405, 408, 409, 412, 413, 500, 501, 502, 503, 504,
        ] {
            assert_eq!(Code::from_http_status(status).http_status(), status);
        }
        assert_eq!(Code::from_http_status(418), Code::BadRequest);
        assert_eq!(Code::from_http_status(599), Code::Internal);
    }

    #[test]
    fn parses_capitalized_keys_of_old_micro() {
        let old = r#"{"Id":"helloworld","Code":401,"Detail":"no","Status":"Unauthorized"}"#;
        let err = MicroError::from_json(old).unwrap();
        assert_eq!(err.kind(), Code::Unauthorized);
        assert_eq!(err.detail, "no");
        assert!(MicroError::from_json("not json").is_none());
    }
}
