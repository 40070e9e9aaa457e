//! What an idle turmoil 0.7 world costs per simulated second: N hosts whose software does
//! nothing, stepped one 1 ms tick at a time (as the full-stack runner steps it).
//!
//! `cargo run --release -p sim-fullstack --example idle_cost -- HOSTS MILLISECONDS`
//! prints the hosts, simulated time, and CPU seconds spent stepping per simulated second. (docs/simulation-performance.md)

use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let millis: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_millis(millis + 1_000))
        .tick_duration(Duration::from_millis(1))
        .enable_random_order()
        .rng_seed(1)
        .build();
    for index in 0..hosts {
        sim.host(format!("peer-{index}"), || async {
            std::future::pending::<()>().await;
            Ok(())
        });
    }
    let started = cpu_seconds();
    for _ in 0..millis {
        sim.step().expect("idle hosts do not fail");
    }
    let cpu = cpu_seconds() - started;
    #[expect(clippy::cast_precision_loss, reason = "a few thousand ms")]
    let per_second = cpu * 1_000.0 / millis as f64;
    println!("hosts={hosts} sim_ms={millis} cpu_s={cpu:.3} cpu_s_per_sim_s={per_second:.3}");
}

/// CPU time of this process so far (user + system), from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("linux");
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name
        .split_whitespace()
        .map(|field| field.parse().unwrap_or(0.0))
        .collect();
    // utime and stime, in clock ticks of 1/100 s.
    (fields[11] + fields[12]) / 100.0
}
