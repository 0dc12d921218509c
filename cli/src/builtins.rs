//! The services compiled into the node binary, which `micro run NAME` starts in-node.

use std::sync::Arc;

use micro_core::MicroError;
use micro_core::registry::Service;
use micro_core::replicator::BoxFuture;
use micro_core::service::{Builtin, Builtins, Call, LocalService, Replies};

/// A framework service compiled into the node, built fresh by `make` for each start.
#[derive(Debug)]
struct FrameworkBuiltin {
    make: fn() -> micro::Service,
}

/// A started framework service, stopped (its actors with it) when the runtime stops it.
#[derive(Debug)]
struct Started(micro::RunningService);

impl LocalService for Started {
    fn describe(&self) -> Service {
        self.0.describe()
    }

    fn call(&self, call: Call) -> Replies {
        self.0.call(call)
    }

    fn stop(&self) -> BoxFuture<'static, ()> {
        let running = self.0.clone();
        Box::pin(async move {
            if let Err(err) = running.stop().await {
                tracing::warn!(%err, "an in-node service did not stop cleanly");
            }
        })
    }
}

impl Builtin for FrameworkBuiltin {
    fn start(&self) -> BoxFuture<'static, Result<Arc<dyn LocalService>, MicroError>> {
        let service = (self.make)();
        Box::pin(async move {
            let running = service.start_local().await?;
            Ok(Arc::new(Started(running)) as Arc<dyn LocalService>)
        })
    }
}

/// Every service compiled into this binary, by name.
pub fn builtins() -> Builtins {
    let mut out = Builtins::new();
    out.insert(
        helloworld::NAME.to_owned(),
        Arc::new(FrameworkBuiltin {
            make: helloworld::service,
        }) as Arc<dyn Builtin>,
    );
    out
}
