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

use std::collections::BTreeSet;
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
pub fn probe(fs: &RootFs, unit: &str) -> Probed<ServiceFact> {
    inspect(fs, unit).map_err(|e| ProbeFailure::new(e.to_string()))
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

fn inspect(fs: &RootFs, unit: &str) -> Result<ServiceFact, ServiceError> {
    let name = parse_unit_name(unit)?;
    let read_err = |source| ServiceError::Read {
        unit: unit.to_string(),
        source,
    };
    let dirs = unit_dirs(fs);

    // An instance is looked up by its own name in every directory first,
    // then by its template, as systemd does.
    let mut found = find_entry(fs, &dirs, &name.name).map_err(read_err)?;
    if found.is_none()
        && let Some(template) = name.template()
    {
        found = find_entry(fs, &dirs, &template)
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
    for dir in ALIAS_DIRS {
        if !dirs.contains(&dir) {
            continue;
        }
        for alias in alias_links(fs, dir, &canonical).map_err(read_err)? {
            names.insert(alias.name);
            enabled_by.push(alias.evidence);
        }
    }
    for dir in &dirs {
        for sub in dependency_dirs(fs, dir) {
            for candidate in &names {
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
    }

    let exists = unit_file.is_some() || masked;
    Ok(ServiceFact {
        unit: name.name.clone(),
        unit_file,
        masked,
        enabled_by,
        active: activity(fs, &name.name, exists),
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

fn find_entry(fs: &RootFs, dirs: &[&str], file_name: &str) -> Result<Option<Found>, RootError> {
    for dir in dirs {
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
    let suffix = canonical.rsplit_once('.').map(|(_, s)| s).unwrap_or("");
    let mut out = Vec::new();
    for entry in fs.read_dir(dir)? {
        if entry == canonical || !entry.ends_with(&format!(".{suffix}")) {
            continue;
        }
        let path = format!("{dir}/{entry}");
        let Ok(target) = fs.read_link(&path) else {
            continue;
        };
        if target.file_name().is_some_and(|n| n == canonical) {
            out.push(AliasLink {
                name: entry,
                evidence: Evidence::text(&path, format!("alias -> {}", target.display())),
            });
        }
    }
    Ok(out)
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
fn activity(fs: &RootFs, unit: &str, exists: bool) -> Live<Probed<bool>> {
    if !fs.is_live() {
        if !exists {
            return Live::Value(Ok(false));
        }
        return Live::NotApplicable(
            "offline root: activity is state of the running system".to_string(),
        );
    }
    if !systemd_running(fs) {
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
