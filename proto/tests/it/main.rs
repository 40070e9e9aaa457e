//! Integration tests of `proto`: conformance with the JS reference's vectors, and properties.

mod batch_soundness;
mod fuzz_smoke;
mod gc_plan;
mod props;
mod support;
mod sync_hostile;
mod sync_liveness;
mod sync_payloads;
mod sync_props;
mod sync_recon;
mod sync_recon_claims;
mod sync_recon_exchange;
mod sync_recon_session;
mod sync_replay;
mod vectors;
