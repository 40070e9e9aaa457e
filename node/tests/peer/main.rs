//! The node as actors over real loopback TCP (in one process): replication per goals,
//! realtime delivery, both transports.

mod admission;
mod ahead;
mod errors;
mod hostile;
mod processes;
mod raw;
mod reconcile;
mod redial;
mod security;
mod support;
mod two_nodes;
