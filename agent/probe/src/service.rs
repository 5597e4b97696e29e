//! systemd units: existence, masking and enablement from the unit files and
//! links below the root; activity from `systemctl is-active` when live.
//!
//! What "enabled" means here: something in the unit search path pulls the
//! unit in at boot. That is a link named after the unit (or after one of its
//! aliases) in a `*.wants/`, `*.requires/` or `*.upholds/` directory of any
//! unit directory, including the vendor directories under `/usr/lib` and
//! `/lib` (where `systemctl is-enabled` would say `static` or
//! `enabled-runtime` for `/run`), or an alias symlink in `/etc/systemd/system`
//! or `/run/systemd/system` (`sshd.service -> ssh.service`, as `systemctl
//! enable` creates from `Alias=`). For a hardening check the question is
//! whether the unit will run after a reboot, so vendor wants count. `Wants=`
//! lines inside other units are not followed. A masked unit is never enabled
//! (see [`ServiceFact::enabled`]).

pub mod unit_file;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hardend_facts::{Evidence, FactKey, Live, ProbeFailure, Probed, ServiceFact, Source};

use crate::firewall::command::{self, CommandError};
use crate::{RootError, RootFs};
pub use unit_file::{UnitName, UnitNameError, install_aliases, parse_unit_name};

/// The unit directories, in systemd's order of precedence: the first one
/// that holds a unit file wins.
pub const UNIT_DIRS: [&str; 5] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The directories where an alias symlink is an act of enabling (vendor
/// directories ship static aliases, which enable nothing).
const ALIAS_DIRS: [&str; 2] = ["/etc/systemd/system", "/run/systemd/system"];

/// Directory suffixes whose links pull a unit in.
const DEPENDENCY_SUFFIXES: [&str; 3] = [".wants", ".requires", ".upholds"];

/// How long `systemctl is-active` may take.
pub const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors of reading a unit's state.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Name(#[from] UnitNameError),
    #[error("{unit}: cannot read {source}")]
    Read { unit: String, source: RootError },
    #[error("systemctl is-active {unit}: {source}")]
    Systemctl { unit: String, source: CommandError },
    #[error("systemctl is-active {unit}: unexpected answer {answer:?}")]
    Answer { unit: String, answer: String },
    #[error("systemd is not running")]
    NotRunning,
}

/// Reads one unit's files, links and (when live) activity.
///
/// For a single unit this looks up only the paths the unit can have (a
/// one-off [`ServiceIndex`] that lists no directory); to probe many units,
/// build one index with [`load_index`] and call [`probe_with`].
pub fn probe(fs: &RootFs, unit: &str) -> Probed<ServiceFact> {
    probe_with(fs, unit, &ServiceIndex::unlisted(fs))
}

