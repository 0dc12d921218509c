//! The HTTP api's auth hook: the same checks as the proxy's guard, on the resolved
//! `service:NAME:Endpoint`.

use std::sync::Arc;

use micro_actors::AuthHandle;
use micro_core::MicroError;
use micro_core::auth::{AuthError, Resource};

use crate::api::{AuthHook, AuthRequest};

/// The hook that verifies the caller's token and checks the namespace's rules.
pub fn auth_hook(auth: AuthHandle) -> AuthHook {
    Arc::new(move |request: AuthRequest| {
        let auth = auth.clone();
        Box::pin(async move {
            let named = request.namespace.as_ref().map(|n| n.as_str());
            // The auth service checks its callers itself, and a stale token must not
            // stop a login: there a token that does not verify counts as none.
            let exempt = request.service == crate::EXEMPT;
            let identified = match crate::identify(&auth, request.token.as_deref(), named) {
                Err(AuthError::Unauthorized(_)) if exempt => crate::identify(&auth, None, named),
                other => other,
            };
            let (account, namespace) = identified.map_err(|e| MicroError::from_error("api", &e))?;
            if !exempt {
                auth.check(
                    account.as_ref(),
                    &namespace,
                    &Resource::service(&request.service, &request.endpoint),
                )
                .map_err(|e| MicroError::from_error("api", &e))?;
            }
            Ok(namespace)
        })
    })
}
