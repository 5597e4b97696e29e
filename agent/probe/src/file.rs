//! Metadata and content of single paths below the root, with owner and group
//! names taken from the root's own account files.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hardend_facts::{FileFact, FileKind, FileStat, ProbeFailure, Probed, Source};

use crate::{RootError, RootFs, accounts};

/// Errors of probing one path.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot stat {path}: {source}")]
    Stat { path: String, source: RootError },
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: RootError },
    #[error("cannot resolve the owner of {path}: {source}")]
    Names { path: String, source: RootError },
}

/// Reads the metadata of `path` (root-relative), following a final symlink
/// unless it dangles, and its lines when `content` is true and it is a regular
/// file. A path that does not exist is `Ok` with no `stat`.
pub fn probe(fs: &RootFs, path: &str, content: bool) -> Probed<FileFact> {
    probe_inner(fs, path, content).map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The parent directory (files are often replaced by rename) and the path;
/// when the path leads through symlinks, also the resolved target and its
/// directory, so a change to the file a link points to is seen too.
pub fn sources(fs: &RootFs, path: &str) -> Vec<Source> {
    let mut out = Vec::new();
    let mut add = |p: std::path::PathBuf| {
        let s = Source::Path(p);
        if !out.contains(&s) {
            out.push(s);
        }
    };
    let parent = Path::new(path)
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("/");
    add(fs.host_path(parent));
    add(fs.host_path(path));
    if let Ok(resolved) = fs.resolve(path)
        && resolved != fs.host_path(path)
    {
        if let Some(dir) = resolved.parent()
            && dir.starts_with(fs.root())
        {
            add(dir.to_path_buf());
        }
        add(resolved);
    }
    out
}

/// True when an error means "there is no such path": a missing component, a
/// component that is not a directory, or a symlink loop (as `test -e` sees it).
fn is_absent(e: &RootError) -> bool {
    match e {
        RootError::Io { source, .. } => matches!(
            source.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        ),
        RootError::SymlinkLoop { .. } => true,
        RootError::TooLarge { .. } => false,
    }
}

fn probe_inner(fs: &RootFs, path: &str, content: bool) -> Result<FileFact, FileError> {
    let absent = FileFact {
        path: path.to_string(),
        stat: None,
        lines: None,
    };
    let lmd = match fs.symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if is_absent(&e) => return Ok(absent),
        Err(source) => {
            return Err(FileError::Stat {
                path: path.to_string(),
                source,
            });
        }
    };
    // A symlink is described by what it points to, unless it points nowhere.
    let md = if lmd.file_type().is_symlink() {
        match fs.metadata(path) {
            Ok(md) => md,
            Err(e) if is_absent(&e) => lmd,
            Err(source) => {
                return Err(FileError::Stat {
                    path: path.to_string(),
                    source,
                });
            }
        }
    } else {
        lmd
    };
    let ft = md.file_type();
    let kind = if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_dir() {
        FileKind::Directory
    } else {
        FileKind::Other
    };
    let names_err = |source| FileError::Names {
        path: path.to_string(),
        source,
    };
    let owner = match fs.read_to_string(accounts::PASSWD) {
        Ok(t) => accounts::user_name(&t, md.uid()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(names_err(e)),
    };
    let group = match fs.read_to_string(accounts::GROUP) {
        Ok(t) => accounts::group_name(&t, md.gid()),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(names_err(e)),
    };
    let lines = (content && kind == FileKind::File).then(|| {
        fs.read(path)
            .map(|bytes| {
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
            .map_err(|source| {
                ProbeFailure::new(
                    FileError::Read {
                        path: path.to_string(),
                        source,
                    }
                    .to_string(),
                )
            })
    });
    Ok(FileFact {
        path: path.to_string(),
        stat: Some(FileStat {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            owner,
            group,
        }),
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_the_parent_and_the_path() {
        let fs = RootFs::new("/srv/img");
        assert_eq!(
            sources(&fs, "/etc/shadow"),
            vec![
                Source::Path("/srv/img/etc".into()),
                Source::Path("/srv/img/etc/shadow".into())
            ]
        );
        assert_eq!(sources(&fs, "/"), vec![Source::Path("/srv/img".into())]);
    }

    #[test]
    fn sources_follow_symlinks_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::create_dir_all(r.join("usr/share/zoneinfo")).unwrap();
        std::os::unix::fs::symlink("/usr/share/zoneinfo/UTC", r.join("etc/localtime")).unwrap();
        let fs = RootFs::new(r);
        assert_eq!(
            sources(&fs, "/etc/localtime"),
            vec![
                Source::Path(r.join("etc")),
                Source::Path(r.join("etc/localtime")),
                Source::Path(r.join("usr/share/zoneinfo")),
                Source::Path(r.join("usr/share/zoneinfo/UTC")),
            ]
        );
    }
}
