//! Invites and promises, as pzp-invite 1.0.0 and pzp-promise 1.0.0 define them.
//!
//! - [`uri`]: the `pzp://invite/...` URIs (and their web links), parsed and written.
//! - [`promise`]: the promise table (tokens that let a redeemer make this peer follow them
//!   or add their key to its account, once), pure, with its JSON file format.

pub mod promise;
pub mod uri;
