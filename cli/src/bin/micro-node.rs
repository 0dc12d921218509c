//! One node of a Micro cluster.

fn main() -> std::process::ExitCode {
    micro_cli::node_main()
}
