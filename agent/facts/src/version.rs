//! Which version ordering a package database's versions follow, and the
//! comparison by it.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of package database the versions came from, which decides how
/// they order: dpkg's rules for Debian, rpm's for RPM-based systems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageFormat {
    #[default]
    Dpkg,
    Rpm,
}

impl PackageFormat {
    /// Compares two versions of this format's packages.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            PackageFormat::Dpkg => crate::dpkgver::compare(a, b),
            PackageFormat::Rpm => crate::rpmver::compare(a, b),
        }
    }
}

impl fmt::Display for PackageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PackageFormat::Dpkg => "dpkg",
            PackageFormat::Rpm => "rpm",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_decides_the_ordering() {
        // dpkg: a letter after the end sorts later; `1.0a > 1.0`, and rpm agrees.
        // They differ on a letter run against a digit run: dpkg compares the
        // non-digit prefix `` (end) against `a`, rpm says numbers are newer.
        assert_eq!(PackageFormat::Dpkg.compare("1.a", "1.1"), Ordering::Greater);
        assert_eq!(PackageFormat::Rpm.compare("1.a", "1.1"), Ordering::Less);
        // `^` is rpm's post-release marker; dpkg sorts it as a symbol.
        assert_eq!(
            PackageFormat::Rpm.compare("1.0^git1", "1.0.1"),
            Ordering::Less
        );
        assert_eq!(
            PackageFormat::Dpkg.compare("1.0^git1", "1.0.1"),
            Ordering::Greater
        );
    }
}
