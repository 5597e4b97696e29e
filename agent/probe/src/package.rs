//! Installed packages from the package database below the root: dpkg's,
//! or, on a root without one, rpm's sqlite database (read by `rpmdb`).
//!
//! The dpkg status file is a sequence of RFC 822-style stanzas. It is parsed
//! in one pass over its bytes; strings are built only for the fields kept.
//! Pending records in `/var/lib/dpkg/updates` (written while dpkg runs) are
//! applied over the status file, as `dpkg-query` does.

use std::collections::{BTreeMap, HashMap};
use std::io;

use hardend_facts::{Evidence, Package, PackageFormat, PackagesFact, ProbeFailure, Probed, Source};

use crate::rpmdb::{self, RpmdbError};
use crate::{RootError, RootFs};

/// The dpkg database directory and its status file, relative to the root.
pub const DPKG_DIR: &str = "/var/lib/dpkg";
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
pub const DPKG_UPDATES: &str = "/var/lib/dpkg/updates";

/// Where rpm keeps its database (`/var/lib/rpm` is often a symlink to the
/// second, which Fedora and RHEL 9 use).
pub const RPM_DIRS: [&str; 2] = ["/var/lib/rpm", "/usr/lib/sysimage/rpm"];

/// The sqlite database's file name in an rpm directory.
pub const RPM_SQLITE: &str = "rpmdb.sqlite";

