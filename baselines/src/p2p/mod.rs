//! p2p.today (`baselines.md` §3): the mesh socket's flooding (flood.rs) and the sync socket,
//! a dict replicated over it with leases (sync_table.rs); what both share — the routing
//! table's relay rule, the window of seen ids, msgpack frame sizes — is in mesh.rs.

pub mod flood;
pub mod mesh;
pub mod sync_table;
