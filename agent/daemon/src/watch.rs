//! Watching the sources behind the facts: which paths back which facts (the
//! source index), the inotify watches on their parent directories (and on
//! `/proc/sys` files themselves), and the bounded inbox that coalesces the
//! watcher's events until the core loop takes them as one batch.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use hardend_facts::{FactKey, Source};
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RemoveKind, RenameMode};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};

/// The most distinct changed paths the inbox holds; past it the batch
/// becomes a full rescan, so a storm cannot grow memory without bound.
pub const INBOX_CAPACITY: usize = 4096;

/// Problems setting up the watcher.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// inotify could not be initialised (no more instances, for example).
    #[error("cannot start the file watcher: {0}")]
    Init(#[source] notify::Error),
}

/// Counters about the inbox, for tests and status lines.
#[derive(Debug, Default)]
pub struct InboxStats {
    /// Events received from the watcher (after filtering out reads).
    pub received: AtomicU64,
    /// The most distinct paths ever pending at once.
    pub high_water: AtomicUsize,
    /// Times the inbox or the kernel queue overflowed into a full rescan.
    pub overflows: AtomicU64,
}

#[derive(Debug, Default)]
struct Pending {
    paths: HashSet<PathBuf>,
    rescan: bool,
    first: Option<Instant>,
    last: Option<Instant>,
}

/// What the watcher saw since the last batch was taken.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Batch {
    pub paths: BTreeSet<PathBuf>,
    /// The kernel queue or the inbox overflowed: changes may have been lost.
    pub rescan: bool,
}

/// The coalescing queue between the watcher thread and the core loop. Its
/// size is bounded by [`INBOX_CAPACITY`] distinct paths.
#[derive(Debug, Default)]
pub struct Inbox {
    pending: Mutex<Pending>,
    wake: tokio::sync::Notify,
    pub stats: InboxStats,
}

impl Inbox {
    pub fn new() -> Arc<Inbox> {
        Arc::new(Inbox::default())
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock cannot leave `Pending` inconsistent
        // (every update is a single insert or assignment), so go on.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes one event from the watcher.
    pub fn push(&self, event: notify::Result<Event>) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "file watcher error; a full rescan follows");
                self.push_rescan();
                return;
            }
        };
        if event.need_rescan() {
            self.stats.overflows.fetch_add(1, Ordering::Relaxed);
            self.push_rescan();
            return;
        }
        if !is_change(&event.kind) {
            return;
        }
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut p = self.lock();
        for path in event.paths {
            if p.paths.len() >= INBOX_CAPACITY {
                if !p.rescan {
                    self.stats.overflows.fetch_add(1, Ordering::Relaxed);
                }
                p.rescan = true;
                p.paths.clear();
                break;
            }
            if !p.rescan {
                p.paths.insert(path);
            }
        }
        self.stats
            .high_water
            .fetch_max(p.paths.len(), Ordering::Relaxed);
        p.first.get_or_insert(now);
        p.last = Some(now);
        drop(p);
        self.wake.notify_one();
    }

    /// Asks for a full rescan at the next batch.
    pub fn push_rescan(&self) {
        let now = Instant::now();
        let mut p = self.lock();
        p.rescan = true;
        p.paths.clear();
        p.first.get_or_insert(now);
        p.last = Some(now);
        drop(p);
        self.wake.notify_one();
    }

    /// Adds paths as if the watcher had reported them (the core uses it for
    /// directories that appeared and must be looked into).
    pub fn push_paths(&self, paths: impl IntoIterator<Item = PathBuf>) {
        let event = paths.into_iter().fold(
            Event::new(EventKind::Create(notify::event::CreateKind::Any)),
            Event::add_path,
        );
        if !event.paths.is_empty() {
            self.push(Ok(event));
        }
    }

    /// Waits until something is pending (may wake spuriously).
    pub async fn wait(&self) {
        self.wake.notified().await;
    }

    /// When the current burst started and when its latest event came.
    pub fn burst(&self) -> Option<(Instant, Instant)> {
        let p = self.lock();
        Some((p.first?, p.last?))
    }

    /// Takes everything pending, or `None` when nothing is.
    pub fn take(&self) -> Option<Batch> {
        let mut p = self.lock();
        p.first?;
        let batch = Batch {
            paths: p.paths.drain().collect(),
            rescan: p.rescan,
        };
        // Give the memory of a storm back.
        if p.paths.capacity() > 256 {
            p.paths.shrink_to(64);
        }
        p.rescan = false;
        p.first = None;
        p.last = None;
        Some(batch)
    }

    /// How many distinct paths are pending now.
    pub fn len(&self) -> usize {
        self.lock().paths.len()
    }

    pub fn is_empty(&self) -> bool {
        let p = self.lock();
        p.paths.is_empty() && !p.rescan
    }
}

