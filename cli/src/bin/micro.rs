//! The `micro` command line.

fn main() -> std::process::ExitCode {
    micro_cli::cli_main()
}
