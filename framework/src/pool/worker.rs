//! [`WorkerActor`]: serves one call at a time, awaiting the handler inside `handle` so
//! ractor turns a panic into a failure its supervisor sees.

use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::context::Context;
use crate::error::{self, Error};
use crate::handler::{Invoke, Output};

/// A worker of a handler's pool.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WorkerActor;

/// What a worker is asked to do.
pub(crate) enum WorkerMsg {
    /// Run `invoke` on `body` and reply with its output.
    Call {
        invoke: Invoke,
        ctx: Context,
        body: Vec<u8>,
        reply: RpcReplyPort<Result<Output, Error>>,
    },
}

/// How a worker is configured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WorkerArgs {
    /// The longest a handler may take before its call fails with a 408.
    pub(crate) timeout: Duration,
}

impl Actor for WorkerActor {
    type Msg = WorkerMsg;
    type State = WorkerArgs;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<WorkerMsg>,
        args: WorkerArgs,
    ) -> Result<WorkerArgs, ActorProcessingErr> {
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<WorkerMsg>,
        message: WorkerMsg,
        state: &mut WorkerArgs,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            WorkerMsg::Call {
                invoke,
                ctx,
                body,
                reply,
            } => on_call(state, &invoke, ctx, body, reply).await,
        }
        Ok(())
    }
}

async fn on_call(
    state: &WorkerArgs,
    invoke: &Invoke,
    ctx: Context,
    body: Vec<u8>,
    reply: RpcReplyPort<Result<Output, Error>>,
) {
    let id = ctx.service().to_owned();
    let endpoint = ctx.endpoint().to_owned();
    let result = match tokio::time::timeout(state.timeout, invoke(ctx, body)).await {
        Ok(result) => result,
        Err(_) => Err(error::timeout(
            &id,
            format!("{endpoint} did not finish within {:?}", state.timeout),
        )),
    };
    // The caller may have given up (its own deadline passed); nothing to do then.
    let _ = reply.send(result);
}