/// Whether an event can mean a change of content or metadata. Reads (open,
/// close without write) are not: the probes themselves cause them.
fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        EventKind::Any
        | EventKind::Create(_)
        | EventKind::Modify(_)
        | EventKind::Remove(_)
        | EventKind::Other => true,
    }
}

/// Whether an event says that `path` itself went away (deleted or renamed).
fn is_gone(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Remove(RemoveKind::Any | RemoveKind::Folder | RemoveKind::Other)
            | EventKind::Modify(ModifyKind::Name(RenameMode::From | RenameMode::Any))
    )
}

/// Which paths back which facts, and which facts must be polled.
#[derive(Debug, Default, Clone)]
pub struct SourceIndex {
    by_key: HashMap<FactKey, Vec<PathBuf>>,
    by_path: BTreeMap<PathBuf, BTreeSet<FactKey>>,
    polled: BTreeSet<FactKey>,
}

impl SourceIndex {
    /// Records the sources of `key`, replacing what was known.
    pub fn set(&mut self, key: &FactKey, sources: Vec<Source>) {
        self.remove(key);
        let mut paths = Vec::new();
        for source in sources {
            match source {
                Source::Path(p) => {
                    self.by_path
                        .entry(p.clone())
                        .or_default()
                        .insert(key.clone());
                    paths.push(p);
                }
                Source::Poll(k) => {
                    self.polled.insert(k);
                }
            }
        }
        // Kernel parameters are polled as a backstop for a missed event.
        if matches!(key, FactKey::Sysctl(_)) {
            self.polled.insert(key.clone());
        }
        self.by_key.insert(key.clone(), paths);
    }

    /// Forgets `key`.
    pub fn remove(&mut self, key: &FactKey) {
        if let Some(paths) = self.by_key.remove(key) {
            for p in paths {
                if let Some(keys) = self.by_path.get_mut(&p) {
                    keys.remove(key);
                    if keys.is_empty() {
                        self.by_path.remove(&p);
                    }
                }
            }
        }
        self.polled.remove(key);
    }

    /// The facts a change of `path` can affect: those backed by the path
    /// itself, by its directory, or by anything below it (a directory on the
    /// way was replaced).
    pub fn affected(&self, path: &Path) -> BTreeSet<FactKey> {
        let mut out = BTreeSet::new();
        if let Some(parent) = path.parent()
            && let Some(keys) = self.by_path.get(parent)
        {
            out.extend(keys.iter().cloned());
        }
        for (p, keys) in self.by_path.range(path.to_path_buf()..) {
            if !p.starts_with(path) {
                break;
            }
            out.extend(keys.iter().cloned());
        }
        out
    }

    /// The facts that are polled: kernel parameters and the state nothing
    /// signals (listening sockets, the firewall).
    pub fn polled(&self) -> &BTreeSet<FactKey> {
        &self.polled
    }

    /// The source paths, for watching.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.by_path.keys().map(PathBuf::as_path)
    }
}

