//! Hostile peers and careless users against the real `ppppp` program (issue 12): each attack
//! runs from loopback against a `ppppp serve` process, bounded in count and time, and checks
//! the victim's memory as the kernel reports it (`/proc/PID/status`) and that a legitimate
//! peer still syncs during and after the attack. Speed is never a pass/fail threshold: waits
//! are generous timeouts, and what is asserted is memory, counts and "the legit peer synced".

mod admission;
mod error_replies;
mod long_fields;
mod msg_check;
mod never_reads;
mod random_tangles;
mod store_damage;
mod support;
