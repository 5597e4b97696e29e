//! The digests of a host's latest results, kept with the host so that a
//! snapshot is compared with what is stored without reading the stored
//! rows back: one (rule digest, row digest) pair per result, sorted by the
//! rule digest, encoded as a versioned blob.
//!
//! A rule digest names a (policy, rule); a row digest covers the rule, the
//! first-failed time and the encoded `RuleResult` (which carries the
//! title, severity and status), so two rows with equal row digests store
//! the same thing. Both are the first 8 bytes of a SHA-256, so two
//! different values of one host collide with a chance of about 2^-64 per
//! pair. The blob is only a shortcut: a host whose blob is missing or not
//! understood is compared row by row, exactly.

use ring::digest::{Context, SHA256};

/// The first byte of an encoded blob; another version is not understood
/// (and so its host is compared row by row).
const VERSION: u8 = 1;
/// Bytes per encoded (rule digest, row digest) pair.
const PAIR: usize = 16;

/// The (rule digest, row digest) of every result of one host, sorted by
/// rule digest, no rule digest twice.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Digests(Vec<(u64, u64)>);

fn first_u64(context: Context) -> u64 {
    let digest = context.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_ref()[..8]);
    u64::from_be_bytes(first)
}

/// The digest naming `policy`/`rule`. The policy's length goes first, so
/// no two (policy, rule) pairs feed the same bytes.
pub(super) fn rule_digest(policy: &str, rule: &str) -> u64 {
    let mut context = Context::new(&SHA256);
    context.update(&(policy.len() as u64).to_be_bytes());
    context.update(policy.as_bytes());
    context.update(rule.as_bytes());
    first_u64(context)
}

/// The digest of what one row of `results` stores.
pub(super) fn row_digest(rule: u64, first_failed_ms: Option<i64>, body: &[u8]) -> u64 {
    let mut context = Context::new(&SHA256);
    context.update(&rule.to_be_bytes());
    match first_failed_ms {
        Some(ms) => {
            context.update(&[1]);
            context.update(&ms.to_be_bytes());
        }
        None => context.update(&[0]),
    }
    context.update(body);
    first_u64(context)
}

impl Digests {
    /// The digests of `pairs`, or `None` when two of them name the same rule
    /// digest (two rules whose digests collide, or a rule twice): such a
    /// host is compared row by row.
    pub fn from_pairs(mut pairs: Vec<(u64, u64)>) -> Option<Digests> {
        pairs.sort_unstable();
        if pairs.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        Some(Digests(pairs))
    }

