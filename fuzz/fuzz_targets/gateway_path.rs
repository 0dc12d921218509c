//! `micro_gateway::resolve`: any URL path either names no service or a non-empty service
//! (no `/`) and a `Handler.Method` endpoint; never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|path: &str| {
    let Some((service, endpoint)) = micro_gateway::resolve(path) else {
        return;
    };
    assert!(!service.is_empty(), "{path:?} resolved to an empty service");
    assert!(
        !service.contains('/'),
        "{path:?} resolved to service {service:?}"
    );
    assert!(
        endpoint.contains('.'),
        "{path:?} resolved to endpoint {endpoint:?}"
    );
});
