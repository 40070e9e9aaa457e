//! The `ppppp` commands against running `ppppp serve` processes (through their control
//! sockets) and against stopped peer directories: replication by `follow`, live streams,
//! identical output either way, the socket's permissions, errors a person understands, and a
//! node that can no longer write.

mod commands;
mod failures;
mod invites;
mod security;
mod support;
