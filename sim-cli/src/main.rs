//! `ppppp-sim`: deterministic simulations of PPPPP peers, scenarios in, reports out (see
//! `cli.rs`).

mod check_baseline;
mod cli;
#[cfg(feature = "protocol")]
mod compare_protocols;
mod engine_choice;
#[cfg(feature = "protocol")]
mod protocols_recovery;
mod protocols_report;
mod run_pool;
mod stdout;
mod sweep_cmd;

fn main() -> std::process::ExitCode {
    cli::main()
}
