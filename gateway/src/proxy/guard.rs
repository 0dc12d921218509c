//! The proxy's door check, run before any service sees a request.
//!
//! ```text
//! Authorization: Bearer JWT ──verify──> account (401 if the token is bad or another scheme)
//! Micro-Namespace, else the account's issuer, else `micro` ──> namespace (header rewritten)
//! /pkg.Handler/Method ──> resource service:pkg:Handler.Method ──rules──> 401 / 403 / on
//! ```
//!
//! The account travels on in the request's extensions as a [`Caller`], for the core
//! services' own namespace checks (`authorize`, `authorize_admin`); a core service acting
//! on a namespace its options name, other than the request's, checks that namespace's
//! rules too. The auth service is never subject to rules (it checks every caller itself):
//! a namespace that denies everything must still let its admin log in and undo it; and
//! there a token that does not verify counts as none, so a stale login cannot block a
//! new one.

use axum::body::Body;
use axum::extract::State;
use axum::middleware::Next;
use axum::response::Response;
use micro_actors::AuthHandle;
use micro_core::Namespace;
use micro_core::auth::{Account, AuthError, Resource};
use tonic::Status;

use crate::proxy::NAMESPACE_HEADER;

/// The service whose endpoints rules never apply to (each checks its callers itself).
pub const EXEMPT: &str = "auth";

/// Who made a request (the account of a valid bearer token, or nobody), and what the
/// guard checked, so a service can check the same resource in another namespace.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The caller's account.
    pub account: Option<Account>,
    /// The resource the request reaches (`None` when auth is off).
    pub resource: Option<Resource>,
    /// The checks (`None` when auth is off).
    pub auth: Option<AuthHandle>,
}

/// The account that made `request`, if it sent a valid token.
pub fn caller_of<T>(request: &tonic::Request<T>) -> Option<&Account> {
    request
        .extensions()
        .get::<Caller>()
        .and_then(|caller| caller.account.as_ref())
}

/// Checks `namespace`'s rules for `request`'s resource: for a core service acting on a
/// namespace its options name rather than the request's (which the guard checked).
pub(crate) fn check_rules_of<T>(
    request: &tonic::Request<T>,
    namespace: &Namespace,
    service: &str,
) -> Result<(), Status> {
    let Some(caller) = request.extensions().get::<Caller>() else {
        return Ok(());
    };
    let (Some(auth), Some(resource)) = (&caller.auth, &caller.resource) else {
        return Ok(());
    };
    if resource.name == EXEMPT {
        return Ok(());
    }
    auth.check(caller.account.as_ref(), namespace, resource)
        .map_err(|e| refused(service, &e))
}

/// The gRPC status of an auth refusal made by `service`.
pub(crate) fn refused(service: &str, err: &AuthError) -> Status {
    micro_proto::status_from_error(service, err)
}

/// The bearer token of an `Authorization` value; any other scheme is refused.
pub fn bearer(value: &str) -> Result<&str, AuthError> {
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AuthError::Unauthorized("the Authorization header must be `Bearer <token>`".to_owned())
        })
}

/// The account of `token` (if any) and the namespace a request acts in: the one it
/// names, else its account's, else `micro`.
pub fn identify(
    auth: &AuthHandle,
    token: Option<&str>,
    named: Option<&str>,
) -> Result<(Option<Account>, Namespace), AuthError> {
    let account = token.map(|t| auth.verify(t)).transpose()?;
    let namespace = match named.filter(|n| !n.is_empty()) {
        Some(name) => Namespace::new(name).map_err(|e| AuthError::Invalid(e.to_string()))?,
        None => match &account {
            Some(a) => Namespace::new(a.issuer.as_str())
                .map_err(|e| AuthError::Unauthorized(e.to_string()))?,
            None => Namespace::default(),
        },
    };
    Ok((account, namespace))
}

/// The caller every request acts as when auth is off (the simulation only).
fn unchecked_caller() -> Account {
    Account {
        id: "simulation".to_owned(),
        kind: micro_core::auth::TYPE_SERVICE.to_owned(),
        scopes: vec![micro_core::auth::SCOPE_ADMIN.to_owned()],
        issuer: micro_core::namespace::DEFAULT_NAMESPACE.to_owned(),
        ..Account::default()
    }
}

fn admit(auth: Option<&AuthHandle>, request: &mut http::Request<Body>) -> Result<(), AuthError> {
    let Some(auth) = auth else {
        request.extensions_mut().insert(Caller {
            account: Some(unchecked_caller()),
            ..Caller::default()
        });
        return Ok(());
    };
    let target = micro_proto::raw::split_path(request.uri().path())
        .map(|(service, endpoint)| Resource::service(&service, &endpoint));
    let exempt = target.as_ref().is_some_and(|r| r.name == EXEMPT);
    let headers = request.headers();
    let token = match headers.get(http::header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(bearer(value.to_str().map_err(|_| {
            AuthError::Unauthorized("the Authorization header is not text".to_owned())
        })?)?),
    };
    let named =
        match headers.get(NAMESPACE_HEADER) {
            None => None,
            Some(value) => Some(value.to_str().map_err(|_| {
                AuthError::Invalid("Micro-Namespace must be ASCII text".to_owned())
            })?),
        };
    let (account, namespace) = match identify(auth, token, named) {
        Err(AuthError::Unauthorized(_)) if exempt => identify(auth, None, named)?,
        other => other?,
    };
    if let Some(resource) = &target
        && !exempt
    {
        auth.check(account.as_ref(), &namespace, resource)?;
    }
    if let Ok(value) = http::HeaderValue::from_str(namespace.as_str()) {
        request.headers_mut().insert(NAMESPACE_HEADER, value);
    }
    request.extensions_mut().insert(Caller {
        account,
        resource: target,
        auth: Some(auth.clone()),
    });
    Ok(())
}

/// The middleware: admits a request or answers it with the refusal as a gRPC status.
pub(crate) async fn guard(
    State(auth): State<Option<AuthHandle>>,
    mut request: http::Request<Body>,
    next: Next,
) -> Response {
    match admit(auth.as_ref(), &mut request) {
        Ok(()) => next.run(request).await,
        Err(err) => refused("proxy", &err).into_http(),
    }
}

/// v3's `Authorize` for a core service: any account of `namespace` (or a `micro` admin).
pub(crate) fn require_account<T>(
    request: &tonic::Request<T>,
    namespace: &Namespace,
    service: &str,
) -> Result<(), Status> {
    micro_core::auth::authorize(caller_of(request), namespace.as_str())
        .map_err(|e| refused(service, &e))
}

/// v3's `AuthorizeAdmin` for a core service: an admin or service account of `namespace`
/// (or a `micro` admin).
pub(crate) fn require_admin<T>(
    request: &tonic::Request<T>,
    namespace: &Namespace,
    service: &str,
) -> Result<(), Status> {
    micro_core::auth::authorize_admin(caller_of(request), namespace.as_str())
        .map_err(|e| refused(service, &e))
}
