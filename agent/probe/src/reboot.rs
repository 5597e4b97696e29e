//! Whether a reboot stands between installed updates and the running
//! system: Debian's `/run/reboot-required` flag, and (live only) a running
//! kernel older than the newest installed kernel of the same flavour.

use std::cmp::Ordering;
use std::io;

use hardend_facts::posture::RebootFact;
use hardend_facts::{Evidence, ProbeFailure, Probed, Source};

use crate::dpkgver;
use crate::{RootError, RootFs};

pub const REBOOT_REQUIRED: &str = "/run/reboot-required";
pub const REBOOT_REQUIRED_PKGS: &str = "/run/reboot-required.pkgs";
pub const OSRELEASE: &str = "/proc/sys/kernel/osrelease";
pub const MODULES_DIR: &str = "/lib/modules";
pub const BOOT_DIR: &str = "/boot";

/// Errors of reading the reboot flag and the kernels.
#[derive(Debug, thiserror::Error)]
pub enum RebootError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: RootError },
}

/// Reads whether a reboot is required under the root.
pub fn probe(fs: &RootFs) -> Probed<RebootFact> {
    probe_inner(fs).map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The flag's directory, the kernel directories (host paths), and the
/// running kernel, which changes only by rebooting (polled).
pub fn sources(fs: &RootFs) -> Vec<Source> {
    vec![
        Source::Path(fs.host_path(REBOOT_REQUIRED)),
        Source::Path(fs.host_path(MODULES_DIR)),
        Source::Path(fs.host_path(BOOT_DIR)),
    ]
}

fn is_absent(e: &RootError) -> bool {
    matches!(e, RootError::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
}

fn probe_inner(fs: &RootFs) -> Result<RebootFact, RebootError> {
    let mut fact = RebootFact::default();
    match fs.symlink_metadata(REBOOT_REQUIRED) {
        Ok(_) => {
            let pkgs = match fs.read_to_string(REBOOT_REQUIRED_PKGS) {
                Ok(text) => {
                    let mut names: Vec<&str> = text.split_whitespace().collect();
                    names.sort_unstable();
                    names.dedup();
                    names.join(", ")
                }
                Err(_) => String::new(),
            };
            let text = if pkgs.is_empty() {
                "a reboot is required".to_string()
            } else {
                format!("a reboot is required by: {pkgs}")
            };
            fact.reasons.push(Evidence::text(REBOOT_REQUIRED, text));
        }
        Err(e) if is_absent(&e) => {}
        Err(source) => {
            return Err(RebootError::Read {
                path: REBOOT_REQUIRED.to_string(),
                source,
            });
        }
    }
    if fs.is_live() {
        let running = fs
            .read_to_string(OSRELEASE)
            .map_err(|source| RebootError::Read {
                path: OSRELEASE.to_string(),
                source,
            })?
            .trim()
            .to_string();
        let newest = newest_kernel(fs, &running);
        if let Some((newest, path)) = &newest
            && compare_kernels(newest, &running) == Ordering::Greater
        {
            fact.reasons.push(Evidence::text(
                OSRELEASE,
                format!("running kernel {running} is older than the installed {newest} ({path})"),
            ));
        }
        fact.newest_kernel = newest.map(|(n, _)| n);
        fact.running_kernel = Some(running);
    }
    Ok(fact)
}

/// Splits a kernel release into its version and its flavour:
/// `6.1.0-18-cloud-amd64` is (`6.1.0-18`, `cloud-amd64`); the flavour is
/// the trailing dash-separated words that do not start with a digit.
pub fn split_kernel(release: &str) -> (&str, &str) {
    let mut cut = release.len();
    for (i, _) in release
        .match_indices('-')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let rest = release.get(i + 1..).unwrap_or_default();
        let word = rest.split('-').next().unwrap_or_default();
        if word.starts_with(|c: char| c.is_ascii_digit()) || word.is_empty() {
            break;
        }
        cut = i;
    }
    (
        release.get(..cut).unwrap_or(release),
        release.get(cut + 1..).unwrap_or_default(),
    )
}

/// Compares the version parts of two kernel releases with dpkg's rules.
pub fn compare_kernels(a: &str, b: &str) -> Ordering {
    let (va, _) = split_kernel(a);
    let (vb, _) = split_kernel(b);
    // Every dash separates numbers here; dots keep the ordering of `6.1.0-18`
    // intact without dpkg treating the last part as a revision.
    dpkgver::compare(&va.replace('-', "."), &vb.replace('-', "."))
}

/// The newest installed kernel with the running kernel's flavour, and where
/// it was found: `/lib/modules/<release>` with modules in it, or
/// `/boot/vmlinuz-<release>`.
fn newest_kernel(fs: &RootFs, running: &str) -> Option<(String, String)> {
    let (_, flavour) = split_kernel(running);
    let mut found: Vec<(String, String)> = Vec::new();
    if let Ok(names) = fs.read_dir(MODULES_DIR) {
        for name in names {
            let dir = format!("{MODULES_DIR}/{name}");
            let has_modules = ["kernel", "modules.order", "modules.dep"]
                .iter()
                .any(|f| fs.symlink_metadata(&format!("{dir}/{f}")).is_ok());
            if has_modules {
                found.push((name, dir));
            }
        }
    }
    if let Ok(names) = fs.read_dir(BOOT_DIR) {
        for name in names {
            if let Some(release) = name.strip_prefix("vmlinuz-") {
                found.push((release.to_string(), format!("{BOOT_DIR}/{name}")));
            }
        }
    }
    found
        .into_iter()
        .filter(|(release, _)| split_kernel(release).1 == flavour)
        .max_by(|a, b| compare_kernels(&a.0, &b.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_split_into_version_and_flavour() {
        assert_eq!(split_kernel("6.1.0-18-amd64"), ("6.1.0-18", "amd64"));
        assert_eq!(
            split_kernel("6.1.0-18-cloud-amd64"),
            ("6.1.0-18", "cloud-amd64")
        );
        assert_eq!(split_kernel("5.15.0-91-generic"), ("5.15.0-91", "generic"));
        assert_eq!(split_kernel("6.5.0"), ("6.5.0", ""));
    }

    #[test]
    fn kernel_versions_compare_numerically() {
        assert_eq!(
            compare_kernels("6.1.0-20-amd64", "6.1.0-18-amd64"),
            Ordering::Greater
        );
        assert_eq!(
            compare_kernels("6.1.0-9-amd64", "6.1.0-10-amd64"),
            Ordering::Less
        );
        assert_eq!(
            compare_kernels("6.10.0-1-amd64", "6.9.0-30-amd64"),
            Ordering::Greater
        );
        assert_eq!(
            compare_kernels("6.1.0-18-amd64", "6.1.0-18-amd64"),
            Ordering::Equal
        );
    }
}
