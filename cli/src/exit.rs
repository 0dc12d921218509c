//! Exit codes and the one-line errors of the CLI (Micro v3's table, plus 64 for usage).

use micro_core::{Code, MicroError};

/// A usage error: a bad flag or argument.
pub const USAGE: u8 = 64;
/// A timeout (408).
pub const TIMEOUT: u8 = 1;
/// Unauthorized (401).
pub const UNAUTHORIZED: u8 = 2;
/// The proxy (or a service) could not be reached.
pub const UNREACHABLE: u8 = 4;
/// Unknown service or method.
pub const UNKNOWN_METHOD: u8 = 5;
/// Any other micro error.
pub const MICRO_ERROR: u8 = 127;
/// An error that is not a micro error.
pub const OTHER: u8 = 128;

/// A failed command: a one-line message and an exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// The process exit code.
    pub code: u8,
    /// The one-line message printed to stderr.
    pub message: String,
}

impl CliError {
    /// An error with `code` and `message`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(USAGE, message)
    }

    /// The error a micro error becomes.
    pub fn from_micro(err: &MicroError) -> Self {
        let code = match err.kind() {
            Code::Timeout | Code::GatewayTimeout => TIMEOUT,
            Code::Unauthorized => UNAUTHORIZED,
            Code::NotImplemented => UNKNOWN_METHOD,
            _ => MICRO_ERROR,
        };
        Self::new(code, one_line(&err.detail))
    }

    /// The error a gRPC status from the proxy becomes. A status without a micro error in
    /// it and code `Unavailable` is a connection failure.
    pub fn from_status(proxy: &str, status: &tonic::Status) -> Self {
        let carries_micro =
            !status.details().is_empty() || MicroError::from_json(status.message()).is_some();
        if !carries_micro && status.code() == tonic::Code::Unavailable {
            return Self::unreachable(proxy, status.message());
        }
        // A call that failed in the transport (the connection closed or reset under it):
        // tonic gives such statuses their cause; a server's answer has none.
        if !carries_micro
            && matches!(
                status.code(),
                tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Unavailable
            )
            && let Some(source) = std::error::Error::source(status)
        {
            return Self::unreachable(proxy, &format!("{}: {source}", status.message()));
        }
        if !carries_micro && status.code() == tonic::Code::Unimplemented {
            let message = if status.message().is_empty() {
                "unknown service or method"
            } else {
                status.message()
            };
            return Self::new(UNKNOWN_METHOD, one_line(message));
        }
        Self::from_micro(&micro_proto::micro_from_status("proxy", status))
    }

    /// The proxy at `proxy` cannot be reached.
    pub fn unreachable(proxy: &str, why: &str) -> Self {
        Self::new(
            UNREACHABLE,
            one_line(&format!(
                "cannot reach the proxy at {proxy}: {why} (is `micro server` running?)"
            )),
        )
    }
}

/// Keeps only the first line: errors are one line.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_owned()
}
