//! A process-wide cache of parsed files, keyed by host path and invalidated
//! when the file's size, modification time, inode or device changes.
//!
//! The cache is process-wide rather than per [`crate::Probe`] because callers
//! build a new `Probe` for each evaluation (the CLI, the benchmark) as well as
//! keeping one (the daemon); both should parse a multi-megabyte apt list only
//! when it changed.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// More entries than any host has apt lists and certificate files; past it
/// the cache starts over, so hostile trees cannot grow it without bound.
const MAX_ENTRIES: usize = 4096;

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

impl Stamp {
    pub fn of(md: &std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
        Stamp {
            len: md.len(),
            mtime_ns: ns(md.mtime(), md.mtime_nsec()),
            ctime_ns: ns(md.ctime(), md.ctime_nsec()),
            ino: md.ino(),
            dev: md.dev(),
        }
    }
}

/// Parsed values of type `T` by host path.
#[derive(Debug)]
pub struct StampCache<T> {
    entries: Mutex<HashMap<PathBuf, (Stamp, Arc<T>)>>,
}

impl<T> Default for StampCache<T> {
    fn default() -> Self {
        StampCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> StampCache<T> {
    /// The cached value for `path` when its stamp is still `stamp`; otherwise
    /// `load` runs and its value is cached under `stamp` (errors are not cached).
    pub fn get_or_load<E>(
        &self,
        path: &Path,
        stamp: Stamp,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        self.get_or_load_where(path, stamp, |_| true, load)
    }

    /// Like [`StampCache::get_or_load`], but a cached value for which
    /// `valid` is false is loaded again too (it was parsed for other
    /// circumstances than the caller's).
    pub fn get_or_load_where<E>(
        &self,
        path: &Path,
        stamp: Stamp,
        valid: impl FnOnce(&T) -> bool,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        {
            let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some((s, value)) = entries.get(path)
                && *s == stamp
                && valid(value)
            {
                return Ok(Arc::clone(value));
            }
        }
        // Parse outside the lock: another thread may parse the same file at
        // the same time, and the last one to finish wins, which is harmless.
        let value = Arc::new(load()?);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(path) {
            entries.clear();
        }
        entries.insert(path.to_path_buf(), (stamp, Arc::clone(&value)));
        Ok(value)
    }

    /// Forgets the files for which `keep` is false (files that no longer
    /// exist under their name, so the cache does not grow with every new
    /// name a program gives its files).
    pub fn retain(&self, keep: impl Fn(&Path) -> bool) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|path, _| keep(path));
    }

    /// How many files are cached (for tests).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
