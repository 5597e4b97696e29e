//! Reading paths below a scanned root, with symlinks resolved inside it.
//!
//! An image scanned with `--root /mnt/img` may hold absolute symlinks
//! (`/etc/localtime -> /usr/share/zoneinfo/UTC`); they mean paths inside the
//! image, never on the host. [`RootFs::resolve`] walks every component and
//! keeps `..` and symlink targets from climbing out of the root.

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// Files larger than this are refused: no configuration file is this big, and
/// a hostile one must not exhaust memory.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

const MAX_SYMLINKS: usize = 40;

/// Errors of reading below the root.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{path}: too many levels of symbolic links")]
    SymlinkLoop { path: String },
    #[error("{path}: larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: String },
}

impl RootError {
    /// True when the path (or a component of it) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RootError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// A view of the filesystem below `root`.
#[derive(Debug, Clone)]
pub struct RootFs {
    root: PathBuf,
    live: bool,
}

impl RootFs {
    /// `root` is the directory to scan; `/` is the running system.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root: PathBuf = root.into();
        let live = fs::canonicalize(&root)
            .map(|p| p == Path::new("/"))
            .unwrap_or(false);
        RootFs { root, live }
    }

    /// The root as given.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when the root is the running system, so live state (`/proc/net`,
    /// the firewall, systemd) describes it.
    pub fn is_live(&self) -> bool {
        self.live
    }

    /// The host path of a root-relative path, without resolving symlinks
    /// (for watching and for error messages).
    pub fn host_path(&self, path: &str) -> PathBuf {
        let mut out = self.root.clone();
        for c in Path::new(path).components() {
            if let Component::Normal(n) = c {
                out.push(n);
            }
        }
        out
    }

