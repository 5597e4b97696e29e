//! Pending security updates on an rpm host: the installed packages (rpm's
//! sqlite database, read by `rpmdb`) against the security advisories of the
//! repository metadata dnf (4 and 5) and yum cache under the root.
//!
//! Each cached repository has `repodata/repomd.xml`, which names the
//! repository's `updateinfo` file; its `type="security"` advisories list
//! the fixed packages by name, architecture and `[epoch:]version-release`.
//! Only files are read, never dnf itself, so an offline root works. Parsed
//! files are cached by their stamp like the apt lists.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, LazyLock};

use hardend_facts::posture::{PatchesFact, PendingUpdate};
use hardend_facts::{Evidence, PackageFormat, Source};

use super::updateinfo::{self, AdvisoryPackage, SecurityPackages, UpdateinfoError};
use super::{
    Compression, PatchesError, StampCache, cached, cached_where, is_absent, parse_updateinfo_file,
    read_err,
};
use crate::RootFs;
use crate::package::{self, PackageError, RPM_DIRS};
use crate::rpmdb;
use crate::rpmver;

/// The metadata caches (root-relative) and how deep below each one a
/// repository's directory is: dnf 4 and dnf 5 keep `<repo>-<hash>/`, yum
/// keeps `<basearch>/<releasever>/<repo>/`.
pub const REPO_CACHES: [(&str, usize); 3] = [
    ("/var/cache/dnf", 1),
    ("/var/cache/libdnf5", 1),
    ("/var/cache/yum", 3),
];

/// More directories than any cache holds; a tree past it is refused rather
/// than walked without bound.
pub const MAX_CACHE_ENTRIES: usize = 4096;

static REPOMDS: LazyLock<StampCache<Result<Vec<String>, UpdateinfoError>>> =
    LazyLock::new(StampCache::default);
/// A parsed `updateinfo` (only the installed names' packages, with the
/// fingerprint of the installed names it was parsed for), or why it could
/// not be read.
type Parsed = (u64, Result<SecurityPackages, String>);

static UPDATEINFOS: LazyLock<StampCache<Parsed>> = LazyLock::new(StampCache::default);
static UPDATEINFO_PARSES: AtomicU64 = AtomicU64::new(0);

/// How many `updateinfo` files this process has parsed (not served from
/// the cache); tests use it to see the cache work.
pub fn updateinfo_parses() -> u64 {
    UPDATEINFO_PARSES.load(AtomicOrdering::Relaxed)
}

/// How many parsed `updateinfo` files the cache holds (for tests).
pub fn updateinfo_cached() -> usize {
    UPDATEINFOS.len()
}

