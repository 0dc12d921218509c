//! [`Context`]: what a handler knows about the call it serves.

use std::collections::BTreeMap;

use micro_core::Namespace;
use micro_core::service::Call;

/// Metadata key of the caller's credentials (`Bearer <token>`).
pub const AUTHORIZATION_METADATA: &str = "authorization";

/// The call a handler serves: the caller's namespace, the endpoint, and the request
/// metadata (lower-case keys, as gRPC carries them).
///
/// ```
/// use micro_core::service::Call;
/// let mut call = Call { endpoint: "Helloworld.Call".into(), ..Call::default() };
/// call.metadata.insert("authorization".into(), "Bearer abc".into());
/// let ctx = micro::Context::from_call(&call);
/// assert_eq!(ctx.endpoint(), "Helloworld.Call");
/// assert_eq!(ctx.token(), Some("abc"));
/// assert_eq!(ctx.namespace().as_str(), "micro");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Context {
    namespace: Namespace,
    service: String,
    endpoint: String,
    metadata: BTreeMap<String, String>,
}

impl Context {
    /// The context of `call` (its body left out).
    pub fn from_call(call: &Call) -> Self {
        Self {
            namespace: call.namespace.clone(),
            service: call.service.clone(),
            endpoint: call.endpoint.clone(),
            metadata: call.metadata.clone(),
        }
    }

    /// The caller's namespace.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The registry name of the service called (`helloworld`).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The endpoint called (`Helloworld.Call`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every request metadata entry (lower-case keys).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// One metadata entry, looked up by its lower-case key.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.metadata
            .get(&key.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The caller's bearer token, from the `authorization` metadata.
    pub fn token(&self) -> Option<&str> {
        let value = self.get(AUTHORIZATION_METADATA)?;
        Some(value.strip_prefix("Bearer ").unwrap_or(value))
    }
}