/// Errors of reading the package databases.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("no package database under {root}")]
    NoDatabase { root: String },
    #[error(
        "rpm {format} database ({path}) is not supported: hardend reads rpm's sqlite database (rpm 4.16 and later)"
    )]
    RpmOther { format: &'static str, path: String },
    #[error(transparent)]
    Rpm(#[from] RpmdbError),
    #[error("cannot read the dpkg database: {0}")]
    Read(#[from] RootError),
}

/// Reads the installed packages under the root.
pub fn probe(fs: &RootFs) -> Probed<PackagesFact> {
    probe_inner(fs).map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The dpkg directory (the status file is replaced by rename) and the rpm
/// database directories (host paths).
pub fn sources(fs: &RootFs) -> Vec<Source> {
    let mut out = vec![
        Source::Path(fs.host_path(DPKG_DIR)),
        Source::Path(fs.host_path(DPKG_UPDATES)),
    ];
    for dir in RPM_DIRS {
        out.push(Source::Path(fs.host_path(dir)));
    }
    out
}

fn is_absent(e: &RootError) -> bool {
    matches!(e, RootError::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
}

fn probe_inner(fs: &RootFs) -> Result<PackagesFact, PackageError> {
    let status = match fs.read(DPKG_STATUS) {
        Ok(s) => s,
        Err(e) if is_absent(&e) => return rpm_database(fs),
        Err(e) => return Err(e.into()),
    };
    let mut records = parse_dpkg_status(&status, DPKG_STATUS);
    let mut databases = vec![DPKG_STATUS.to_string()];
    // Pending updates: files named by a number, applied in numeric order.
    let mut updates: Vec<(u64, String)> = match fs.read_dir(DPKG_UPDATES) {
        Ok(names) => names
            .into_iter()
            .filter_map(|n| Some((n.parse::<u64>().ok()?, n)))
            .filter(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()))
            .collect(),
        Err(e) if is_absent(&e) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    updates.sort();
    for (_, name) in updates {
        let path = format!("{DPKG_UPDATES}/{name}");
        let data = match fs.read(&path) {
            Ok(d) => d,
            // dpkg may have folded it into the status file meanwhile.
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        records.extend(parse_dpkg_status(&data, &path));
        databases.push(path);
    }
    Ok(PackagesFact {
        installed: installed_packages(records),
        databases,
        format: PackageFormat::Dpkg,
    })
}

/// The rpm database of a root without a dpkg one: the sqlite database read,
/// an older format named in the error, or no database at all.
fn rpm_database(fs: &RootFs) -> Result<PackagesFact, PackageError> {
    Ok(rpmdb::read(fs, &find_rpm_database(fs)?)?)
}

/// The root-relative path of rpm's sqlite database; an older format is
/// named in the error, and a root without any is [`PackageError::NoDatabase`].
pub fn find_rpm_database(fs: &RootFs) -> Result<String, PackageError> {
    // Present even when it is a dangling symlink, which `rpmdb::read` refuses.
    let exists = |p: &str| fs.symlink_metadata(p).is_ok();
    for dir in RPM_DIRS {
        let sqlite = format!("{dir}/{RPM_SQLITE}");
        if exists(&sqlite) {
            return Ok(sqlite);
        }
        for (file, format) in [("Packages", "Berkeley DB"), ("Packages.db", "ndb")] {
            let p = format!("{dir}/{file}");
            if exists(&p) {
                return Err(PackageError::RpmOther { format, path: p });
            }
        }
    }
    Err(PackageError::NoDatabase {
        root: fs.root().display().to_string(),
    })
}

/// One stanza of a dpkg status file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DpkgRecord {
    pub name: String,
    pub architecture: String,
    pub version: String,
    /// The `Status` field says the package's files are installed and configured.
    pub installed: bool,
    /// The `Package:` line of the stanza.
    pub evidence: Evidence,
}

/// True for a `Status` value whose package state means "installed":
/// `installed`, or installed with triggers still to run. The want flag
/// (`install`, `hold`, `deinstall`, `purge`) does not matter: a package marked
/// for removal is still on disk.
pub fn status_is_installed(status: &[u8]) -> bool {
    let mut words = status
        .split(|b| b.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let (Some(_want), Some(_flag), Some(state), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    matches!(
        state,
        b"installed" | b"triggers-awaited" | b"triggers-pending"
    )
}

fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    b.get(start..end).unwrap_or_default()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The fields of the stanza being read, borrowed from the input.
#[derive(Default)]
struct Stanza<'a> {
    package: Option<(&'a [u8], u32, &'a [u8])>,
    version: &'a [u8],
    architecture: &'a [u8],
    status: &'a [u8],
}

impl<'a> Stanza<'a> {
    fn finish(&mut self, path: &str, out: &mut Vec<DpkgRecord>) {
        let s = std::mem::take(self);
        let Some((name, line, line_text)) = s.package else {
            return;
        };
        if name.is_empty() || name.iter().any(u8::is_ascii_whitespace) {
            return;
        }
        out.push(DpkgRecord {
            name: text(name),
            architecture: text(s.architecture),
            version: text(s.version),
            installed: status_is_installed(s.status),
            evidence: Evidence::line(path, line, text(line_text)),
        });
    }
}

/// Parses a dpkg status file (or an updates record) in one pass. Stanzas
/// without a `Package` field are skipped; field names are case-insensitive;
/// continuation lines are skipped. Never fails.
pub fn parse_dpkg_status(data: &[u8], path: &str) -> Vec<DpkgRecord> {
    let mut out = Vec::new();
    let mut cur = Stanza::default();
    let mut start = 0usize;
    let ends = memchr::memchr_iter(b'\n', data).chain(std::iter::once(data.len()));
    for (i, end) in ends.enumerate() {
        let raw = data.get(start..end).unwrap_or_default();
        start = end + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        match line.first() {
            // Continuation lines (descriptions, conffiles) are the bulk of the file.
            Some(b' ' | b'\t') if !trim(line).is_empty() => continue,
            None | Some(b' ' | b'\t') => {
                cur.finish(path, &mut out);
                continue;
            }
            Some(_) => {}
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, rest) = line.split_at(colon);
        let value = trim(rest.get(1..).unwrap_or_default());
        if name.eq_ignore_ascii_case(b"Package") {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            cur.package = Some((value, n, line));
        } else if name.eq_ignore_ascii_case(b"Status") {
            cur.status = value;
        } else if name.eq_ignore_ascii_case(b"Version") {
            cur.version = value;
        } else if name.eq_ignore_ascii_case(b"Architecture") {
            cur.architecture = value;
        }
    }
    cur.finish(path, &mut out);
    out
}

/// The installed packages by name. A later record for the same name and
/// architecture replaces an earlier one (pending updates come last);
/// architectures of one name then collapse to the earliest surviving one.
pub fn installed_packages(records: Vec<DpkgRecord>) -> BTreeMap<String, Package> {
    // The index of the last record of each (name, architecture).
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(records.len());
    for (i, r) in records.iter().enumerate() {
        last.insert((r.name.as_str(), r.architecture.as_str()), i);
    }
    let keep: Vec<bool> = records
        .iter()
        .enumerate()
        .map(|(i, r)| {
            r.installed && last.get(&(r.name.as_str(), r.architecture.as_str())) == Some(&i)
        })
        .collect();
    drop(last);
    let mut out = BTreeMap::new();
    for (r, keep) in records.into_iter().zip(keep) {
        if keep && !out.contains_key(&r.name) {
            out.insert(
                r.name.clone(),
                Package {
                    name: r.name,
                    version: r.version,
                    evidence: r.evidence,
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
Package: dpkg
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 1.21.22
Description: Debian package management system
 This package provides the low-level infrastructure.
 .
 More text: with a colon.

Package: telnetd
Status: deinstall ok config-files
Architecture: amd64
Version: 0.17+2.4-2

Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.36-9
Multi-Arch: same

Package: libc6
Status: install ok installed
Architecture: i386
Version: 2.36-9

package: held
status: hold ok installed
Version: 1

Package: going
Status: deinstall ok installed
Version: 2

Package: half
Status: install ok half-configured
Version: 3

Package: trig
Status: install ok triggers-pending
Version: 4
";

    #[test]
    fn installed_states_and_multiarch_collapse() {
        let recs = parse_dpkg_status(SAMPLE.as_bytes(), DPKG_STATUS);
        assert_eq!(recs.len(), 8);
        let inst = installed_packages(recs);
        let names: Vec<_> = inst.keys().map(String::as_str).collect();
        assert_eq!(names, vec!["dpkg", "going", "held", "libc6", "trig"]);
        assert_eq!(inst["dpkg"].version, "1.21.22");
        assert_eq!(inst["dpkg"].evidence.line, Some(1));
        assert_eq!(inst["libc6"].evidence.line, Some(17));
        assert_eq!(
            inst["libc6"].evidence.text.as_deref(),
            Some("Package: libc6")
        );
    }

    #[test]
    fn a_later_record_for_the_same_arch_replaces_the_earlier_one() {
        let mut recs = parse_dpkg_status(SAMPLE.as_bytes(), DPKG_STATUS);
        recs.extend(parse_dpkg_status(
            b"Package: dpkg\nStatus: purge ok not-installed\nArchitecture: amd64\n",
            "/var/lib/dpkg/updates/0001",
        ));
        assert!(!installed_packages(recs).contains_key("dpkg"));
    }

    #[test]
    fn status_words_must_be_three() {
        assert!(status_is_installed(b"install ok installed"));
        assert!(status_is_installed(b"hold  ok\tinstalled"));
        assert!(!status_is_installed(b"installed"));
        assert!(!status_is_installed(b"install ok installed extra"));
        assert!(!status_is_installed(b"deinstall ok config-files"));
    }
}
