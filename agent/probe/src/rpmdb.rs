//! The rpm sqlite database (`rpmdb.sqlite`, rpm 4.16 and later) below the
//! root: choosing how to open it without writing to it, and parsing the rpm
//! header blobs of its `Packages` table.
//!
//! A header blob is big-endian: the index entry count and the data length
//! (4 bytes each), the index entries (16 bytes each: tag, type, offset into
//! the data, count), then the data store. Every count, offset and string is
//! bounds-checked against the blob; a header that does not add up is an
//! error for the whole database, never a guess.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use hardend_facts::rpmver::{self, RpmVersion};
use hardend_facts::{Evidence, Package, PackageFormat, PackagesFact};

use crate::sqlite::{self, Connection, OpenMode};
use crate::{RootError, RootFs};

/// rpm's own limits (`hdrchkTags`, `hdrchkData`): fewer than 65536 index
/// entries and less than 16 MiB of data.
pub const MAX_INDEX_ENTRIES: u32 = 0xffff;
pub const MAX_DATA_BYTES: u32 = 0x00ff_ffff;

/// Databases with more rows than this are refused (a large host has a few
/// thousand packages).
pub const MAX_PACKAGES: usize = 200_000;

/// The longest NAME, VERSION, RELEASE or ARCH string read.
pub const MAX_STRING_BYTES: usize = 4096;

/// Header tags read (rpmtag.h).
pub const TAG_NAME: u32 = 1000;
pub const TAG_VERSION: u32 = 1001;
pub const TAG_RELEASE: u32 = 1002;
pub const TAG_EPOCH: u32 = 1003;
pub const TAG_ARCH: u32 = 1022;

/// Header data types (rpmtag.h).
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

/// What is wrong with one header blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header is {len} bytes, shorter than its 8-byte preamble")]
    TooShort { len: usize },
    #[error("header claims {count} index entries (rpm allows at most {MAX_INDEX_ENTRIES})")]
    TooManyEntries { count: u32 },
    #[error("header claims {bytes} bytes of data (rpm allows at most {MAX_DATA_BYTES})")]
    TooMuchData { bytes: u32 },
    #[error("header is {len} bytes but its index and data need {expected}")]
    LengthMismatch { len: usize, expected: usize },
    #[error("header has no {tag} tag")]
    Missing { tag: &'static str },
    #[error("header tag {tag}: {reason}")]
    BadEntry { tag: u32, reason: &'static str },
}

/// Errors of reading the rpm database.
#[derive(Debug, thiserror::Error)]
pub enum RpmdbError {
    #[error(
        "{path} resolves to {resolved}, which does not exist inside the root (a symlink out of the root is not followed)"
    )]
    Dangling { path: String, resolved: String },
    #[error("{path}: not a regular file")]
    NotAFile { path: String },
    #[error("{path}: a symlink; refused (SQLite would follow it out of the root)")]
    SymlinkSidecar { path: String },
    #[error(
        "{path}-wal holds unmerged transactions but {path}-shm is missing; reading it would make SQLite create files in the database directory"
    )]
    WalWithoutShm { path: String },
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Root(#[from] RootError),
    #[error("rpm database {0}")]
    Sqlite(#[from] sqlite::SqliteError),
    #[error("{path}: Packages row {hnum}: {source}")]
    Header {
        path: String,
        hnum: i64,
        source: HeaderError,
    },
    #[error("{path}: Packages row {hnum}: the blob column is not a blob")]
    NotABlob { path: String, hnum: i64 },
    #[error("{path}: more than {MAX_PACKAGES} packages")]
    TooManyPackages { path: String },
}

/// One index entry of a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    tag: u32,
    kind: u32,
    offset: u32,
    count: u32,
}

/// A header blob whose preamble and length were checked.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    index: &'a [u8],
    data: &'a [u8],
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