/// The rpm database directories, the metadata caches and each cached
/// repository's directory and `repodata` (host paths), so that an rpm
/// transaction, a new repository or a `dnf makecache` re-evaluates.
pub fn sources(fs: &RootFs) -> Vec<Source> {
    let mut out: Vec<Source> = RPM_DIRS
        .iter()
        .map(|d| Source::Path(fs.host_path(d)))
        .collect();
    for (cache, _) in REPO_CACHES {
        out.push(Source::Path(fs.host_path(cache)));
    }
    // An unreadable cache is the probe's error to report; here it only
    // has no repositories to name.
    for repo in repo_dirs(fs).unwrap_or_default() {
        out.push(Source::Path(fs.host_path(&format!("{repo}/repodata"))));
        // The repository's directory and, in yum's deeper layout, the
        // directories between it and the cache, where new ones appear.
        let mut dir = std::path::Path::new(&repo);
        while !REPO_CACHES
            .iter()
            .any(|(c, _)| std::path::Path::new(c) == dir)
        {
            out.push(Source::Path(fs.host_path(&dir.to_string_lossy())));
            match dir.parent() {
                Some(p) => dir = p,
                None => break,
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The directories below `dir` (root-relative), `depth` levels down.
fn walk(
    fs: &RootFs,
    dir: &str,
    depth: usize,
    seen: &mut usize,
    out: &mut Vec<String>,
) -> Result<(), PatchesError> {
    if depth == 0 {
        out.push(dir.to_string());
        return Ok(());
    }
    let names = match fs.read_dir(dir) {
        Ok(n) => n,
        Err(e) if is_absent(&e) => return Ok(()),
        Err(e) => return Err(read_err(dir)(e)),
    };
    for name in names {
        *seen += 1;
        if *seen > MAX_CACHE_ENTRIES {
            return Err(PatchesError::List {
                path: dir.to_string(),
                reason: format!("more than {MAX_CACHE_ENTRIES} entries in the metadata cache"),
            });
        }
        let path = format!("{dir}/{name}");
        let is_dir = fs.metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            walk(fs, &path, depth - 1, seen, out)?;
        }
    }
    Ok(())
}

/// The cached repositories' directories (root-relative), those that hold
/// `repodata/repomd.xml` or not.
pub fn repo_dirs(fs: &RootFs) -> Result<Vec<String>, PatchesError> {
    let mut out = Vec::new();
    for (cache, depth) in REPO_CACHES {
        let mut seen = 0;
        walk(fs, cache, depth, &mut seen, &mut out)?;
    }
    Ok(out)
}

/// The installed packages: (name, architecture) -> the newest installed
/// `[epoch:]version-release`. Pseudo-packages without an architecture
/// (`gpg-pubkey`) are left out: no advisory names them.
fn installed(fs: &RootFs) -> Result<BTreeMap<(String, String), String>, PatchesError> {
    let db = match package::find_rpm_database(fs) {
        Ok(db) => db,
        Err(PackageError::NoDatabase { .. }) => return Err(PatchesError::NoDatabase),
        Err(e) => return Err(e.into()),
    };
    let rows = rpmdb::read_rows(fs, &db)?;
    let mut out: BTreeMap<(String, String), String> = BTreeMap::new();
    for (_, p) in rows {
        let Some(arch) = p.arch.clone() else {
            continue;
        };
        let evr = p.evr();
        let key = (p.name, arch);
        let newer = out
            .get(&key)
            .is_none_or(|kept| rpmver::compare(&evr, kept).is_gt());
        if newer {
            out.insert(key, evr);
        }
    }
    Ok(out)
}

/// The `updateinfo` files a repository's `repomd.xml` names (root-relative),
/// in the order to try them; empty when the repository has no metadata or
/// no advisories.
fn updateinfo_paths(fs: &RootFs, repo: &str) -> Result<Vec<String>, PatchesError> {
    let repomd = format!("{repo}/repodata/repomd.xml");
    let hrefs = match cached(fs, &REPOMDS, &repomd, updateinfo::parse_repomd) {
        Ok(h) => h,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(read_err(&repomd)(e)),
    };
    match hrefs.as_ref() {
        Ok(hrefs) => Ok(hrefs.iter().map(|h| format!("{repo}/{h}")).collect()),
        Err(e) => Err(PatchesError::List {
            path: repomd,
            reason: e.to_string(),
        }),
    }
}

/// A fingerprint of the installed package names.
fn names_fingerprint(installed: &BTreeMap<(String, String), String>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (name, _) in installed.keys() {
        name.hash(&mut h);
    }
    h.finish()
}

/// The first of `paths` that exists, parsed (through the cache) for the
/// installed names; `None` when none was downloaded (dnf 5 fetches
/// advisories on demand). A file parsed for other installed names is
/// parsed again.
fn read_updateinfo(
    fs: &RootFs,
    paths: &[String],
    installed: &BTreeMap<(String, String), String>,
) -> Result<Option<(String, Arc<Parsed>)>, PatchesError> {
    let fingerprint = names_fingerprint(installed);
    let names: HashSet<&str> = installed.keys().map(|(n, _)| n.as_str()).collect();
    for path in paths {
        let (compression, _) = Compression::of_file(path);
        let parsed = cached_where(
            fs,
            &UPDATEINFOS,
            path,
            |(f, _)| *f == fingerprint,
            |b| {
                UPDATEINFO_PARSES.fetch_add(1, AtomicOrdering::Relaxed);
                let info = parse_updateinfo_file(b, compression, |n| names.contains(n));
                (fingerprint, info)
            },
        );
        match parsed {
            Ok(info) => return Ok(Some((path.clone(), info))),
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(read_err(path)(e)),
        }
    }
    Ok(None)
}

/// Reads the pending security updates of an rpm root.
pub(super) fn probe(fs: &RootFs) -> Result<PatchesFact, PatchesError> {
    let installed = installed(fs)?;
    // The newest advisory package per installed package, with its file.
    let mut best: BTreeMap<(&str, &str), (AdvisoryPackage, String)> = BTreeMap::new();
    let mut read = Vec::new();
    for repo in repo_dirs(fs)? {
        let Some((path, info)) = read_updateinfo(fs, &updateinfo_paths(fs, &repo)?, &installed)?
        else {
            continue;
        };
        let info = match &info.1 {
            Ok(info) => info,
            Err(reason) => {
                return Err(PatchesError::List {
                    path,
                    reason: reason.clone(),
                });
            }
        };
        for (name, arch) in installed.keys() {
            let Some(entries) = info.by_name.get(name) else {
                continue;
            };
            for p in entries.iter().filter(|p| p.arch == *arch) {
                let key = (name.as_str(), arch.as_str());
                let better = best
                    .get(&key)
                    .is_none_or(|(kept, _)| rpmver::compare(&p.evr, &kept.evr).is_gt());
                if better {
                    best.insert(key, (p.clone(), path.clone()));
                }
            }
        }
        read.push(path);
    }
    // dnf names each updateinfo after its checksum, so every `makecache`
    // that brings new advisories leaves a parsed file behind: forget the
    // files of this root's caches that were not read now.
    // (The cache is keyed by the resolved host path.)
    let resolved = |p: &str| fs.resolve(p).ok();
    let read_host: Vec<PathBuf> = read.iter().filter_map(|p| resolved(p)).collect();
    let caches: Vec<PathBuf> = REPO_CACHES
        .iter()
        .filter_map(|(c, _)| resolved(c))
        .collect();
    UPDATEINFOS
        .retain(|p| read_host.iter().any(|r| r == p) || !caches.iter().any(|c| p.starts_with(c)));
    let mut pending = Vec::new();
    for ((name, arch), (advisory, path)) in best {
        let Some(version) = installed.get(&(name.to_string(), arch.to_string())) else {
            continue;
        };
        if rpmver::compare(&advisory.evr, version).is_gt() {
            let text = format!(
                "{name} {version} installed, {} in {}",
                advisory.evr, advisory.advisory
            );
            pending.push(PendingUpdate {
                package: name.to_string(),
                architecture: arch.to_string(),
                installed: version.clone(),
                candidate: advisory.evr,
                suite: advisory.advisory,
                severity: advisory.severity,
                evidence: Evidence::line(path, advisory.line, text),
            });
        }
    }
    Ok(PatchesFact {
        pending,
        security_lists: read,
        installed_count: installed.len(),
        format: PackageFormat::Rpm,
    })
}