/// Reads one unit like [`probe`], with the unit directories read once into
/// `index` (by [`load_index`] on the same root) instead of once per unit.
/// The answer is the same as [`probe`]'s.
pub fn probe_with(fs: &RootFs, unit: &str, index: &ServiceIndex) -> Probed<ServiceFact> {
    inspect(fs, unit, index).map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The symlinks of an alias directory: (name, stored target), in name order.
type AliasLinks = Vec<(String, PathBuf)>;

/// The unit directories of one root, read once for many units: which unit
/// directories exist, their entries, their dependency directories with
/// their entries, and the symlinks of the alias directories.
///
/// A listing that could not be read is kept as "unlisted", and lookups in it
/// go to the filesystem path by path, exactly as without an index; so an
/// index changes how often the disk is asked, never the answer (as long as
/// the directories do not change while it is used).
#[derive(Debug, Clone)]
pub struct ServiceIndex {
    /// The unit directories that exist, in precedence order.
    dirs: Vec<&'static str>,
    /// The entry names of each directory in `dirs` (same order), when listed.
    listings: Vec<Option<HashSet<String>>>,
    /// The dependency directories (root-relative) of all unit directories,
    /// in the order they are searched, with their entry names when listed.
    dependency_dirs: Vec<(String, Option<HashSet<String>>)>,
    /// For each alias directory that is a unit directory: its symlinks
    /// (name, stored target), in name order, when listed.
    alias_links: Vec<(&'static str, Option<AliasLinks>)>,
    /// Whether systemd runs on the root.
    systemd_running: bool,
    /// The states printed by one `systemctl is-active` for many units (see
    /// [`ServiceIndex::prefetch_activity`]); a unit not in it is asked alone.
    activity: HashMap<String, bool>,
}

impl ServiceIndex {
    /// An index that lists nothing: every lookup goes to the filesystem.
    fn unlisted(fs: &RootFs) -> ServiceIndex {
        let dirs = unit_dirs(fs);
        let dependency_dirs = dirs
            .iter()
            .flat_map(|dir| dependency_dirs(fs, dir))
            .map(|sub| (sub, None))
            .collect();
        let alias_links = ALIAS_DIRS
            .into_iter()
            .filter(|dir| dirs.contains(dir))
            .map(|dir| (dir, None))
            .collect();
        ServiceIndex {
            listings: vec![None; dirs.len()],
            dirs,
            dependency_dirs,
            alias_links,
            systemd_running: systemd_running(fs),
            activity: HashMap::new(),
        }
    }

    /// Asks systemd for the activity of all `units` with one `systemctl
    /// is-active -- UNIT...` (it prints one state per unit, in order), so
    /// that [`probe_with`] starts no program per unit. Does nothing off-line
    /// or without systemd; an answer that does not have one known state per
    /// unit is dropped, and each unit is then asked alone as without this.
    pub fn prefetch_activity<'a>(&mut self, fs: &RootFs, units: impl IntoIterator<Item = &'a str>) {
        if !fs.is_live() || !self.systemd_running {
            return;
        }
        let names: BTreeSet<String> = units
            .into_iter()
            .filter_map(|u| parse_unit_name(u).ok())
            .map(|n| n.name)
            .filter(|n| !self.activity.contains_key(n))
            .collect();
        if names.len() < 2 {
            return;
        }
        let names: Vec<String> = names.into_iter().collect();
        let mut args: Vec<&str> = vec!["is-active", "--"];
        args.extend(names.iter().map(String::as_str));
        let Ok(done) = command::run("systemctl", &args, SYSTEMCTL_TIMEOUT, 64 * 1024) else {
            return;
        };
        if let Some(states) = parse_states(&String::from_utf8_lossy(&done.stdout), &names) {
            self.activity.extend(states);
        }
    }

    /// The listing of unit directory `dir`, when it was read.
    fn listing(&self, dir: &str) -> Option<&HashSet<String>> {
        let at = self.dirs.iter().position(|d| *d == dir)?;
        self.listings.get(at)?.as_ref()
    }
}

/// Reads the unit directories of `fs` once, for [`probe_with`].
///
/// The entry types that the directory listings carry save a lookup per
/// entry: a real directory or symlink below an already resolved unit
/// directory is read through its host path, and only other entries (a
/// symlinked dependency directory, a type the filesystem does not report,
/// a name that is not UTF-8) go through [`RootFs`] path by path.
pub fn load_index(fs: &RootFs) -> ServiceIndex {
    let dirs = unit_dirs(fs);
    let mut listings = Vec::with_capacity(dirs.len());
    let mut dependencies = Vec::new();
    let mut alias_links = Vec::new();
    for dir in &dirs {
        let Some((host_dir, entries)) = list_typed(fs, dir) else {
            // Unlisted: every lookup in this directory goes to the disk.
            listings.push(None);
            for sub in dependency_dirs(fs, dir) {
                let names = fs.read_dir(&sub).ok().map(|n| n.into_iter().collect());
                dependencies.push((sub, names));
            }
            if ALIAS_DIRS.contains(dir) {
                alias_links.push((*dir, None));
            }
            continue;
        };
        for entry in &entries {
            if !DEPENDENCY_SUFFIXES.iter().any(|s| entry.name.ends_with(s)) {
                continue;
            }
            let sub = format!("{dir}/{}", entry.name);
            let names = match entry.kind {
                EntryKind::Dir => list_names(&host_dir.join(&entry.name)),
                EntryKind::Symlink | EntryKind::Unknown
                    if fs.metadata(&sub).is_ok_and(|m| m.is_dir()) =>
                {
                    fs.read_dir(&sub).ok().map(|n| n.into_iter().collect())
                }
                _ => continue,
            };
            dependencies.push((sub, names));
        }
        if ALIAS_DIRS.contains(dir) {
            let links = entries
                .iter()
                .filter_map(|entry| {
                    let target = match entry.kind {
                        EntryKind::Symlink => std::fs::read_link(host_dir.join(&entry.name)).ok(),
                        EntryKind::Unknown => fs.read_link(&format!("{dir}/{}", entry.name)).ok(),
                        // Not a symlink: reading it as one would fail.
                        EntryKind::Dir | EntryKind::Other => None,
                    }?;
                    Some((entry.name.clone(), target))
                })
                .collect();
            alias_links.push((*dir, Some(links)));
        }
        listings.push(Some(entries.into_iter().map(|e| e.name).collect()));
    }
    ServiceIndex {
        dirs,
        listings,
        dependency_dirs: dependencies,
        alias_links,
        systemd_running: systemd_running(fs),
        activity: HashMap::new(),
    }
}

/// Pairs the lines of a many-unit `systemctl is-active` with `names`: None
/// unless there is exactly one known state per unit.
fn parse_states(stdout: &str, names: &[String]) -> Option<HashMap<String, bool>> {
    let states: Vec<&str> = stdout.lines().map(str::trim).collect();
    if states.len() != names.len() {
        return None;
    }
    names
        .iter()
        .zip(states)
        .map(|(name, state)| Some((name.clone(), is_active_state(state)?)))
        .collect()
}

/// What a directory listing says an entry is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    Dir,
    Symlink,
    Other,
    /// Not reported, or a name that is not UTF-8 (whose lossy form may name
    /// another path): looked up through [`RootFs`] like any path.
    Unknown,
}

