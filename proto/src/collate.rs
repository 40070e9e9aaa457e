//! The reference's tie-break inside a tangle depth: `String.prototype.localeCompare`.
//!
//! topoSort orders msgs of equal depth with ICU collation, not byte order, and set and dict
//! values depend on that order (a concurrent dict update "wins" by it; vector
//! `dictConcurrentUpdates`). For base58 IDs (digits and ASCII letters) ICU's root collation
//! reduces to: compare case-insensitively, digits before letters; if that ties, the first
//! position where the case differs decides, lowercase first. protocol.md §5.4 reports the same
//! result under the locales und, C, en_US and de_DE, and the vectors' orderings confirm it.

use std::cmp::Ordering;

/// Compares two msg IDs as `a.localeCompare(b)` does in Node 20 (ICU root collation).
#[must_use]
pub fn compare(a: &str, b: &str) -> Ordering {
    // Primary strength: letters without case. Digits sort before letters in both ASCII and
    // ICU, so lowercased ASCII byte order is the primary order.
    let primary = a
        .bytes()
        .map(|byte| byte.to_ascii_lowercase())
        .cmp(b.bytes().map(|byte| byte.to_ascii_lowercase()));
    if primary != Ordering::Equal {
        return primary;
    }
    // Tertiary strength: at the first case difference, lowercase sorts first. Equal primary
    // keys have equal length, so zipping loses nothing.
    for (left, right) in a.bytes().zip(b.bytes()) {
        if left != right {
            return if left.is_ascii_lowercase() {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_first_then_lowercase_first() {
        assert_eq!(compare("a", "B"), Ordering::Less);
        assert_eq!(compare("B", "a"), Ordering::Greater);
        assert_eq!(compare("9", "a"), Ordering::Less);
        assert_eq!(compare("ab", "Ab"), Ordering::Less);
        assert_eq!(compare("Ab", "ab"), Ordering::Greater);
        assert_eq!(compare("abc", "abcd"), Ordering::Less);
        assert_eq!(compare("x", "x"), Ordering::Equal);
    }
}