impl<'a> Header<'a> {
    /// Checks the preamble against rpm's limits and the blob's length.
    pub fn parse(blob: &'a [u8]) -> Result<Header<'a>, HeaderError> {
        let too_short = HeaderError::TooShort { len: blob.len() };
        let count = be32(blob, 0).ok_or(too_short.clone())?;
        let bytes = be32(blob, 4).ok_or(too_short)?;
        if count > MAX_INDEX_ENTRIES {
            return Err(HeaderError::TooManyEntries { count });
        }
        if bytes > MAX_DATA_BYTES {
            return Err(HeaderError::TooMuchData { bytes });
        }
        // Both are bounded above, so this cannot overflow.
        let index_len = count as usize * 16;
        let expected = 8 + index_len + bytes as usize;
        if blob.len() != expected {
            return Err(HeaderError::LengthMismatch {
                len: blob.len(),
                expected,
            });
        }
        Ok(Header {
            index: blob.get(8..8 + index_len).unwrap_or_default(),
            data: blob.get(8 + index_len..).unwrap_or_default(),
        })
    }

    /// The last index entry for `tag` (entries added after a region
    /// replace the region's own).
    fn entry(&self, tag: u32) -> Option<Entry> {
        self.index
            .chunks_exact(16)
            .rev()
            .filter_map(|e| {
                Some(Entry {
                    tag: be32(e, 0)?,
                    kind: be32(e, 4)?,
                    offset: be32(e, 8)?,
                    count: be32(e, 12)?,
                })
            })
            .find(|e| e.tag == tag)
    }

    /// The (first) string of `tag`, or `None` when the header has no such tag.
    pub fn string(&self, tag: u32) -> Result<Option<&'a str>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let bad = |reason| HeaderError::BadEntry { tag, reason };
        if !matches!(e.kind, TYPE_STRING | TYPE_STRING_ARRAY | TYPE_I18NSTRING) {
            return Err(bad("not a string"));
        }
        if e.count == 0 {
            return Err(bad("no value"));
        }
        let start = e.offset as usize;
        let rest = self
            .data
            .get(start..)
            .ok_or(bad("offset beyond the data"))?;
        let window = rest.get(..MAX_STRING_BYTES + 1).unwrap_or(rest);
        let nul = window
            .iter()
            .position(|b| *b == 0)
            .ok_or(bad("string not terminated within the data or too long"))?;
        let bytes = window.get(..nul).unwrap_or_default();
        std::str::from_utf8(bytes)
            .map(Some)
            .map_err(|_| bad("string is not UTF-8"))
    }

    /// The (first) 32-bit integer of `tag`, or `None` when the header has no such tag.
    pub fn int32(&self, tag: u32) -> Result<Option<u32>, HeaderError> {
        let Some(e) = self.entry(tag) else {
            return Ok(None);
        };
        let bad = |reason| HeaderError::BadEntry { tag, reason };
        if e.kind != TYPE_INT32 {
            return Err(bad("not a 32-bit integer"));
        }
        if e.count == 0 {
            return Err(bad("no value"));
        }
        be32(self.data, e.offset as usize)
            .map(Some)
            .ok_or(bad("offset beyond the data"))
    }
}

/// The package a header describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmPackage {
    pub name: String,
    pub epoch: Option<u32>,
    pub version: String,
    pub release: String,
    /// `None` for pseudo-packages such as `gpg-pubkey`.
    pub arch: Option<String>,
}

impl RpmPackage {
    /// `[epoch:]version-release`.
    pub fn evr(&self) -> String {
        RpmVersion::display(self.epoch, &self.version, &self.release)
    }
}

/// Reads NAME, EPOCH, VERSION, RELEASE and ARCH from a header blob.
pub fn parse_header(blob: &[u8]) -> Result<RpmPackage, HeaderError> {
    let h = Header::parse(blob)?;
    let required = |tag, name| match h.string(tag)? {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        _ => Err(HeaderError::Missing { tag: name }),
    };
    Ok(RpmPackage {
        name: required(TAG_NAME, "NAME")?,
        version: required(TAG_VERSION, "VERSION")?,
        release: required(TAG_RELEASE, "RELEASE")?,
        epoch: h.int32(TAG_EPOCH)?,
        arch: h.string(TAG_ARCH)?.map(str::to_string),
    })
}

