//! The thread pool that runs several independent simulations at once (`sweep`,
//! `compare-protocols`). Each simulation stays single-threaded; the pool is the program
//! edge, never inside a simulation.

use anyhow::Context;

/// A pool of `jobs` threads (default: the machine's cores), for `what` (named in the error).
pub(crate) fn run_pool(jobs: Option<usize>, what: &str) -> anyhow::Result<rayon::ThreadPool> {
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get))
        .max(1);
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .with_context(|| format!("cannot start the {what}'s thread pool"))
}
