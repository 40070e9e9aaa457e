//! Integration tests of the sim crate: scenario errors, shipped scenarios, determinism,
//! metrics math on hand-made event streams, checkers, sweep statistics and compare, and the
//! engines: the turmoil runner with real peers, and the protocol tier against it.

mod baseline;
mod checks;
mod compare_protocols;
mod compare_sweep;
mod delivery;
mod determinism;
mod engines;
mod experiments;
mod fabric;
mod limits;
mod metrics_math;
mod real_peers;
mod scenario_errors;
mod scenarios;
mod streams;
mod support;
mod tunnels;
