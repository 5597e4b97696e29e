//! Debian package version comparison, following dpkg's rules exactly.
//!
//! A version is `[epoch:]upstream[-revision]`. Epochs compare as numbers;
//! the upstream version and the revision compare with dpkg's `verrevcmp`:
//! alternating runs of non-digits and digits, where non-digit runs compare
//! character by character with `~` sorting before everything (even the end
//! of the string), then the end, then letters, then every other character,
//! and digit runs compare as numbers. A missing revision equals `0`.
//!
//! The comparison never fails: text that dpkg would reject as a version
//! (an epoch that is not a number, say) is compared by the same rules
//! instead, so hostile package lists cannot stop a probe.

use std::cmp::Ordering;

/// Errors of parsing a version strictly (as `dpkg` validates it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpkgVersionError {
    #[error("version `{0}` is empty")]
    Empty(String),
    #[error("version `{0}`: the epoch is not a number")]
    BadEpoch(String),
    #[error("version `{0}`: the upstream version is empty or does not start with a digit")]
    BadUpstream(String),
    #[error("version `{0}`: the revision is empty")]
    EmptyRevision(String),
    #[error("version `{0}` contains a character dpkg does not allow")]
    BadCharacter(String),
}

/// A version split into its three parts, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DpkgVersion<'a> {
    /// The epoch digits without leading zeros (`""` is epoch 0).
    pub epoch: &'a str,
    pub upstream: &'a str,
    /// `""` when the version has no revision.
    pub revision: &'a str,
}

impl<'a> DpkgVersion<'a> {
    /// Splits a version leniently: surrounding whitespace is ignored, an epoch
    /// that is not a number is kept as part of the upstream version.
    pub fn split(text: &'a str) -> DpkgVersion<'a> {
        let text = text.trim();
        let (epoch, rest) = match text.split_once(':') {
            Some((e, rest)) if !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()) => {
                (e.trim_start_matches('0'), rest)
            }
            _ => ("", text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => (u, r),
            None => (rest, ""),
        };
        DpkgVersion {
            epoch,
            upstream,
            revision,
        }
    }

    /// Parses a version the way dpkg validates it.
    pub fn parse(text: &'a str) -> Result<DpkgVersion<'a>, DpkgVersionError> {
        let trimmed = text.trim();
        let err = |f: fn(String) -> DpkgVersionError| f(text.to_string());
        if trimmed.is_empty() {
            return Err(err(DpkgVersionError::Empty));
        }
        if let Some((e, _)) = trimmed.split_once(':')
            && (e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(err(DpkgVersionError::BadEpoch));
        }
        let v = DpkgVersion::split(trimmed);
        if trimmed.rsplit_once('-').is_some() && v.revision.is_empty() {
            return Err(err(DpkgVersionError::EmptyRevision));
        }
        if !v.upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err(DpkgVersionError::BadUpstream));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~');
        let upstream_ok = v
            .upstream
            .chars()
            .all(|c| allowed(c) || c == '-' || c == ':');
        if !upstream_ok || !v.revision.chars().all(allowed) {
            return Err(err(DpkgVersionError::BadCharacter));
        }
        Ok(v)
    }
}

/// Compares two versions by dpkg's rules (`dpkg --compare-versions`).
pub fn compare(a: &str, b: &str) -> Ordering {
    compare_parts(&DpkgVersion::split(a), &DpkgVersion::split(b))
}

/// Compares two split versions: epoch, then upstream, then revision.
pub fn compare_parts(a: &DpkgVersion<'_>, b: &DpkgVersion<'_>) -> Ordering {
    compare_digits(a.epoch, b.epoch)
        .then_with(|| verrevcmp(a.upstream, b.upstream))
        .then_with(|| verrevcmp(a.revision, b.revision))
}

/// Compares two runs of digits as numbers of any length.
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The sort weight of one character of a non-digit run; `None` is the end
/// of the run (or of the string).
fn weight(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's comparison of an upstream version or a revision.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    let is_digit = |s: &[u8], k: usize| s.get(k).is_some_and(u8::is_ascii_digit);
    while i < a.len() || j < b.len() {
        // The non-digit run, character by character.
        while (i < a.len() && !is_digit(a, i)) || (j < b.len() && !is_digit(b, j)) {
            let wa = weight(a.get(i).copied().filter(|c| !c.is_ascii_digit()));
            let wb = weight(b.get(j).copied().filter(|c| !c.is_ascii_digit()));
            if wa != wb {
                return wa.cmp(&wb);
            }
            i += 1;
            j += 1;
        }
        // The digit run, as a number.
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let start_a = i;
        let start_b = j;
        while is_digit(a, i) {
            i += 1;
        }
        while is_digit(b, j) {
            j += 1;
        }
        let da = a.get(start_a..i).unwrap_or_default();
        let db = b.get(start_b..j).unwrap_or_default();
        let order = da.len().cmp(&db.len()).then_with(|| da.cmp(db));
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_finds_epoch_upstream_and_revision() {
        let v = DpkgVersion::split("1:2.3-4-5");
        assert_eq!((v.epoch, v.upstream, v.revision), ("1", "2.3-4", "5"));
        let v = DpkgVersion::split(" 007:1.0 ");
        assert_eq!((v.epoch, v.upstream, v.revision), ("7", "1.0", ""));
        let v = DpkgVersion::split("a:1.0");
        assert_eq!((v.epoch, v.upstream), ("", "a:1.0"));
    }

    #[test]
    fn strict_parse_rejects_what_dpkg_rejects() {
        assert!(DpkgVersion::parse("1.0-1").is_ok());
        assert!(DpkgVersion::parse("2:1.0~rc1+dfsg-1.1~deb12u1").is_ok());
        assert_eq!(
            DpkgVersion::parse(""),
            Err(DpkgVersionError::Empty(String::new()))
        );
        assert!(matches!(
            DpkgVersion::parse("x:1.0"),
            Err(DpkgVersionError::BadEpoch(_))
        ));
        assert!(matches!(
            DpkgVersion::parse("abc"),
            Err(DpkgVersionError::BadUpstream(_))
        ));
        assert!(matches!(
            DpkgVersion::parse("1.0-"),
            Err(DpkgVersionError::EmptyRevision(_))
        ));
        assert!(matches!(
            DpkgVersion::parse("1.0_2"),
            Err(DpkgVersionError::BadCharacter(_))
        ));
    }

    #[test]
    fn huge_epochs_compare_without_overflow() {
        let big = "99999999999999999999999999:1";
        assert_eq!(compare(big, "1:9"), Ordering::Greater);
        assert_eq!(compare(big, big), Ordering::Equal);
    }
}
