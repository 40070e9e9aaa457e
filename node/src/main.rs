//! The `ppppp` command-line program.

fn main() -> std::process::ExitCode {
    node::cli::main()
}
