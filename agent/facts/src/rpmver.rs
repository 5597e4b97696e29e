//! RPM package version comparison, following rpm's `rpmvercmp` and its
//! epoch-version-release rules.
//!
//! A version is `[epoch:]version[-release]`. Epochs compare as numbers (a
//! missing epoch is 0). Versions and releases compare segment by segment:
//! characters other than ASCII letters, digits, `~` and `^` only separate
//! segments; a digit run compares as a number and is newer than a letter run;
//! letter runs compare bytewise; `~` sorts before everything, even the end
//! of the string (`1.0~rc1 < 1.0`); `^` sorts after the end of the string
//! but before any other segment (`1.0 < 1.0^git1 < 1.0.1`). As in rpm's
//! `rpmverCmp` (what `rpm.vercmp` answers), a missing release compares as an
//! empty one, so `1.2` is older than every `1.2-RELEASE` but one starting
//! with `~`.
//!
//! The comparison never fails: any text compares by these rules, so hostile
//! package databases cannot stop a probe.

use std::cmp::Ordering;

/// A version split into its three parts, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpmVersion<'a> {
    /// The epoch digits without leading zeros (`""` is epoch 0).
    pub epoch: &'a str,
    pub version: &'a str,
    /// `None` when the text has no `-`.
    pub release: Option<&'a str>,
}

impl<'a> RpmVersion<'a> {
    /// Splits `[epoch:]version[-release]` as rpm does: the epoch is the
    /// leading digits before a `:` (an empty epoch is 0), the release follows
    /// the last `-`. Surrounding whitespace is ignored.
    pub fn split(text: &'a str) -> RpmVersion<'a> {
        let text = text.trim();
        let digits = text.bytes().take_while(u8::is_ascii_digit).count();
        let (epoch, rest) = match text.get(digits..).and_then(|r| r.strip_prefix(':')) {
            Some(rest) => (
                text.get(..digits)
                    .unwrap_or_default()
                    .trim_start_matches('0'),
                rest,
            ),
            None => ("", text),
        };
        let (version, release) = match rest.rsplit_once('-') {
            Some((v, r)) => (v, Some(r)),
            None => (rest, None),
        };
        RpmVersion {
            epoch,
            version,
            release,
        }
    }

    /// `epoch:version-release` with the epoch only when it is not 0, the
    /// way `rpm -q --qf '%{EVR}'` prints it.
    pub fn display(epoch: Option<u32>, version: &str, release: &str) -> String {
        match epoch {
            Some(e) if e != 0 => format!("{e}:{version}-{release}"),
            _ => format!("{version}-{release}"),
        }
    }
}

/// Compares two versions by rpm's rules (what `rpmdev-vercmp` prints).
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_parts(&RpmVersion::split(a), &RpmVersion::split(b))
}

/// Compares two split versions: epoch, then version, then release (a
/// missing one compares as empty).
pub fn compare_parts(a: &RpmVersion<'_>, b: &RpmVersion<'_>) -> Ordering {
    compare_digits(a.epoch, b.epoch)
        .then_with(|| rpmvercmp(a.version, b.version))
        .then_with(|| rpmvercmp(a.release.unwrap_or(""), b.release.unwrap_or("")))
}

/// Compares two runs of digits as numbers of any length.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// True for bytes that only separate segments.
fn is_separator(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && c != b'~' && c != b'^'
}

/// The length of the run at the start of `s` whose bytes satisfy `class`.
fn run(s: &[u8], class: fn(&u8) -> bool) -> usize {
    s.iter().take_while(|c| class(c)).count()
}

