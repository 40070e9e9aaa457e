//! The scenario file (TOML): what the simulated network looks like, who follows whom, what
//! gets published, which faults happen when, and what is checked. `docs/scenarios.md`
//! documents every field.
//!
//! [`Scenario::load`] parses and validates; every error names the file, the line and the
//! field (`scenarios/x.toml:12:9: group[1].count: must be > 0`). Unknown fields are errors.
//! Validation covers every range and cross-reference, so [`crate::plan::Plan::build`] cannot
//! fail on a loaded scenario.
//!
//! Files: [`model`] (the serde types and their defaults), [`load`] (reading and parsing),
//! [`validate`] (ranges and cross-references), [`error`] (located errors).

mod error;
mod load;
mod model;
mod validate;
mod validate_tunnels;

pub use error::{FieldPath, ScenarioError, Seg};
pub use model::{
    Check, Churn, CollectorMode, DictLoad, EngineKind, FOLLOWS_FEED, Fault, FaultAction, Group,
    HubAdmission, Initially, LATENCY_CURVE_DEFAULT, LATENCY_MAX_MS_DEFAULT, LATENCY_MIN_MS_DEFAULT,
    Latency, LatencyModel, LinkOverride, Network, PEERS_MAX, PostLoad, Reinitiation, ReportOptions,
    Role, Scenario, SetLoad, Substrate, SyncMethod, Topology, TopologyKind, Transport, Workload,
    random_count,
};