/// The directories (and `/proc` files) to watch for a set of source paths:
/// the nearest existing parent of each path, the path itself when it is a
/// directory, and a `/proc` file itself (procfs raises events on the file
/// only).
pub fn watch_targets<'a>(paths: impl Iterator<Item = &'a Path>, proc: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for path in paths {
        let meta = std::fs::metadata(path);
        if meta.as_ref().is_ok_and(|m| m.is_dir()) || (path.starts_with(proc) && meta.is_ok()) {
            out.insert(path.to_path_buf());
        }
        let mut dir = path.parent();
        while let Some(d) = dir {
            if out.contains(d) || d.is_dir() {
                out.insert(d.to_path_buf());
                break;
            }
            dir = d.parent();
        }
    }
    out
}

/// The inotify watches, kept equal to a desired set of paths.
pub struct PathWatcher {
    watcher: RecommendedWatcher,
    /// Watched path -> (device, inode) when the watch was added, to notice a
    /// directory that was replaced.
    watched: HashMap<PathBuf, (u64, u64)>,
    gone: Arc<Mutex<HashSet<PathBuf>>>,
}

impl std::fmt::Debug for PathWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PathWatcher")
            .field("watched", &self.watched.len())
            .finish_non_exhaustive()
    }
}

impl PathWatcher {
    /// Starts inotify; events go to `inbox`.
    pub fn new(inbox: Arc<Inbox>) -> Result<PathWatcher, WatchError> {
        let gone: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
        let gone_in_handler = gone.clone();
        let handler = move |event: notify::Result<Event>| {
            if let Ok(e) = &event
                && is_gone(&e.kind)
            {
                let mut g = gone_in_handler.lock().unwrap_or_else(|p| p.into_inner());
                // Bounded: a storm of deletions only makes the next reconcile
                // re-check every watch.
                if g.len() < INBOX_CAPACITY {
                    g.extend(e.paths.iter().cloned());
                }
            }
            inbox.push(event);
        };
        let watcher = RecommendedWatcher::new(handler, notify::Config::default())
            .map_err(WatchError::Init)?;
        Ok(PathWatcher {
            watcher,
            watched: HashMap::new(),
            gone,
        })
    }

    /// How many paths are watched.
    pub fn len(&self) -> usize {
        self.watched.len()
    }

    pub fn is_empty(&self) -> bool {
        self.watched.is_empty()
    }

    /// Whether `path` is watched now.
    pub fn is_watched(&self, path: &Path) -> bool {
        self.watched.contains_key(path)
    }

    /// Adds and removes watches so exactly `desired` is watched; a watched
    /// directory that was deleted, renamed or replaced is watched anew.
    /// Returns the paths that were not watched before.
    pub fn reconcile(&mut self, desired: &BTreeSet<PathBuf>) -> Vec<PathBuf> {
        let gone: HashSet<PathBuf> = {
            let mut g = self.gone.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *g)
        };
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(p, id)| {
                !desired.contains(*p) || gone.contains(*p) || identity(p).as_ref() != Some(*id)
            })
            .map(|(p, _)| p.clone())
            .collect();
        for p in stale {
            self.watched.remove(&p);
            // The kernel may already have dropped it; that is fine.
            let _ = self.watcher.unwatch(&p);
        }
        let mut added = Vec::new();
        for p in desired {
            if self.watched.contains_key(p) {
                continue;
            }
            let Some(id) = identity(p) else { continue };
            match self.watcher.watch(p, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(p.clone(), id);
                    added.push(p.clone());
                }
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "cannot watch; the poll and the full rescan still cover it");
                }
            }
        }
        added
    }
}

fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str) -> FactKey {
        FactKey::File {
            path: path.into(),
            content: true,
        }
    }

    #[test]
    fn affected_facts_by_path_parent_and_ancestor() {
        let mut index = SourceIndex::default();
        index.set(
            &key("/etc/ssh/sshd_config"),
            vec![
                Source::Path("/r/etc/ssh".into()),
                Source::Path("/r/etc/ssh/sshd_config".into()),
            ],
        );
        index.set(
            &FactKey::Sysctl("net.ipv4.ip_forward".into()),
            vec![
                Source::Path("/r/proc/sys/net/ipv4/ip_forward".into()),
                Source::Path("/r/etc/sysctl.d".into()),
            ],
        );
        index.set(&FactKey::Listening, vec![Source::Poll(FactKey::Listening)]);
        let sshd = BTreeSet::from([key("/etc/ssh/sshd_config")]);
        let sysctl = BTreeSet::from([FactKey::Sysctl("net.ipv4.ip_forward".into())]);
        assert_eq!(index.affected(Path::new("/r/etc/ssh/sshd_config")), sshd);
        assert_eq!(index.affected(Path::new("/r/etc/ssh/new-file")), sshd);
        assert_eq!(index.affected(Path::new("/r/etc/ssh")), sshd);
        assert_eq!(
            index.affected(Path::new("/r/etc/sysctl.d/99-x.conf")),
            sysctl
        );
        assert_eq!(
            index.affected(Path::new("/r/proc/sys/net/ipv4/ip_forward")),
            sysctl
        );
        // /r/etc is an ancestor of both.
        assert_eq!(index.affected(Path::new("/r/etc")).len(), 2);
        assert!(index.affected(Path::new("/r/etc/ssh2")).is_empty());
        assert!(index.affected(Path::new("/r/etc/passwd")).is_empty());
        assert_eq!(
            index.polled(),
            &BTreeSet::from([
                FactKey::Sysctl("net.ipv4.ip_forward".into()),
                FactKey::Listening
            ])
        );
        index.remove(&key("/etc/ssh/sshd_config"));
        assert!(
            index
                .affected(Path::new("/r/etc/ssh/sshd_config"))
                .is_empty()
        );
    }

    #[test]
    fn targets_are_existing_parents_directories_and_proc_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path();
        std::fs::create_dir_all(r.join("etc/ssh")).expect("mkdir");
        std::fs::create_dir_all(r.join("proc/sys/net/ipv4")).expect("mkdir");
        std::fs::write(r.join("proc/sys/net/ipv4/ip_forward"), "0\n").expect("write");
        let paths = [
            r.join("etc/ssh/sshd_config"),
            r.join("etc/ssh"),
            r.join("etc/missing/deeper/file"),
            r.join("proc/sys/net/ipv4/ip_forward"),
        ];
        let targets = watch_targets(paths.iter().map(PathBuf::as_path), &r.join("proc"));
        let want: BTreeSet<PathBuf> = [
            r.join("etc"),
            r.join("etc/ssh"),
            r.join("proc/sys/net/ipv4"),
            r.join("proc/sys/net/ipv4/ip_forward"),
        ]
        .into_iter()
        .collect();
        assert_eq!(targets, want);
    }

    #[test]
    fn the_inbox_coalesces_and_stays_bounded() {
        let inbox = Inbox::new();
        for _ in 0..3 {
            inbox.push(Ok(
                Event::new(EventKind::Modify(ModifyKind::Any)).add_path("/a".into())
            ));
        }
        // Reads are not changes.
        inbox.push(Ok(Event::new(EventKind::Access(AccessKind::Open(
            AccessMode::Any,
        )))
        .add_path("/b".into())));
        let batch = inbox.take().expect("a batch");
        assert_eq!(batch.paths, BTreeSet::from([PathBuf::from("/a")]));
        assert!(!batch.rescan);
        assert!(inbox.take().is_none());
        for i in 0..(INBOX_CAPACITY + 10) {
            inbox.push(Ok(Event::new(EventKind::Create(
                notify::event::CreateKind::File,
            ))
            .add_path(format!("/d/{i}").into())));
            assert!(inbox.len() <= INBOX_CAPACITY);
        }
        let batch = inbox.take().expect("a batch");
        assert!(batch.rescan);
        assert!(batch.paths.is_empty());
        assert!(inbox.stats.high_water.load(Ordering::Relaxed) <= INBOX_CAPACITY);
    }
}