/// rpm's comparison of one version or release string.
pub fn rpmvercmp(a: &str, b: &str) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        a = a
            .get(a.iter().take_while(|c| is_separator(**c)).count()..)
            .unwrap_or_default();
        b = b
            .get(b.iter().take_while(|c| is_separator(**c)).count()..)
            .unwrap_or_default();
        let (ca, cb) = (a.first().copied(), b.first().copied());
        if ca == Some(b'~') || cb == Some(b'~') {
            if ca != Some(b'~') {
                return Ordering::Greater;
            }
            if cb != Some(b'~') {
                return Ordering::Less;
            }
            a = a.get(1..).unwrap_or_default();
            b = b.get(1..).unwrap_or_default();
            continue;
        }
        if ca == Some(b'^') || cb == Some(b'^') {
            // The end of a string (the base version) is older than a caret.
            match (ca, cb) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {
                    a = a.get(1..).unwrap_or_default();
                    b = b.get(1..).unwrap_or_default();
                    continue;
                }
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        let (Some(ca), Some(_)) = (ca, cb) else {
            break;
        };
        let numeric = ca.is_ascii_digit();
        let class: fn(&u8) -> bool = if numeric {
            u8::is_ascii_digit
        } else {
            u8::is_ascii_alphabetic
        };
        let (la, lb) = (run(a, class), run(b, class));
        if lb == 0 {
            // Segments of different kinds: a number is newer than letters.
            return if numeric {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (sa, sb) = (
            a.get(..la).unwrap_or_default(),
            b.get(..lb).unwrap_or_default(),
        );
        let order = if numeric {
            let sa = sa.get(run(sa, |c| *c == b'0')..).unwrap_or_default();
            let sb = sb.get(run(sb, |c| *c == b'0')..).unwrap_or_default();
            sa.len().cmp(&sb.len()).then_with(|| sa.cmp(sb))
        } else {
            sa.cmp(sb)
        };
        if order != Ordering::Equal {
            return order;
        }
        a = a.get(la..).unwrap_or_default();
        b = b.get(lb..).unwrap_or_default();
    }
    // Every segment matched: whichever still has characters left is newer.
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        _ => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::{Equal, Greater, Less};

    /// Orderings from rpm's own test suite (`tests/rpmvercmp.at`) and the
    /// Fedora packaging guidelines on `~` and `^`.
    const KNOWN: &[(&str, &str, Ordering)] = &[
        ("1.0", "1.0", Equal),
        ("1.0", "2.0", Less),
        ("2.0", "1.0", Greater),
        ("2.0.1", "2.0.1", Equal),
        ("2.0", "2.0.1", Less),
        ("2.0.1a", "2.0.1a", Equal),
        ("2.0.1a", "2.0.1", Greater),
        ("5.5p1", "5.5p2", Less),
        ("5.5p10", "5.5p1", Greater),
        ("10xyz", "10.1xyz", Less),
        ("xyz10", "xyz10.1", Less),
        ("xyz.4", "8", Less),
        ("xyz.4", "2", Less),
        ("5.5p2", "5.6p1", Less),
        ("5.6p1", "6.5p1", Less),
        ("6.0.rc1", "6.0", Greater),
        ("10b2", "10a1", Greater),
        ("10a2", "10b2", Less),
        ("1.0aa", "1.0a", Greater),
        ("10.0001", "10.1", Equal),
        ("10.0001", "10.0039", Less),
        ("4.999.9", "5.0", Less),
        ("20101121", "20101122", Less),
        ("2_0", "2_0", Equal),
        ("2.0", "2_0", Equal),
        ("a", "a", Equal),
        ("a+", "a_", Equal),
        ("+a", "_a", Equal),
        ("+_", "_+", Equal),
        ("1.0~rc1", "1.0~rc1", Equal),
        ("1.0~rc1", "1.0", Less),
        ("1.0~rc1", "1.0~rc2", Less),
        ("1.0~rc1~git123", "1.0~rc1", Less),
        ("1.0^", "1.0^", Equal),
        ("1.0^", "1.0", Greater),
        ("1.0^git1", "1.0", Greater),
        ("1.0^git1", "1.0^git2", Less),
        ("1.0^git1", "1.01", Less),
        ("1.0^20160101", "1.0.1", Less),
        ("1.0^20160101^git1", "1.0^20160101", Greater),
        ("1.0~rc1^git1", "1.0~rc1", Greater),
        ("1.0^git1~pre", "1.0^git1", Less),
        ("1.0^git1", "1.0~rc1", Greater),
    ];

    #[test]
    fn rpmvercmp_agrees_with_known_orderings() {
        for (a, b, want) in KNOWN {
            assert_eq!(rpmvercmp(a, b), *want, "rpmvercmp({a}, {b})");
            assert_eq!(rpmvercmp(b, a), want.reverse(), "rpmvercmp({b}, {a})");
        }
    }

    #[test]
    fn epoch_then_version_then_release() {
        assert_eq!(compare("1:1.0-1", "2.0-1"), Greater);
        assert_eq!(compare("0:2.0-1", "2.0-1"), Equal);
        assert_eq!(compare("2.0-1", "2.0-2"), Less);
        assert_eq!(compare("2.0-1.el9", "2.0-1.el9_2"), Less);
        assert_eq!(compare("99999999999999999999:1-1", "1:9-9"), Greater);
        // A missing release is an empty one, older than any but `~...`.
        assert_eq!(compare("2.0", "2.0-7"), Less);
        assert_eq!(compare("2.0", "2.0-~7"), Greater);
        assert_eq!(compare("2.0", "2.1-7"), Less);
    }

    #[test]
    fn split_finds_epoch_version_and_release() {
        let v = RpmVersion::split("2:1.2.3-4.fc40");
        assert_eq!(
            (v.epoch, v.version, v.release),
            ("2", "1.2.3", Some("4.fc40"))
        );
        let v = RpmVersion::split("1.0-a-b");
        assert_eq!((v.epoch, v.version, v.release), ("", "1.0-a", Some("b")));
        let v = RpmVersion::split("x:1.0");
        assert_eq!((v.epoch, v.version, v.release), ("", "x:1.0", None));
        assert_eq!(RpmVersion::display(Some(2), "1.2.3", "4"), "2:1.2.3-4");
        assert_eq!(RpmVersion::display(Some(0), "1.2.3", "4"), "1.2.3-4");
        assert_eq!(RpmVersion::display(None, "1", "2"), "1-2");
    }

    proptest::proptest! {
        /// Any text compares without panicking, and the order is antisymmetric.
        #[test]
        fn any_text_compares_both_ways(a in "\\PC{0,24}", b in "[0-9a-z.~^:_+-]{0,16}") {
            proptest::prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            proptest::prop_assert_eq!(rpmvercmp(&a, &b), rpmvercmp(&b, &a).reverse());
            proptest::prop_assert_eq!(compare(&b, &b), Equal);
        }
    }
}
