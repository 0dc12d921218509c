//! The helloworld service as its own process: registers through the node proxy named by
//! `MICRO_PROXY` and serves until SIGINT or SIGTERM.

#[tokio::main]
async fn main() -> Result<(), micro::Error> {
    helloworld::service().run().await
}
