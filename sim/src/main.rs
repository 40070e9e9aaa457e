//! `ppppp-sim`: see `sim::cli`.

fn main() -> std::process::ExitCode {
    sim::cli::main()
}
