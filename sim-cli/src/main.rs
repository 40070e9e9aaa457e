//! `ppppp-sim`: deterministic simulations of PPPPP peers, scenarios in, reports out (see
//! `cli.rs`).

mod check_baseline;
mod cli;
mod engine_choice;
mod stdout;
mod sweep_cmd;

fn main() -> std::process::ExitCode {
    cli::main()
}
