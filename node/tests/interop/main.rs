//! Interop with the JavaScript reference: `ppppp serve` and `node interop/peer.js` (npm
//! `pzp-*`, pinned in `interop/package-lock.json`) sync over real sockets. The tests install
//! the JS side themselves (`npm ci` in `interop/` when `node_modules` is missing) and need
//! `node` (>= 20) and `npm` on PATH.

mod discovery;
mod harness;
mod hubs;
mod invites;
mod peers;
mod reconcile;
mod relay;
mod sync;
mod wire;