    /// The host path of `path` with every symlink resolved inside the root.
    /// A final component that does not exist is kept as is; a missing
    /// directory on the way is an error.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, RootError> {
        self.resolve_inner(path, true)
    }

    /// Like [`RootFs::resolve`] but does not follow a symlink in the last component.
    pub fn resolve_nofollow(&self, path: &str) -> Result<PathBuf, RootError> {
        self.resolve_inner(path, false)
    }

    fn resolve_inner(&self, path: &str, follow_last: bool) -> Result<PathBuf, RootError> {
        // `done` holds the resolved components (relative to the root);
        // `todo` the components still to walk, last first.
        let mut done: Vec<std::ffi::OsString> = Vec::new();
        let mut todo: Vec<std::ffi::OsString> = components(Path::new(path));
        todo.reverse();
        let mut links = 0usize;
        while let Some(c) = todo.pop() {
            if c == ".." {
                done.pop();
                continue;
            }
            let mut candidate = self.root.clone();
            candidate.extend(done.iter());
            candidate.push(&c);
            let is_last = todo.is_empty();
            match fs::symlink_metadata(&candidate) {
                Ok(md) if md.file_type().is_symlink() && (follow_last || !is_last) => {
                    links += 1;
                    if links > MAX_SYMLINKS {
                        return Err(RootError::SymlinkLoop {
                            path: path.to_string(),
                        });
                    }
                    let target = fs::read_link(&candidate).map_err(|source| RootError::Io {
                        path: path.to_string(),
                        source,
                    })?;
                    if target.is_absolute() {
                        done.clear();
                    }
                    let mut more = components(&target);
                    more.reverse();
                    todo.extend(more);
                }
                Ok(_) => done.push(c),
                Err(e) if e.kind() == io::ErrorKind::NotFound && is_last => done.push(c),
                Err(source) => {
                    return Err(RootError::Io {
                        path: path.to_string(),
                        source,
                    });
                }
            }
        }
        let mut out = self.root.clone();
        out.extend(done.iter());
        Ok(out)
    }

    /// Metadata of `path` (symlinks followed inside the root).
    pub fn metadata(&self, path: &str) -> Result<fs::Metadata, RootError> {
        let p = self.resolve(path)?;
        fs::metadata(&p).map_err(|source| RootError::Io {
            path: path.to_string(),
            source,
        })
    }

    /// Metadata of `path` itself, not following a final symlink.
    pub fn symlink_metadata(&self, path: &str) -> Result<fs::Metadata, RootError> {
        let p = self.resolve_nofollow(path)?;
        fs::symlink_metadata(&p).map_err(|source| RootError::Io {
            path: path.to_string(),
            source,
        })
    }

    /// The whole content of a file, refusing files over [`MAX_FILE_BYTES`].
    pub fn read(&self, path: &str) -> Result<Vec<u8>, RootError> {
        let p = self.resolve(path)?;
        let io_err = |source| RootError::Io {
            path: path.to_string(),
            source,
        };
        let file = fs::File::open(&p).map_err(io_err)?;
        let mut buf = Vec::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(io_err)?;
        if buf.len() as u64 > MAX_FILE_BYTES {
            return Err(RootError::TooLarge {
                path: path.to_string(),
            });
        }
        Ok(buf)
    }

    /// The content as text; invalid UTF-8 is replaced, never fatal.
    pub fn read_to_string(&self, path: &str) -> Result<String, RootError> {
        self.read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The names in a directory, sorted; symlinks in `path` resolved inside the root.
    pub fn read_dir(&self, path: &str) -> Result<Vec<String>, RootError> {
        let p = self.resolve(path)?;
        let io_err = |source| RootError::Io {
            path: path.to_string(),
            source,
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&p).map_err(io_err)? {
            let entry = entry.map_err(io_err)?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// The target of a symlink, as stored (not resolved).
    pub fn read_link(&self, path: &str) -> Result<PathBuf, RootError> {
        let p = self.resolve_nofollow(path)?;
        fs::read_link(&p).map_err(|source| RootError::Io {
            path: path.to_string(),
            source,
        })
    }
}

fn components(p: &Path) -> Vec<std::ffi::OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// The longest hostname DNS allows; anything longer in a file is cut.
const MAX_HOSTNAME: usize = 253;

/// The host's name: the root's `/etc/hostname` for an image, the kernel's
/// (`/proc/sys/kernel/hostname`) for the running system. Never fails:
/// `unknown` when neither can be read.
pub fn hostname(fs: &RootFs) -> String {
    let sources: &[&str] = if fs.is_live() {
        &["/proc/sys/kernel/hostname", "/etc/hostname"]
    } else {
        &["/etc/hostname"]
    };
    sources
        .iter()
        .filter_map(|p| fs.read_to_string(p).ok())
        .filter_map(|text| clean_hostname(&text))
        .next()
        .unwrap_or_else(|| "unknown".to_string())
}

/// The first non-comment line, without control characters, at most 253 characters.
fn clean_hostname(text: &str) -> Option<String> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let clean: String = line
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_HOSTNAME)
        .collect();
    (!clean.is_empty()).then_some(clean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("usr/share")).unwrap();
        fs::write(root.join("usr/share/motd"), "inside").unwrap();
        symlink("/usr/share/motd", root.join("etc/motd")).unwrap();
        symlink("../../../../../../etc/hostname", root.join("etc/escape")).unwrap();
        let fs = RootFs::new(root);
        assert_eq!(fs.read_to_string("/etc/motd").unwrap(), "inside");
        assert_eq!(
            fs.resolve("/etc/escape").unwrap(),
            root.join("etc/hostname")
        );
        assert!(!fs.is_live());
    }

    #[test]
    fn symlink_loops_are_an_error_not_a_hang() {
        let dir = tempfile::tempdir().unwrap();
        symlink("b", dir.path().join("a")).unwrap();
        symlink("a", dir.path().join("b")).unwrap();
        let fs = RootFs::new(dir.path());
        assert!(matches!(fs.read("/a"), Err(RootError::SymlinkLoop { .. })));
    }

    #[test]
    fn missing_files_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let fs = RootFs::new(dir.path());
        assert!(fs.read("/etc/nothing").unwrap_err().is_not_found());
    }

    #[test]
    fn hostname_comes_from_the_image_and_is_cleaned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fs = RootFs::new(dir.path());
        assert_eq!(hostname(&fs), "unknown");
        std::fs::create_dir_all(dir.path().join("etc")).expect("mkdir");
        std::fs::write(
            dir.path().join("etc/hostname"),
            "# comment\n\n  web-1\u{1b}[31m \nother\n",
        )
        .expect("write");
        assert_eq!(hostname(&fs), "web-1[31m");
    }
}
