//! Live processes that still run code from a deleted or replaced file: an
//! update is installed but the old binary or library is what runs.
//!
//! For every process, `/proc/PID/exe` and the executable mappings of
//! `/proc/PID/maps` whose path the kernel marks ` (deleted)` are reported.
//! Mappings that are not files on disk (memfd, SysV and POSIX shared memory,
//! devices, anonymous huge pages) are ignored. Live only: on another root
//! the processes are not the root's.
//!
//! A mapping only turns "deleted" when its file is replaced or removed,
//! which is a change in the directory that holds it: the fact is re-read
//! on changes in the binary and library directories and the dpkg database
//! (see [`sources`]) instead of on every poll. A file replaced anywhere
//! else is found by the daemon's full rescan.

use std::collections::BTreeSet;

use hardend_facts::posture::{DeletedMapping, ProcessesFact};
use hardend_facts::{Live, ProbeFailure, Probed, Source};

use crate::RootFs;

const DELETED: &str = " (deleted)";

/// Errors of listing the processes.
#[derive(Debug, thiserror::Error)]
pub enum ProcessesError {
    #[error("cannot list /proc: {0}")]
    List(std::io::Error),
}

/// Finds the processes that map deleted files; not applicable off-line.
pub fn probe(fs: &RootFs) -> Probed<Live<ProcessesFact>> {
    if !fs.is_live() {
        return Ok(Live::NotApplicable(
            "processes are live state; the scanned root is not the running system".to_string(),
        ));
    }
    // The root is `/` here, so `/proc` is the kernel's and holds no links
    // that could lead outside it: it is read directly.
    scan(&fs.host_path("/proc"))
        .map(Live::Value)
        .map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The directories whose files are the programs and libraries that
/// processes map, in addition to the multiarch library directories.
const CODE_DIRS: [&str; 13] = [
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/var/lib/dpkg",
];

/// The directories where replacing a file leaves processes mapping the old
/// one: the binary and library directories that exist as directories (a
/// symlink such as a merged-/usr `/bin` is watched through its target),
/// the multiarch library directories (`/usr/lib/x86_64-linux-gnu`, ...) and
/// the dpkg database, whose change marks a package installation. Off-line
/// there is nothing to watch: the fact is not applicable.
pub fn sources(fs: &RootFs) -> Vec<Source> {
    if !fs.is_live() {
        return Vec::new();
    }
    let is_real_dir = |dir: &str| {
        fs.symlink_metadata(dir)
            .is_ok_and(|m| m.file_type().is_dir())
    };
    let mut dirs: Vec<String> = CODE_DIRS
        .iter()
        .filter(|d| is_real_dir(d))
        .map(|d| d.to_string())
        .collect();
    for lib in ["/usr/lib", "/lib"] {
        let Ok(mut names) = fs.read_dir(lib) else {
            continue;
        };
        names.sort();
        for name in names {
            let dir = format!("{lib}/{name}");
            if name.contains("-linux-gnu") && is_real_dir(&dir) {
                dirs.push(dir);
            }
        }
    }
    dirs.into_iter()
        .map(|d| Source::Path(fs.host_path(&d)))
        .collect()
}

/// True for a mapped path that names a file on disk.
fn is_file_path(path: &str) -> bool {
    const NOT_FILES: [&str; 8] = [
        "/memfd:",
        "/SYSV",
        "/dev/",
        "/anon_hugepage",
        "/[",
        "/drm mm object",
        "/dmabuf:",
        "/i915",
    ];
    path.starts_with('/') && !NOT_FILES.iter().any(|p| path.starts_with(p))
}

/// The deleted files among the executable mappings of one `maps` text.
pub fn deleted_in_maps(maps: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    // Most processes map nothing deleted: skip their text in one search.
    if memchr::memmem::find(maps, DELETED.as_bytes()).is_none() {
        return out;
    }
    for line in maps.split(|b| *b == b'\n') {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let Some(path) = line.strip_suffix(DELETED) else {
            continue;
        };
        // address perms offset dev inode path
        let mut rest = path;
        let mut perms = "";
        for i in 0..5 {
            let trimmed = rest.trim_start();
            let end = trimmed.find(' ').unwrap_or(trimmed.len());
            if i == 1 {
                perms = trimmed.get(..end).unwrap_or_default();
            }
            rest = trimmed.get(end..).unwrap_or_default();
        }
        let path = rest.trim_start();
        if perms.as_bytes().get(2) == Some(&b'x') && is_file_path(path) {
            out.insert(path.to_string());
        }
    }
    out
}

/// Scans every process under `proc` (a host path). Reading a process's
/// maps costs the kernel a walk of its address space, so the processes are
/// split across a few threads.
pub fn scan(proc: &std::path::Path) -> Result<ProcessesFact, ProcessesError> {
    let mut pids: Vec<u32> = Vec::new();
    for entry in std::fs::read_dir(proc).map_err(ProcessesError::List)? {
        let Ok(entry) = entry else { continue };
        if let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        {
            pids.push(pid);
        }
    }
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let chunk = pids.len().div_ceil(workers).max(16);
    let mut fact = ProcessesFact::default();
    std::thread::scope(|scope| {
        let mut chunks = pids.chunks(chunk);
        let first = chunks.next().unwrap_or_default();
        // Each further chunk on its own thread; a chunk that gets no thread
        // is scanned here instead.
        let mut inline: Vec<&[u32]> = vec![first];
        let mut handles = Vec::new();
        for part in chunks {
            match std::thread::Builder::new()
                .name("hardend-processes".to_string())
                .spawn_scoped(scope, move || scan_pids(proc, part))
            {
                Ok(h) => handles.push((part, h)),
                Err(_) => inline.push(part),
            }
        }
        let mut parts: Vec<(usize, Vec<DeletedMapping>)> = inline
            .into_iter()
            .map(|part| scan_pids(proc, part))
            .collect();
        for (part, handle) in handles {
            // A worker that panicked is redone here rather than lost.
            parts.push(handle.join().unwrap_or_else(|_| scan_pids(proc, part)));
        }
        for (scanned, deleted) in parts {
            fact.scanned += scanned;
            fact.deleted.extend(deleted);
        }
    });
    fact.deleted.sort();
    Ok(fact)
}

/// Scans the given processes: how many could be read, and what they map
/// that was deleted.
fn scan_pids(proc: &std::path::Path, pids: &[u32]) -> (usize, Vec<DeletedMapping>) {
    let mut scanned = 0usize;
    let mut out = Vec::new();
    for &pid in pids {
        let dir = proc.join(pid.to_string());
        // A process that exits meanwhile, or one we may not inspect, has
        // nothing readable; it is skipped.
        let Ok(maps) = std::fs::read(dir.join("maps")) else {
            continue;
        };
        scanned += 1;
        let mut files = deleted_in_maps(&maps);
        let exe = std::fs::read_link(dir.join("exe"))
            .ok()
            .and_then(|p| p.to_str().map(str::to_string))
            .and_then(|p| p.strip_suffix(DELETED).map(str::to_string))
            .filter(|p| is_file_path(p));
        if let Some(exe) = &exe {
            files.insert(exe.clone());
        }
        if files.is_empty() {
            continue;
        }
        let command = std::fs::read(dir.join("comm"))
            .map(|b| String::from_utf8_lossy(&b).trim_end().to_string())
            .unwrap_or_default();
        for file in files {
            out.push(DeletedMapping {
                pid,
                command: command.clone(),
                executable: exe.as_deref() == Some(file.as_str()),
                file,
            });
        }
    }
    (scanned, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_the_code_directories_not_a_poll() {
        let live = sources(&RootFs::new("/"));
        assert!(live.iter().all(|s| matches!(s, Source::Path(_))));
        let paths: Vec<&std::path::Path> = live
            .iter()
            .filter_map(|s| match s {
                Source::Path(p) => Some(p.as_path()),
                _ => None,
            })
            .collect();
        assert!(
            paths.contains(&std::path::Path::new("/usr/bin")),
            "{paths:?}"
        );
        assert!(paths.iter().all(|p| p.is_dir()), "{paths:?}");
        let fixture = tempfile::tempdir().expect("tempdir");
        assert!(sources(&RootFs::new(fixture.path())).is_empty());
    }

    #[test]
    fn only_executable_file_mappings_count() {
        let maps = b"\
55d0c000-55d0d000 r--p 00000000 08:01 1234 /usr/bin/old tool (deleted)
55d0d000-55d0e000 r-xp 00001000 08:01 1234 /usr/bin/old tool (deleted)
7f00-7f01 r-xp 00000000 08:01 99 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)
7f01-7f02 rw-p 00000000 08:01 98 /var/log/data.bin (deleted)
7f02-7f03 r-xs 00000000 00:01 5 /memfd:jit (deleted)
7f03-7f04 rw-s 00000000 00:05 7 /SYSV00000000 (deleted)
7f04-7f05 r-xp 00000000 00:05 8 /dev/zero (deleted)
7f05-7f06 r-xp 00000000 08:01 100 /usr/lib/libz.so.1
7ffd-7ffe r-xp 00000000 00:00 0 [vdso]
";
        let found: Vec<String> = deleted_in_maps(maps).into_iter().collect();
        assert_eq!(
            found,
            vec![
                "/usr/bin/old tool".to_string(),
                "/usr/lib/x86_64-linux-gnu/libssl.so.3".to_string()
            ]
        );
        assert!(deleted_in_maps(b"garbage (deleted)\n\xff\xfe (deleted)\n").is_empty());
    }
}
