//! The helloworld service as its own process: registers through the node proxy named by
//! `MICRO_PROXY` and serves until SIGINT or SIGTERM.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match helloworld::service().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line, as every micro command reports an error.
            eprintln!("error: {}", err.detail);
            ExitCode::FAILURE
        }
    }
}