/// The installed packages by name: of several versions of one name
/// (kernels, or several architectures), the newest by rpm's ordering, the
/// first row on a tie.
pub fn installed_packages(
    rows: Vec<(i64, RpmPackage)>,
    db_path: &str,
) -> BTreeMap<String, Package> {
    let mut out: BTreeMap<String, (String, Package)> = BTreeMap::new();
    for (hnum, p) in rows {
        let evr = p.evr();
        let text = match &p.arch {
            Some(arch) => format!("Packages row {hnum}: {}-{evr}.{arch}", p.name),
            None => format!("Packages row {hnum}: {}-{evr}", p.name),
        };
        let newer = out
            .get(&p.name)
            .is_none_or(|(kept, _)| rpmver::compare(&evr, kept).is_gt());
        if newer {
            let package = Package {
                name: p.name.clone(),
                version: evr.clone(),
                evidence: Evidence::text(db_path, text),
            };
            out.insert(p.name, (evr, package));
        }
    }
    out.into_iter().map(|(k, (_, p))| (k, p)).collect()
}

/// A regular file's metadata, `None` when it does not exist.
fn sidecar(path: &Path, shown: &str) -> Result<Option<fs::Metadata>, RpmdbError> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_symlink() => Err(RpmdbError::SymlinkSidecar {
            path: shown.to_string(),
        }),
        Ok(md) if !md.is_file() => Err(RpmdbError::NotAFile {
            path: shown.to_string(),
        }),
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RpmdbError::Io {
            path: shown.to_string(),
            source,
        }),
    }
}