struct TypedEntry {
    name: String,
    kind: EntryKind,
}

/// The entries of a root-relative directory with their types, in the name
/// order of [`RootFs::read_dir`], and the directory's resolved host path.
fn list_typed(fs: &RootFs, dir: &str) -> Option<(PathBuf, Vec<TypedEntry>)> {
    let host_dir = fs.resolve(dir).ok()?;
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(&host_dir).ok()? {
        let entry = entry.ok()?;
        let file_name = entry.file_name();
        let (name, kind) = match file_name.to_str() {
            Some(name) => {
                let kind = match entry.file_type() {
                    Ok(t) if t.is_dir() => EntryKind::Dir,
                    Ok(t) if t.is_symlink() => EntryKind::Symlink,
                    Ok(_) => EntryKind::Other,
                    Err(_) => EntryKind::Unknown,
                };
                (name.to_string(), kind)
            }
            None => (file_name.to_string_lossy().into_owned(), EntryKind::Unknown),
        };
        entries.push(TypedEntry { name, kind });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Some((host_dir, entries))
}

/// The (lossy) names in a host directory; None when it cannot be read.
fn list_names(host_dir: &Path) -> Option<HashSet<String>> {
    std::fs::read_dir(host_dir)
        .ok()?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<HashSet<String>, _>>()
        .ok()
}

/// Whether `name` can be looked up in a directory listing: a single path
/// component that a lossy listing would show as itself. Other names (an
/// `Alias=` of a hostile unit file can hold anything) are looked up on the
/// filesystem, where they mean what they always meant.
fn listable(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\u{FFFD}')
}

/// Whether `dir/name` may exist: false only when the listing of `dir` was
/// read and does not hold `name`.
fn may_exist(listing: Option<&HashSet<String>>, name: &str) -> bool {
    match listing {
        Some(names) if listable(name) => names.contains(name),
        _ => true,
    }
}

/// The unit directories and their dependency directories that exist (host
/// paths), and a poll of the unit itself when systemd runs: activity raises
/// no file event.
pub fn sources(fs: &RootFs, unit: &str) -> Vec<Source> {
    if parse_unit_name(unit).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for dir in unit_dirs(fs) {
        out.push(Source::Path(fs.host_path(dir)));
        for sub in dependency_dirs(fs, dir) {
            out.push(Source::Path(fs.host_path(&sub)));
        }
    }
    if fs.is_live() && systemd_running(fs) {
        out.push(Source::Poll(FactKey::Service(unit.to_string())));
    }
    out
}

fn inspect(fs: &RootFs, unit: &str, index: &ServiceIndex) -> Result<ServiceFact, ServiceError> {
    let name = parse_unit_name(unit)?;
    let read_err = |source| ServiceError::Read {
        unit: unit.to_string(),
        source,
    };

    // An instance is looked up by its own name in every directory first,
    // then by its template, as systemd does.
    let mut found = find_entry(fs, index, &name.name).map_err(read_err)?;
    if found.is_none()
        && let Some(template) = name.template()
    {
        found = find_entry(fs, index, &template)
            .map_err(read_err)?
            .map(|f| f.instantiate(&name));
    }

    // The names whose links enable this unit.
    let mut names: BTreeSet<String> = BTreeSet::new();
    names.insert(name.name.clone());
    let mut masked = false;
    let mut unit_file = None;
    if let Some(found) = &found {
        masked = found.masked;
        unit_file = Some(found.file.clone());
        names.insert(found.canonical.clone());
        if !found.masked {
            let text = fs.read_to_string(&found.file).map_err(read_err)?;
            for alias in install_aliases(&text) {
                names.insert(instantiate_name(&alias, &name));
            }
        }
    }

    let mut enabled_by = Vec::new();
    let canonical = found
        .as_ref()
        .map(|f| f.canonical.clone())
        .unwrap_or_else(|| name.name.clone());
    for (dir, links) in &index.alias_links {
        let aliases = match links {
            Some(links) => aliases_in(dir, links, &canonical),
            None => alias_links(fs, dir, &canonical).map_err(read_err)?,
        };
        for alias in aliases {
            names.insert(alias.name);
            enabled_by.push(alias.evidence);
        }
    }
    for (sub, listing) in &index.dependency_dirs {
        for candidate in &names {
            if !may_exist(listing.as_ref(), candidate) {
                continue;
            }
            let path = format!("{sub}/{candidate}");
            match fs.symlink_metadata(&path) {
                Ok(_) => {
                    // Without a unit file of its own, a link counts only
                    // when it leads to a unit file (a linked unit).
                    if unit_file.is_none() {
                        match fs.metadata(&path) {
                            Ok(md) if md.is_file() => {
                                unit_file = fs.resolve(&path).ok().map(|p| relative(fs, &p));
                            }
                            _ => continue,
                        }
                    }
                    enabled_by.push(link_evidence(fs, &path));
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(read_err(e)),
            }
        }
    }

    let exists = unit_file.is_some() || masked;
    Ok(ServiceFact {
        unit: name.name.clone(),
        unit_file,
        masked,
        enabled_by,
        active: match index.activity.get(&name.name) {
            Some(active) if fs.is_live() && index.systemd_running => Live::Value(Ok(*active)),
            _ => activity(fs, &name.name, exists, index.systemd_running),
        },
    })
}

/// A unit's entry in the first unit directory that has one.
#[derive(Debug, Clone)]
struct Found {
    /// The unit file (root-relative), after symlinks; for a masked unit, the
    /// masking entry itself.
    file: String,
    masked: bool,
    /// The unit's own name: the file name at the end of a symlink chain, so
    /// an alias entry (`sshd.service -> ssh.service`) names the real unit.
    canonical: String,
}

impl Found {
    /// A template entry seen as backing one instance: its canonical name
    /// takes the instance (`getty@.service` -> `getty@tty1.service`).
    fn instantiate(mut self, name: &UnitName) -> Found {
        self.canonical = instantiate_name(&self.canonical, name);
        self
    }
}

/// Fills an instance into a template name (`x@.service`); other names are
/// returned as they are.
fn instantiate_name(candidate: &str, name: &UnitName) -> String {
    match &name.instance {
        Some(instance) if !instance.is_empty() && candidate.contains("@.") => {
            candidate.replacen("@.", &format!("@{instance}."), 1)
        }
        _ => candidate.to_string(),
    }
}

fn find_entry(
    fs: &RootFs,
    index: &ServiceIndex,
    file_name: &str,
) -> Result<Option<Found>, RootError> {
    for dir in &index.dirs {
        if !may_exist(index.listing(dir), file_name) {
            continue;
        }
        let path = format!("{dir}/{file_name}");
        let md = match fs.symlink_metadata(&path) {
            Ok(md) => md,
            Err(e) if e.is_not_found() => continue,
            Err(e) => return Err(e),
        };
        if md.file_type().is_symlink() {
            let target = fs.read_link(&path)?;
            if target == Path::new("/dev/null") {
                return Ok(Some(Found {
                    file: path,
                    masked: true,
                    canonical: file_name.to_string(),
                }));
            }
            let resolved = fs.resolve(&path)?;
            match std::fs::metadata(&resolved) {
                Ok(target_md) if is_null_or_empty(&target_md) => {
                    return Ok(Some(Found {
                        file: path,
                        masked: true,
                        canonical: file_name.to_string(),
                    }));
                }
                Ok(target_md) if target_md.is_file() => {
                    let canonical = resolved
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| file_name.to_string());
                    return Ok(Some(Found {
                        file: relative(fs, &resolved),
                        masked: false,
                        canonical,
                    }));
                }
                // A dangling link or a link to a directory defines nothing;
                // systemd goes on to the next directory.
                _ => continue,
            }
        }
        if md.is_file() {
            return Ok(Some(Found {
                file: path,
                masked: md.len() == 0,
                canonical: file_name.to_string(),
            }));
        }
    }
    Ok(None)
}

/// systemd treats an empty unit file, or one that is `/dev/null`, as masked.
fn is_null_or_empty(md: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    md.file_type().is_char_device() || (md.is_file() && md.len() == 0)
}

struct AliasLink {
    name: String,
    evidence: Evidence,
}

/// Symlinks in `dir` with another name that point at `canonical`.
fn alias_links(fs: &RootFs, dir: &str, canonical: &str) -> Result<Vec<AliasLink>, RootError> {
    let dot_suffix = dot_suffix(canonical);
    let mut links = Vec::new();
    for entry in fs.read_dir(dir)? {
        if entry == canonical || !entry.ends_with(&dot_suffix) {
            continue;
        }
        let Ok(target) = fs.read_link(&format!("{dir}/{entry}")) else {
            continue;
        };
        links.push((entry, target));
    }
    Ok(aliases_in(dir, &links, canonical))
}

/// The aliases of `canonical` among the symlinks `links` (name, stored
/// target) of `dir`, in the order given: links with another name and the
/// same suffix whose target's file name is `canonical`.
fn aliases_in(dir: &str, links: &[(String, PathBuf)], canonical: &str) -> Vec<AliasLink> {
    let dot_suffix = dot_suffix(canonical);
    links
        .iter()
        .filter(|(entry, target)| {
            entry != canonical
                && entry.ends_with(&dot_suffix)
                && target.file_name().is_some_and(|n| n == canonical)
        })
        .map(|(entry, target)| AliasLink {
            name: entry.clone(),
            evidence: Evidence::text(
                format!("{dir}/{entry}"),
                format!("alias -> {}", target.display()),
            ),
        })
        .collect()
}

/// The unit type suffix of a name with its dot (`.service`), or `.` for a
/// name without one.
fn dot_suffix(name: &str) -> String {
    let suffix = name.rsplit_once('.').map(|(_, s)| s).unwrap_or("");
    format!(".{suffix}")
}

fn link_evidence(fs: &RootFs, path: &str) -> Evidence {
    match fs.read_link(path) {
        Ok(target) => Evidence::text(path, format!("-> {}", target.display())),
        Err(_) => Evidence::text(path, "present"),
    }
}

/// The unit directories that exist below the root, skipping one that is the
/// same directory as an earlier one (`/lib` -> `/usr/lib` on merged-usr).
fn unit_dirs(fs: &RootFs) -> Vec<&'static str> {
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut out = Vec::new();
    for dir in UNIT_DIRS {
        let Ok(resolved) = fs.resolve(dir) else {
            continue;
        };
        if !resolved.is_dir() || seen.contains(&resolved) {
            continue;
        }
        seen.push(resolved);
        out.push(dir);
    }
    out
}