    /// The encoded blob.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.0.len() * PAIR);
        out.push(VERSION);
        for (rule, row) in &self.0 {
            out.extend_from_slice(&rule.to_be_bytes());
            out.extend_from_slice(&row.to_be_bytes());
        }
        out
    }

    /// A stored blob, or `None` when it is not one this version wrote
    /// (another version, a torn length, unsorted or repeated rules).
    pub fn decode(blob: &[u8]) -> Option<Digests> {
        let (&version, pairs) = blob.split_first()?;
        if version != VERSION || !pairs.len().is_multiple_of(PAIR) {
            return None;
        }
        let mut out = Vec::with_capacity(pairs.len() / PAIR);
        for pair in pairs.chunks_exact(PAIR) {
            let (rule, row) = pair.split_at(8);
            let rule = u64::from_be_bytes(rule.try_into().ok()?);
            let row = u64::from_be_bytes(row.try_into().ok()?);
            if out.last().is_some_and(|(last, _)| *last >= rule) {
                return None;
            }
            out.push((rule, row));
        }
        Some(Digests(out))
    }

    /// Walks `self` (what is stored) against `new` (a snapshot) in rule
    /// order: `changed(i)` for each pair of `new` (by index) whose rule is
    /// not stored or whose row differs, `removed(rule)` for each stored rule
    /// that `new` lacks.
    pub fn diff(
        &self,
        new: &Digests,
        mut changed: impl FnMut(usize),
        mut removed: impl FnMut(u64),
    ) {
        let (old, new) = (&self.0, &new.0);
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) if o.0 == n.0 => {
                    if o.1 != n.1 {
                        changed(j);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(o), Some(n)) if o.0 < n.0 => {
                    removed(o.0);
                    i += 1;
                }
                (Some(o), None) => {
                    removed(o.0);
                    i += 1;
                }
                (_, Some(_)) => {
                    changed(j);
                    j += 1;
                }
                (None, None) => break,
            }
        }
    }

    /// The (rule digest, row digest) pairs, sorted by rule digest.
    #[cfg(test)]
    pub fn pairs(&self) -> &[(u64, u64)] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digests(pairs: &[(u64, u64)]) -> Digests {
        Digests::from_pairs(pairs.to_vec()).expect("distinct rules")
    }

    fn diff(old: &Digests, new: &Digests) -> (Vec<u64>, Vec<u64>) {
        let (mut changed, mut removed) = (Vec::new(), Vec::new());
        old.diff(new, |j| changed.push(new.pairs()[j].0), |r| removed.push(r));
        (changed, removed)
    }

    #[test]
    fn diff_names_changed_added_and_removed_rules() {
        let old = digests(&[(1, 10), (3, 30), (5, 50), (9, 90)]);
        let new = digests(&[(2, 20), (3, 30), (5, 51), (7, 70)]);
        assert_eq!(diff(&old, &new), (vec![2, 5, 7], vec![1, 9]));
        assert_eq!(diff(&new, &new), (vec![], vec![]));
        assert_eq!(diff(&Digests::default(), &new), (vec![2, 3, 5, 7], vec![]));
        assert_eq!(diff(&new, &Digests::default()), (vec![], vec![2, 3, 5, 7]));
    }

    #[test]
    fn a_blob_round_trips_and_anything_else_is_refused() {
        let d = digests(&[(u64::MAX, 0), (0, u64::MAX), (42, 7)]);
        let blob = d.encode();
        assert_eq!(blob.len(), 1 + 3 * PAIR);
        assert_eq!(Digests::decode(&blob), Some(d.clone()));
        assert_eq!(Digests::decode(&[VERSION]), Some(Digests::default()));
        assert_eq!(Digests::decode(&[]), None, "empty");
        assert_eq!(Digests::decode(&blob[..blob.len() - 1]), None, "torn");
        let mut other = blob.clone();
        other[0] = VERSION + 1;
        assert_eq!(Digests::decode(&other), None, "another version");
        // The first two pairs swapped: not sorted.
        let mut unsorted = vec![VERSION];
        unsorted.extend_from_slice(&blob[1 + PAIR..1 + 2 * PAIR]);
        unsorted.extend_from_slice(&blob[1..1 + PAIR]);
        assert_eq!(Digests::decode(&unsorted), None, "unsorted");
    }

    #[test]
    fn a_rule_twice_has_no_digests() {
        assert_eq!(Digests::from_pairs(vec![(4, 1), (2, 1), (4, 2)]), None);
    }

    #[test]
    fn digests_separate_what_differs() {
        assert_ne!(rule_digest("ab", "c"), rule_digest("a", "bc"));
        let rule = rule_digest("p", "r");
        assert_eq!(row_digest(rule, None, b"x"), row_digest(rule, None, b"x"));
        assert_ne!(row_digest(rule, None, b"x"), row_digest(rule, None, b"y"));
        assert_ne!(
            row_digest(rule, None, b"x"),
            row_digest(rule, Some(0), b"x")
        );
        assert_ne!(
            row_digest(rule, Some(1), b"x"),
            row_digest(rule, Some(2), b"x")
        );
        assert_ne!(
            row_digest(rule, None, b"x"),
            row_digest(rule_digest("p", "s"), None, b"x")
        );
    }
}