/// True when the SQLite file header says write-ahead-log mode (read and
/// write versions 2).
fn is_wal_mode(path: &Path, shown: &str) -> Result<bool, RpmdbError> {
    let mut head = [0u8; 20];
    let io_err = |source| RpmdbError::Io {
        path: shown.to_string(),
        source,
    };
    let mut file = fs::File::open(path).map_err(io_err)?;
    let mut got = 0;
    while got < head.len() {
        match file.read(head.get_mut(got..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    Ok(got == head.len() && head[18] == 2 && head[19] == 2)
}

/// How to open the database so that nothing is created or written next to
/// it: with locks and the write-ahead log when rpm's `-wal` and `-shm` are
/// both there; as an immutable file when there is no log content to read;
/// refused when log content is there without its index.
pub fn open_mode(db: &Path, shown: &str) -> Result<OpenMode, RpmdbError> {
    let with = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    let wal = sidecar(&with("-wal"), &format!("{shown}-wal"))?;
    let shm = sidecar(&with("-shm"), &format!("{shown}-shm"))?;
    match (wal, shm) {
        (Some(_), Some(_)) => Ok(OpenMode::ReadOnlyShared),
        (Some(w), None) if w.len() > 0 => Err(RpmdbError::WalWithoutShm {
            path: shown.to_string(),
        }),
        // No log content. A rollback-journal database is read with its
        // locks (SQLite creates nothing for it); a WAL-mode one without its
        // files is complete in the main file, and only immutable mode reads
        // it without creating `-wal` and `-shm`.
        _ if is_wal_mode(db, shown)? => Ok(OpenMode::Immutable),
        _ => Ok(OpenMode::ReadOnlyShared),
    }
}

/// Reads the installed packages from the sqlite rpmdb at `path` (relative
/// to the root; symlinks are resolved inside it).
pub fn read(fs: &RootFs, path: &str) -> Result<PackagesFact, RpmdbError> {
    let packages = read_rows(fs, path)?;
    Ok(PackagesFact {
        installed: installed_packages(packages, path),
        databases: vec![path.to_string()],
        format: PackageFormat::Rpm,
    })
}

/// Every header of the sqlite rpmdb at `path` with its row number, in row
/// order: several versions and architectures of one name included.
pub fn read_rows(fs: &RootFs, path: &str) -> Result<Vec<(i64, RpmPackage)>, RpmdbError> {
    let shown = path.to_string();
    let dangling = |resolved: String| RpmdbError::Dangling {
        path: shown.clone(),
        resolved,
    };
    let host = match fs.resolve(path) {
        Ok(host) => host,
        // A directory on the way is missing (`symlink_metadata` found the
        // database's own name, so a symlink led there).
        Err(e) if e.is_not_found() => {
            let target = fs.read_link(path).map_or_else(
                |_| "a missing directory".to_string(),
                |t| t.display().to_string(),
            );
            return Err(dangling(target));
        }
        Err(e) => return Err(e.into()),
    };
    match fs::symlink_metadata(&host) {
        Ok(md) if md.is_file() => {}
        Ok(_) => return Err(RpmdbError::NotAFile { path: shown }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(dangling(host.display().to_string()));
        }
        Err(source) => {
            return Err(RpmdbError::Io {
                path: shown,
                source,
            });
        }
    }
    let mode = open_mode(&host, &shown)?;
    let conn = Connection::open(&host, mode)?;
    let mut rows = conn.query(c"SELECT hnum, blob FROM Packages")?;
    let mut packages = Vec::new();
    while let Some(row) = rows.next_row()? {
        if packages.len() >= MAX_PACKAGES {
            return Err(RpmdbError::TooManyPackages { path: shown });
        }
        let hnum = row.int64(0);
        let blob = row.blob(1).ok_or_else(|| RpmdbError::NotABlob {
            path: shown.clone(),
            hnum,
        })?;
        let package = parse_header(blob).map_err(|source| RpmdbError::Header {
            path: shown.clone(),
            hnum,
            source,
        })?;
        packages.push((hnum, package));
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header blob with these (tag, type, value) entries, strings
    /// NUL-terminated and integers big-endian.
    pub(crate) fn header(entries: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let mut index = Vec::new();
        let mut data = Vec::new();
        for (tag, kind, value) in entries {
            for n in [*tag, *kind, data.len() as u32, 1] {
                index.extend_from_slice(&n.to_be_bytes());
            }
            data.extend_from_slice(value);
        }
        let mut blob = Vec::new();
        blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
        blob.extend(index);
        blob.extend(data);
        blob
    }

    fn sample() -> Vec<u8> {
        header(&[
            (TAG_NAME, TYPE_STRING, b"openssl\0"),
            (TAG_EPOCH, TYPE_INT32, &1u32.to_be_bytes()),
            (TAG_VERSION, TYPE_STRING, b"3.0.7\0"),
            (TAG_RELEASE, TYPE_STRING, b"25.el9\0"),
            (TAG_ARCH, TYPE_STRING, b"x86_64\0"),
        ])
    }

    #[test]
    fn reads_name_epoch_version_release_arch() {
        let p = parse_header(&sample()).expect("parse");
        assert_eq!(p.name, "openssl");
        assert_eq!(p.epoch, Some(1));
        assert_eq!(p.evr(), "1:3.0.7-25.el9");
        assert_eq!(p.arch.as_deref(), Some("x86_64"));
    }

    #[test]
    fn truncated_and_inconsistent_headers_are_errors() {
        let blob = sample();
        for cut in [0, 3, 7, 8, 20, blob.len() - 1] {
            assert!(
                parse_header(blob.get(..cut).expect("cut")).is_err(),
                "cut at {cut}"
            );
        }
        let mut huge = blob.clone();
        huge[0..4].copy_from_slice(&0x0001_0000u32.to_be_bytes());
        assert_eq!(
            parse_header(&huge),
            Err(HeaderError::TooManyEntries { count: 0x10000 })
        );
        // An offset past the data.
        let mut far = blob.clone();
        far[8 + 8..8 + 12].copy_from_slice(&1000u32.to_be_bytes());
        assert!(matches!(
            parse_header(&far),
            Err(HeaderError::BadEntry {
                tag: TAG_NAME,
                reason: "offset beyond the data"
            })
        ));
        // A string without its NUL at the end of the data.
        let open = header(&[
            (TAG_VERSION, TYPE_STRING, b"1\0"),
            (TAG_RELEASE, TYPE_STRING, b"1\0"),
            (TAG_NAME, TYPE_STRING, b"x"),
        ]);
        assert!(matches!(
            parse_header(&open),
            Err(HeaderError::BadEntry { tag: TAG_NAME, .. })
        ));
        // Wrong types.
        let typed = header(&[
            (TAG_NAME, TYPE_INT32, &[0, 0, 0, 1]),
            (TAG_VERSION, TYPE_STRING, b"1\0"),
            (TAG_RELEASE, TYPE_STRING, b"1\0"),
        ]);
        assert!(matches!(
            parse_header(&typed),
            Err(HeaderError::BadEntry {
                reason: "not a string",
                ..
            })
        ));
        let no_name = header(&[(TAG_VERSION, TYPE_STRING, b"1\0")]);
        assert_eq!(
            parse_header(&no_name),
            Err(HeaderError::Missing { tag: "NAME" })
        );
    }

    #[test]
    fn the_newest_of_several_versions_is_kept() {
        let pkg = |epoch, version: &str, arch: &str| RpmPackage {
            name: "kernel-core".into(),
            epoch,
            version: version.into(),
            release: "1".into(),
            arch: Some(arch.into()),
        };
        let rows = vec![
            (1, pkg(None, "6.5.0", "x86_64")),
            (2, pkg(None, "6.10.0", "x86_64")),
            (3, pkg(None, "6.9.0", "x86_64")),
        ];
        let got = installed_packages(rows, "/var/lib/rpm/rpmdb.sqlite");
        let k = &got["kernel-core"];
        assert_eq!(k.version, "6.10.0-1");
        assert_eq!(
            k.evidence.text.as_deref(),
            Some("Packages row 2: kernel-core-6.10.0-1.x86_64")
        );
    }

    mod props {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(blob in vec(any::<u8>(), 0..600)) {
                let _ = parse_header(&blob);
            }

            /// A consistent preamble over random index entries and data: the
            /// offsets, types and counts are all hostile.
            #[test]
            fn random_index_entries_never_panic(
                entries in vec((prop_oneof![Just(TAG_NAME), Just(TAG_VERSION), Just(TAG_RELEASE),
                    Just(TAG_EPOCH), Just(TAG_ARCH), any::<u32>()], 0u32..12, any::<u32>(), any::<u32>()), 0..12),
                data in vec(any::<u8>(), 0..256),
            ) {
                let mut blob = Vec::new();
                blob.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                blob.extend_from_slice(&(data.len() as u32).to_be_bytes());
                for (tag, kind, offset, count) in &entries {
                    for n in [*tag, *kind, offset % 300, *count] {
                        blob.extend_from_slice(&n.to_be_bytes());
                    }
                }
                blob.extend_from_slice(&data);
                let _ = parse_header(&blob);
            }

            /// One byte of a good header changed, or the header cut short.
            #[test]
            fn mutated_headers_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(),
                                           cut in any::<prop::sample::Index>()) {
                let mut blob = sample();
                let i = at.index(blob.len());
                blob[i] = byte;
                let _ = parse_header(&blob);
                let _ = parse_header(&blob[..cut.index(blob.len())]);
            }

            #[test]
            fn well_formed_headers_read_back(
                name in "[a-zA-Z0-9._+-]{1,40}",
                version in "[a-zA-Z0-9._+~^]{1,20}",
                release in "[a-zA-Z0-9._+~^]{1,20}",
                epoch in proptest::option::of(any::<u32>()),
            ) {
                let z = |s: &str| [s.as_bytes(), b"\0"].concat();
                let (n, v, r) = (z(&name), z(&version), z(&release));
                let e = epoch.map(u32::to_be_bytes);
                let mut entries: Vec<(u32, u32, &[u8])> =
                    vec![
                        (TAG_NAME, TYPE_STRING, n.as_slice()),
                        (TAG_VERSION, TYPE_STRING, v.as_slice()),
                        (TAG_RELEASE, TYPE_STRING, r.as_slice()),
                    ];
                if let Some(e) = &e {
                    entries.push((TAG_EPOCH, TYPE_INT32, e.as_slice()));
                }
                let p = parse_header(&header(&entries)).expect("well formed");
                prop_assert_eq!(p, RpmPackage { name, epoch, version, release, arch: None });
            }
        }
    }
}