/// The `*.wants`, `*.requires` and `*.upholds` directories in a unit
/// directory (root-relative), in name order.
fn dependency_dirs(fs: &RootFs, dir: &str) -> Vec<String> {
    let Ok(entries) = fs.read_dir(dir) else {
        return Vec::new();
    };
    entries
        .into_iter()
        .filter(|e| DEPENDENCY_SUFFIXES.iter().any(|s| e.ends_with(s)))
        .map(|e| format!("{dir}/{e}"))
        .filter(|p| fs.metadata(p).is_ok_and(|m| m.is_dir()))
        .collect()
}

/// The root-relative form (`/etc/...`) of a host path below the root.
fn relative(fs: &RootFs, host: &Path) -> String {
    match host.strip_prefix(fs.root()) {
        Ok(rest) => format!("/{}", rest.display()),
        Err(_) => host.display().to_string(),
    }
}

fn systemd_running(fs: &RootFs) -> bool {
    fs.metadata("/run/systemd/system").is_ok_and(|m| m.is_dir())
}

/// Live activity. A unit with no file at all is inactive wherever it is
/// asked, unless a running systemd says otherwise (transient and generated
/// units live outside the unit directories).
fn activity(fs: &RootFs, unit: &str, exists: bool, systemd_running: bool) -> Live<Probed<bool>> {
    if !fs.is_live() {
        if !exists {
            return Live::Value(Ok(false));
        }
        return Live::NotApplicable(
            "offline root: activity is state of the running system".to_string(),
        );
    }
    if !systemd_running {
        return Live::Value(if exists {
            Err(ProbeFailure::new(ServiceError::NotRunning.to_string()))
        } else {
            Ok(false)
        });
    }
    Live::Value(systemctl_is_active(unit).map_err(|e| ProbeFailure::new(e.to_string())))
}

fn systemctl_is_active(unit: &str) -> Result<bool, ServiceError> {
    let done = command::run(
        "systemctl",
        &["is-active", "--", unit],
        SYSTEMCTL_TIMEOUT,
        64 * 1024,
    )
    .map_err(|source| ServiceError::Systemctl {
        unit: unit.to_string(),
        source,
    })?;
    // The exit status is non-zero for every state but active: the printed
    // state is what counts.
    let answer = String::from_utf8_lossy(&done.stdout);
    let answer = answer.lines().next().unwrap_or("").trim();
    is_active_state(answer).ok_or_else(|| ServiceError::Answer {
        unit: unit.to_string(),
        answer: if answer.is_empty() {
            done.failure()
        } else {
            answer.to_string()
        },
    })
}

/// Maps a state printed by `systemctl is-active`. Units that are starting,
/// reloading or still stopping have running processes, so they count as active.
fn is_active_state(state: &str) -> Option<bool> {
    match state {
        "active" | "reloading" | "activating" | "refreshing" | "deactivating" => Some(true),
        "inactive" | "failed" | "unknown" | "maintenance" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
