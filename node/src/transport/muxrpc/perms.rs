//! secret-stack 8.1's permission check for calls from the peer (protocol.md §11.4).
//!
//! secret-stack applies *anonymous* permissions to a remote caller unless its
//! `auth` hook returned a permissions object, and SHSE's hook returns `true`, so
//! in PZP every remote caller is anonymous. muxrpc's rule: a method path is
//! allowed when some allow-listed path is a prefix of it (`sync.connect` allows
//! `["sync","connect"]` and anything below it, never `["sync"]` alone).

use std::collections::BTreeSet;

/// The anonymous allow list of a PZP peer: secret-stack core `manifest`, plus
/// what the pzp plugins mark anonymous, plus ppppp's own `promise.account` (which account
/// an open account-add promise adds keys to; see `cli::control::invites`) and
/// `sync.reconcile` (docs/sync-extension.md; the connection still refuses it past
/// `RECONCILE_PEERS_MAX`).
pub const ANONYMOUS_ALLOWED: &[&[&str]] = &[
    &["manifest"],
    &["sync", "connect"],
    &["sync", "reconcile"],
    &["net", "ping"],
    &["promise", "follow"],
    &["promise", "accountAdd"],
    &["promise", "account"],
    &["hubClient", "connect"],
    &["hub", "createTunnel"],
    &["hub", "ping"],
    &["hub", "metadata"],
    &["hub", "attendants"],
    &["hub", "createToken"],
];

/// Which method paths a remote caller may call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permissions {
    /// Every method (a trusted caller).
    AllowAll,
    /// Only method paths with one of [`ANONYMOUS_ALLOWED`] as a prefix: `Allow` of that list,
    /// read from the static list, so that each connection does not build its own copy (about
    /// 2 KiB of strings and B-tree nodes each, thousands of connections in one simulated run).
    Anonymous,
    /// Only method paths with one of these paths as a prefix.
    Allow(BTreeSet<Vec<String>>),
}

impl Permissions {
    /// PZP's anonymous permissions ([`ANONYMOUS_ALLOWED`]).
    pub fn anonymous() -> Self {
        Self::Anonymous
    }

    /// Checks a call; the error is muxrpc's exact message.
    pub fn check(&self, name: &[String]) -> Result<(), String> {
        let permitted = match self {
            Permissions::AllowAll => return Ok(()),
            Permissions::Anonymous => ANONYMOUS_ALLOWED
                .iter()
                .any(|path| !path.is_empty() && starts_with(name, path)),
            Permissions::Allow(allowed) => allowed
                .iter()
                .any(|path| !path.is_empty() && name.starts_with(path)),
        };
        if permitted {
            Ok(())
        } else {
            // JS interpolates the name array, which joins it with commas. We repeat at
            // most `ERROR_ECHO_BYTES_MAX` bytes of it.
            Err(format!(
                "method:{} is not in list of allowed methods",
                super::echo::echo(&name.join(","))
            ))
        }
    }
}

/// Whether `name` begins with the parts of `path`.
fn starts_with(name: &[String], path: &[&str]) -> bool {
    name.len() >= path.len() && path.iter().zip(name).all(|(part, named)| part == named)
}

impl Default for Permissions {
    fn default() -> Self {
        Self::anonymous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn anonymous_list_and_exact_error_text() {
        let perms = Permissions::anonymous();
        assert_eq!(perms.check(&path(&["sync", "connect"])), Ok(()));
        assert_eq!(perms.check(&path(&["net", "ping"])), Ok(()));
        assert_eq!(perms.check(&path(&["manifest"])), Ok(()));
        assert_eq!(perms.check(&path(&["hub", "createToken"])), Ok(()));
        // Below an allowed leaf is allowed too (muxrpc's prefix rule).
        assert_eq!(perms.check(&path(&["sync", "connect", "x"])), Ok(()));
        assert_eq!(
            perms.check(&path(&["db", "add"])),
            Err("method:db,add is not in list of allowed methods".to_owned())
        );
        assert_eq!(
            perms.check(&path(&["sync"])),
            Err("method:sync is not in list of allowed methods".to_owned())
        );
        assert_eq!(
            perms.check(&path(&["net", "connect"])),
            Err("method:net,connect is not in list of allowed methods".to_owned())
        );
        assert_eq!(
            perms.check(&[]),
            Err("method: is not in list of allowed methods".to_owned())
        );
        assert_eq!(Permissions::AllowAll.check(&path(&["db", "add"])), Ok(()));
    }

    /// `Anonymous` reads the static list; it must answer every call as `Allow` of that list.
    #[test]
    fn anonymous_answers_as_the_allow_list_it_stands_for() {
        let listed = Permissions::Allow(ANONYMOUS_ALLOWED.iter().map(|p| path(p)).collect());
        let mut names: Vec<Vec<String>> = vec![vec![], path(&["db", "add"]), path(&["hub"])];
        for allowed in ANONYMOUS_ALLOWED {
            let full = path(allowed);
            names.push(full[..full.len() - 1].to_vec());
            names.push([full.clone(), path(&["below"])].concat());
            let mut changed = full.clone();
            changed.last_mut().expect("no empty path").push('x');
            names.push(changed);
            names.push(full);
        }
        for name in &names {
            assert_eq!(
                Permissions::anonymous().check(name),
                listed.check(name),
                "{name:?}"
            );
        }
    }
}
