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

/// The parent directory (files are often replaced by rename) and the path.
pub fn sources(fs: &RootFs, path: &str) -> Vec<Source> {
    let parent = Path::new(path)
        .parent()
        .and_then(Path::to_str)
        .unwrap_or("/");
    let mut out = vec![Source::Path(fs.host_path(parent))];
    let own = fs.host_path(path);
    if !out.contains(&Source::Path(own.clone())) {
        out.push(Source::Path(own));
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
}
