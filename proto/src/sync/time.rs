//! The time a sync machine is handed. Its own module because both the session and the
//! claims it shares with its peer's other sessions measure by it.

/// Time as the shell measures it, in milliseconds since an origin it chooses. Sessions and
/// claims read no clock: the shell hands them the time with each input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Time(pub u64);
