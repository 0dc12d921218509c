//! [`Error`]: the micro error every handler and client returns, and constructors for
//! the common codes.
//!
//! ```
//! let err = micro::errors::not_found("helloworld", "no greeting for bob");
//! assert_eq!(err.code, 404);
//! assert_eq!(err.kind(), micro::Code::NotFound);
//! ```

use micro_core::Code;

/// The micro error `{id, code, detail, status}` (Micro v3's `errors.Error`).
pub type Error = micro_core::MicroError;

/// A 400: the request is malformed or invalid.
pub fn bad_request(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::BadRequest, detail)
}

/// A 401: the caller has no (valid) credentials.
pub fn unauthorized(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::Unauthorized, detail)
}

/// A 403: the caller may not do this.
pub fn forbidden(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::Forbidden, detail)
}

/// A 404: the thing asked for does not exist.
pub fn not_found(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::NotFound, detail)
}

/// A 408: the request did not finish in time.
pub fn timeout(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::Timeout, detail)
}

/// A 409: the request conflicts with the current state.
pub fn conflict(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::Conflict, detail)
}

/// A 500: a bug or an unexpected failure.
pub fn internal(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::Internal, detail)
}

/// A 501: the endpoint exists in the contract but is not implemented.
pub fn not_implemented(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::NotImplemented, detail)
}

/// A 503: the service cannot serve right now; retry later.
pub fn unavailable(id: &str, detail: impl Into<String>) -> Error {
    Error::new(id, Code::Unavailable, detail)
}
