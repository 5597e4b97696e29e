//! Pending security updates: the installed packages (dpkg status) against
//! the package lists of security suites in `/var/lib/apt/lists`; on a root
//! with rpm's database instead, `rpm` compares them with dnf's cached
//! security advisories.
//!
//! Only files are read, never apt itself, so an offline root works. A
//! `*_Packages` list belongs to the `*_Release` or `*_InRelease` file whose
//! name is its longest prefix (apt names both after the same URI); the
//! Release file says whether the suite is a security suite (`Suite:` or
//! `Codename:` ending in `-security`, or `Label: Debian-Security`). Parsed
//! lists are cached by path, size, modification time and inode, so an
//! evaluation whose lists did not change parses nothing.

pub mod cache;
pub mod rpm;
pub mod updateinfo;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, LazyLock};

use hardend_facts::posture::{PatchesFact, PendingUpdate};
use hardend_facts::{Evidence, PackageFormat, ProbeFailure, Probed, Source};

use crate::dpkgver;
use crate::package::{self, DPKG_STATUS, DPKG_UPDATES, DpkgRecord};
use crate::{RootError, RootFs};
use cache::{Stamp, StampCache};

/// Where apt keeps the downloaded package lists, relative to the root.
pub const APT_LISTS: &str = "/var/lib/apt/lists";

/// Errors of reading the package database, the apt lists and dnf's
/// repository metadata.
#[derive(Debug, thiserror::Error)]
pub enum PatchesError {
    #[error("no package database under the root (neither {DPKG_STATUS} nor rpm's rpmdb.sqlite)")]
    NoDatabase,
    /// rpm's database is of a format hardend does not read.
    #[error(transparent)]
    RpmDatabase(#[from] crate::package::PackageError),
    #[error(transparent)]
    Rpm(#[from] crate::rpmdb::RpmdbError),
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: RootError },
    #[error("cannot read {path}: {reason}")]
    List { path: String, reason: String },
}

/// The largest list accepted once decompressed: security suites' lists are
/// a few megabytes, and a hostile file must not exhaust memory.
pub const MAX_LIST_BYTES: u64 = 256 * 1024 * 1024;

/// How a `*_Packages` list or an `updateinfo.xml` is stored, from its
/// file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Lz4,
    Zstd,
    Xz,
    /// Compressions apt or dnf use that this probe does not read.
    Unsupported(&'static str),
}

impl Compression {
    /// A file's compression by its suffix, and its name without the suffix.
    pub fn of_file(name: &str) -> (Compression, &str) {
        const SUFFIXES: [(&str, Compression); 6] = [
            (".gz", Compression::Gzip),
            (".lz4", Compression::Lz4),
            (".zst", Compression::Zstd),
            (".xz", Compression::Xz),
            (".bz2", Compression::Unsupported("bzip2")),
            (".zck", Compression::Unsupported("zchunk")),
        ];
        SUFFIXES
            .iter()
            .find_map(|(suffix, c)| Some((*c, name.strip_suffix(suffix)?)))
            .unwrap_or((Compression::None, name))
    }

    /// The list's compression and its name without the compression suffix;
    /// `None` when the name is not a `*_Packages` list.
    pub fn of(name: &str) -> Option<(Compression, &str)> {
        let (c, base) = Compression::of_file(name);
        base.ends_with("_Packages").then_some((c, base))
    }
}

/// A writer into a vector that refuses to grow past [`MAX_LIST_BYTES`] + 1
/// bytes (for decoders that write rather than read).
struct Capped<'a>(&'a mut Vec<u8>);

impl io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let cap = usize::try_from(MAX_LIST_BYTES + 1).unwrap_or(usize::MAX);
        let room = cap.saturating_sub(self.0.len());
        if room == 0 {
            return Err(io::Error::other("decompressed size limit reached"));
        }
        let n = buf.len().min(room);
        self.0.extend_from_slice(buf.get(..n).unwrap_or_default());
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why a decompressed file is refused for its size.
fn too_large() -> String {
    format!("the file is larger than {MAX_LIST_BYTES} bytes once decompressed")
}

/// Why a compressed file could not be decompressed.
fn corrupt(e: impl std::fmt::Display) -> String {
    format!("corrupt compressed file: {e}")
}

/// A reader of the file's decompressed text, for parsing it as it is
/// decompressed; the caller caps how much it reads. xz, whose decoder
/// writes rather than reads, is decompressed whole (capped) first.
pub fn decompressing<'a>(
    data: &'a [u8],
    compression: Compression,
) -> Result<Box<dyn io::Read + 'a>, String> {
    Ok(match compression {
        Compression::None => Box::new(data),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        // One frame, with the decoder's default window limit (a hostile
        // frame cannot ask for gigabytes of window).
        Compression::Zstd => {
            Box::new(ruzstd::decoding::StreamingDecoder::new(data).map_err(corrupt)?)
        }
        Compression::Xz => {
            let mut out = Vec::new();
            let mut input = data;
            let result = lzma_rs::xz_decompress(&mut input, &mut Capped(&mut out));
            if out.len() as u64 > MAX_LIST_BYTES {
                return Err(too_large());
            }
            result.map_err(corrupt)?;
            Box::new(io::Cursor::new(out))
        }
        Compression::Unsupported(format) => {
            return Err(format!(
                "the file is compressed with {format}, which hardend does not read"
            ));
        }
    })
}

/// The file's text, decompressed and capped at [`MAX_LIST_BYTES`].
pub fn decompress(data: &[u8], compression: Compression) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if compression == Compression::None {
        return Ok(data.to_vec());
    }
    let mut out = Vec::new();
    let result = decompressing(data, compression)?
        .take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut out);
    if out.len() as u64 > MAX_LIST_BYTES {
        return Err(too_large());
    }
    result.map_err(corrupt)?;
    Ok(out)
}

/// Parses an `updateinfo` file as it is decompressed (its text is never
/// whole in memory), keeping the packages whose names `keep` accepts.
pub fn parse_updateinfo_file(
    data: &[u8],
    compression: Compression,
    keep: impl Fn(&str) -> bool,
) -> Result<updateinfo::SecurityPackages, String> {
    use std::io::Read;
    let reader = decompressing(data, compression)?.take(MAX_LIST_BYTES + 1);
    let mut input = updateinfo::LineCounter::new(io::BufReader::with_capacity(64 * 1024, reader));
    let parsed = updateinfo::parse_updateinfo_from(&mut input, keep);
    if input.consumed() > MAX_LIST_BYTES {
        return Err(too_large());
    }
    if let Some(e) = input.failed() {
        return Err(corrupt(e));
    }
    parsed.map_err(|e| e.to_string())
}

/// One package version offered by a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub architecture: String,
    pub version: String,
    /// The line of the stanza's `Package:` field.
    pub line: u32,
}

/// A parsed `*_Packages` list: the newest version per name and architecture.
#[derive(Debug, Default)]
pub struct PackageList {
    pub by_name: HashMap<String, Vec<ListEntry>>,
}

/// What a `Release`/`InRelease` file says about its suite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    pub suite: Option<String>,
    pub codename: Option<String>,
    pub label: Option<String>,
    pub origin: Option<String>,
}

impl ReleaseInfo {
    /// True for a suite that carries security updates.
    pub fn is_security(&self) -> bool {
        let ends = |v: &Option<String>| v.as_deref().is_some_and(|s| s.ends_with("-security"));
        ends(&self.suite)
            || ends(&self.codename)
            || self
                .label
                .as_deref()
                .is_some_and(|l| l.eq_ignore_ascii_case("Debian-Security"))
    }

    /// The suite's name for evidence.
    pub fn name(&self) -> String {
        self.suite
            .clone()
            .or_else(|| self.codename.clone())
            .or_else(|| self.label.clone())
            .unwrap_or_else(|| "unnamed suite".to_string())
    }
}

static LISTS: LazyLock<StampCache<Result<PackageList, String>>> =
    LazyLock::new(StampCache::default);
static RELEASES: LazyLock<StampCache<ReleaseInfo>> = LazyLock::new(StampCache::default);
static STATUS: LazyLock<StampCache<Vec<DpkgRecord>>> = LazyLock::new(StampCache::default);
static LIST_PARSES: AtomicU64 = AtomicU64::new(0);

/// How many `*_Packages` lists this process has parsed (not served from the
/// cache); tests use it to see the cache work.
pub fn list_parses() -> u64 {
    LIST_PARSES.load(AtomicOrdering::Relaxed)
}

/// Reads the pending security updates under the root.
pub fn probe(fs: &RootFs) -> Probed<PatchesFact> {
    probe_inner(fs).map_err(|e| ProbeFailure::new(e.to_string()))
}

/// The dpkg database and the apt lists directory, and rpm's database and
/// dnf's metadata caches (host paths): a root may gain either.
pub fn sources(fs: &RootFs) -> Vec<Source> {
    let mut out = vec![
        Source::Path(fs.host_path(package::DPKG_DIR)),
        Source::Path(fs.host_path(DPKG_UPDATES)),
        Source::Path(fs.host_path(APT_LISTS)),
    ];
    out.extend(rpm::sources(fs));
    out
}

fn is_absent(e: &RootError) -> bool {
    matches!(e, RootError::Io { source, .. }
        if matches!(source.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory))
}

fn read_err(path: &str) -> impl FnOnce(RootError) -> PatchesError + '_ {
    move |source| PatchesError::Read {
        path: path.to_string(),
        source,
    }
}

/// Reads a file through the cache: parsed again only when its stamp changed.
fn cached<T>(
    fs: &RootFs,
    cache: &StampCache<T>,
    path: &str,
    parse: impl FnOnce(&[u8]) -> T,
) -> Result<Arc<T>, RootError> {
    cached_where(fs, cache, path, |_| true, parse)
}

/// Like [`cached`], and parsed again when the cached value is not `valid`.
fn cached_where<T>(
    fs: &RootFs,
    cache: &StampCache<T>,
    path: &str,
    valid: impl FnOnce(&T) -> bool,
    parse: impl FnOnce(&[u8]) -> T,
) -> Result<Arc<T>, RootError> {
    let host = fs.resolve(path)?;
    let md = std::fs::metadata(&host).map_err(|source| RootError::Io {
        path: path.to_string(),
        source,
    })?;
    cache.get_or_load_where(&host, Stamp::of(&md), valid, || {
        fs.read(path).map(|b| parse(&b))
    })
}

/// The installed packages: (name, architecture) -> (version, evidence).
fn installed(fs: &RootFs) -> Result<BTreeMap<(String, String), String>, PatchesError> {
    let status = match cached(fs, &STATUS, DPKG_STATUS, |b| {
        // Kept in the cache: no room to grow.
        let mut records = package::parse_dpkg_status(b, DPKG_STATUS);
        records.shrink_to_fit();
        records
    }) {
        Ok(s) => s,
        Err(e) if is_absent(&e) => return Err(PatchesError::NoDatabase),
        Err(e) => return Err(read_err(DPKG_STATUS)(e)),
    };
    let mut records: Vec<&DpkgRecord> = status.iter().collect();
    // Pending records written while dpkg runs apply over the status file.
    let mut updates: Vec<(u64, String)> = match fs.read_dir(DPKG_UPDATES) {
        Ok(names) => names
            .into_iter()
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .filter_map(|n| Some((n.parse::<u64>().ok()?, n)))
            .collect(),
        Err(e) if is_absent(&e) => Vec::new(),
        Err(e) => return Err(read_err(DPKG_UPDATES)(e)),
    };
    updates.sort();
    let mut extra: Vec<DpkgRecord> = Vec::new();
    for (_, name) in updates {
        let path = format!("{DPKG_UPDATES}/{name}");
        match fs.read(&path) {
            Ok(data) => extra.extend(package::parse_dpkg_status(&data, &path)),
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(read_err(&path)(e)),
        }
    }
    records.extend(extra.iter());
    let mut out: BTreeMap<(String, String), Option<String>> = BTreeMap::new();
    for r in records {
        let key = (r.name.clone(), r.architecture.clone());
        out.insert(key, r.installed.then(|| r.version.clone()));
    }
    Ok(out.into_iter().filter_map(|(k, v)| Some((k, v?))).collect())
}

/// The lists of security suites under the root, with their suite names
/// and compression.
fn security_lists(fs: &RootFs) -> Result<Vec<(String, String, Compression)>, PatchesError> {
    let names = match fs.read_dir(APT_LISTS) {
        Ok(n) => n,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(read_err(APT_LISTS)(e)),
    };
    let mut releases: Vec<(String, ReleaseInfo)> = Vec::new();
    for name in &names {
        let Some(prefix) = name
            .strip_suffix("_InRelease")
            .or_else(|| name.strip_suffix("_Release"))
        else {
            continue;
        };
        let path = format!("{APT_LISTS}/{name}");
        match cached(fs, &RELEASES, &path, parse_release) {
            Ok(info) => releases.push((prefix.to_string(), (*info).clone())),
            // A list being replaced by apt: the next evaluation sees it.
            Err(e) if is_absent(&e) => {}
            Err(e) => return Err(read_err(&path)(e)),
        }
    }
    let mut out: Vec<(String, String, Compression)> = Vec::new();
    let mut bases: std::collections::HashSet<&str> = std::collections::HashSet::new();
    for name in &names {
        // One list per base name: the plain one sorts first and wins.
        let Some((compression, base)) = Compression::of(name) else {
            continue;
        };
        if !bases.insert(base) {
            continue;
        }
        let release = releases
            .iter()
            .filter(|(prefix, _)| {
                base.len() > prefix.len()
                    && base.starts_with(prefix.as_str())
                    && base.as_bytes().get(prefix.len()) == Some(&b'_')
            })
            .max_by_key(|(prefix, _)| prefix.len());
        if let Some((_, info)) = release
            && info.is_security()
        {
            out.push((format!("{APT_LISTS}/{name}"), info.name(), compression));
        }
    }
    Ok(out)
}

fn probe_inner(fs: &RootFs) -> Result<PatchesFact, PatchesError> {
    let installed = match installed(fs) {
        Err(PatchesError::NoDatabase) => return rpm::probe(fs),
        other => other?,
    };
    let lists = security_lists(fs)?;
    // The best candidate per installed package: (version, suite, list, line).
    let mut best: BTreeMap<(&str, &str), (String, String, String, u32)> = BTreeMap::new();
    let mut read = Vec::new();
    for (path, suite, compression) in &lists {
        let list = match cached(fs, &LISTS, path, |b| {
            LIST_PARSES.fetch_add(1, AtomicOrdering::Relaxed);
            decompress(b, *compression).map(|text| parse_packages(&text))
        }) {
            Ok(l) => l,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(read_err(path)(e)),
        };
        let list = match list.as_ref() {
            Ok(list) => list,
            Err(reason) => {
                return Err(PatchesError::List {
                    path: path.clone(),
                    reason: reason.clone(),
                });
            }
        };
        read.push(path.clone());
        for (name, arch) in installed.keys() {
            let Some(entries) = list.by_name.get(name) else {
                continue;
            };
            for entry in entries {
                let fits = entry.architecture == *arch
                    || entry.architecture == "all"
                    || arch.as_str() == "all";
                if !fits {
                    continue;
                }
                let key = (name.as_str(), arch.as_str());
                let better = best.get(&key).is_none_or(|(v, ..)| {
                    dpkgver::compare(&entry.version, v) == std::cmp::Ordering::Greater
                });
                if better {
                    best.insert(
                        key,
                        (
                            entry.version.clone(),
                            suite.clone(),
                            path.clone(),
                            entry.line,
                        ),
                    );
                }
            }
        }
    }
    let mut pending = Vec::new();
    for ((name, arch), (candidate, suite, list, line)) in best {
        let Some(version) = installed.get(&(name.to_string(), arch.to_string())) else {
            continue;
        };
        if dpkgver::compare(&candidate, version) == std::cmp::Ordering::Greater {
            pending.push(PendingUpdate {
                package: name.to_string(),
                architecture: arch.to_string(),
                installed: version.clone(),
                candidate: candidate.clone(),
                suite: suite.clone(),
                severity: None,
                evidence: Evidence::line(
                    list,
                    line,
                    format!("{name} {version} installed, {candidate} in {suite}"),
                ),
            });
        }
    }
    Ok(PatchesFact {
        pending,
        security_lists: read,
        installed_count: installed.len(),
        format: PackageFormat::Dpkg,
    })
}

/// The lines of a deb822 file with their 1-based numbers, `\r` removed.
fn lines(data: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let mut start = 0usize;
    memchr::memchr_iter(b'\n', data)
        .chain(std::iter::once(data.len()))
        .enumerate()
        .map(move |(i, end)| {
            let raw = data.get(start..end).unwrap_or_default();
            start = end + 1;
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            (u32::try_from(i + 1).unwrap_or(u32::MAX), line)
        })
}

/// A `Field: value` line split into its name and trimmed value.
fn field(line: &[u8]) -> Option<(&[u8], &str)> {
    let colon = memchr::memchr(b':', line)?;
    let (name, rest) = line.split_at(colon);
    let value = std::str::from_utf8(rest.get(1..)?).ok()?.trim();
    Some((name, value))
}

/// Parses the first paragraph of a `Release` or `InRelease` file (the
/// clearsigned header of `InRelease` is skipped). Never fails.
pub fn parse_release(data: &[u8]) -> ReleaseInfo {
    let mut info = ReleaseInfo::default();
    let mut it = lines(data).peekable();
    if it
        .peek()
        .is_some_and(|(_, l)| l.starts_with(b"-----BEGIN PGP SIGNED MESSAGE"))
    {
        // The armor headers (`Hash: SHA512`) end at the first empty line.
        for (_, l) in it.by_ref() {
            if l.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
    }
    let mut seen_field = false;
    for (_, line) in it {
        if line.starts_with(b"-----BEGIN PGP SIGNATURE") {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            if seen_field {
                break;
            }
            continue;
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            continue;
        }
        let Some((name, value)) = field(line) else {
            continue;
        };
        seen_field = true;
        let slot = if name.eq_ignore_ascii_case(b"Suite") {
            &mut info.suite
        } else if name.eq_ignore_ascii_case(b"Codename") {
            &mut info.codename
        } else if name.eq_ignore_ascii_case(b"Label") {
            &mut info.label
        } else if name.eq_ignore_ascii_case(b"Origin") {
            &mut info.origin
        } else {
            continue;
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.to_string());
        }
    }
    info
}

/// Parses a `*_Packages` list, keeping the newest version of each name and
/// architecture. Stanzas without a name or version are skipped. Never fails.
pub fn parse_packages(data: &[u8]) -> PackageList {
    let mut list = PackageList::default();
    let mut name: Option<(&str, u32)> = None;
    let mut version: Option<&str> = None;
    let mut arch: Option<&str> = None;
    let mut finish =
        |name: &mut Option<(&str, u32)>, version: &mut Option<&str>, arch: &mut Option<&str>| {
            if let (Some((n, line)), Some(v)) = (name.take(), version.take())
                && !n.is_empty()
                && !n.contains(char::is_whitespace)
            {
                let a = arch.take().unwrap_or("all");
                let entries = list.by_name.entry(n.to_string()).or_default();
                match entries.iter_mut().find(|e| e.architecture == a) {
                    Some(e) => {
                        if dpkgver::compare(v, &e.version) == std::cmp::Ordering::Greater {
                            e.version = v.to_string();
                            e.line = line;
                        }
                    }
                    None => entries.push(ListEntry {
                        architecture: a.to_string(),
                        version: v.to_string(),
                        line,
                    }),
                }
            }
            *arch = None;
            *version = None;
            *name = None;
        };
    for (number, line) in lines(data) {
        match line.first() {
            Some(b' ' | b'\t') if !line.iter().all(u8::is_ascii_whitespace) => continue,
            None | Some(b' ' | b'\t') => {
                finish(&mut name, &mut version, &mut arch);
                continue;
            }
            Some(_) => {}
        }
        let Some((field_name, value)) = field(line) else {
            continue;
        };
        if field_name.eq_ignore_ascii_case(b"Package") {
            name = Some((value, number));
        } else if field_name.eq_ignore_ascii_case(b"Version") {
            version = Some(value);
        } else if field_name.eq_ignore_ascii_case(b"Architecture") {
            arch = Some(value);
        }
    }
    finish(&mut name, &mut version, &mut arch);
    // The list stays cached while the daemon runs: most names have one
    // entry, and a vector grown by a push holds room for four.
    for entries in list.by_name.values_mut() {
        entries.shrink_to_fit();
    }
    list.by_name.shrink_to_fit();
    list
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_headers_name_security_suites() {
        let signed = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nOrigin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\nSHA256:\n abc 12 main/binary-amd64/Packages\n-----BEGIN PGP SIGNATURE-----\n";
        let info = parse_release(signed);
        assert_eq!(info.suite.as_deref(), Some("stable-security"));
        assert_eq!(info.codename.as_deref(), Some("bookworm-security"));
        assert!(info.is_security());
        let plain =
            parse_release(b"Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\n");
        assert!(!plain.is_security());
        assert_eq!(plain.name(), "stable");
        let old = parse_release(b"Label: Debian-Security\nSuite: oldoldstable\n");
        assert!(old.is_security());
    }

    #[test]
    fn compressed_lists_are_named_and_read() {
        assert_eq!(
            Compression::of("a_dists_x-security_main_binary-amd64_Packages.lz4"),
            Some((
                Compression::Lz4,
                "a_dists_x-security_main_binary-amd64_Packages"
            ))
        );
        assert_eq!(
            Compression::of("a_Packages"),
            Some((Compression::None, "a_Packages"))
        );
        assert_eq!(Compression::of("a_Packages.diff_Index"), None);
        assert_eq!(Compression::of("a_Release"), None);
        let text = b"Package: a\nVersion: 1\n";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, text).expect("gzip");
        let gz = gz.finish().expect("gzip");
        assert_eq!(decompress(&gz, Compression::Gzip).as_deref(), Ok(&text[..]));
        let mut lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
        std::io::Write::write_all(&mut lz, text).expect("lz4");
        let lz = lz.finish().expect("lz4");
        assert_eq!(decompress(&lz, Compression::Lz4).as_deref(), Ok(&text[..]));
        assert!(decompress(b"not lz4", Compression::Lz4).is_err());
        let zst = ruzstd::encoding::compress_to_vec(
            &text[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(
            decompress(&zst, Compression::Zstd).as_deref(),
            Ok(&text[..])
        );
        assert!(decompress(&zst[..zst.len() - 2], Compression::Zstd).is_err());
        assert!(decompress(b"not zstd", Compression::Zstd).is_err());
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &text[..], &mut xz).expect("xz");
        assert_eq!(decompress(&xz, Compression::Xz).as_deref(), Ok(&text[..]));
        let err = decompress(&xz[..xz.len() - 4], Compression::Xz).expect_err("cut xz");
        assert!(err.starts_with("corrupt compressed file"), "{err}");
        let (zck, _) = Compression::of_file("a-updateinfo.xml.zck");
        let err = decompress(b"\0ZCK1", zck).expect_err("zchunk");
        assert!(err.contains("zchunk"), "{err}");
        assert_eq!(
            Compression::of_file("r/repodata/a-updateinfo.xml.zst"),
            (Compression::Zstd, "r/repodata/a-updateinfo.xml")
        );
        assert_eq!(
            Compression::of_file("a-updateinfo.xml"),
            (Compression::None, "a-updateinfo.xml")
        );
        assert!(decompress(b"x", Compression::Unsupported("xz")).is_err());
    }

    #[test]
    fn package_lists_keep_the_newest_version_per_architecture() {
        let list = parse_packages(
            b"Package: openssl\nVersion: 3.0.11-1~deb12u1\nArchitecture: amd64\nDescription: x\n more\n\nPackage: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n\nPackage: openssl\nVersion: 3.0.9-1\nArchitecture: i386\n\nPackage: broken\n\nPackage: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n",
        );
        let openssl = &list.by_name["openssl"];
        assert_eq!(openssl.len(), 2);
        assert_eq!(openssl[0].version, "3.0.11-1~deb12u2");
        assert_eq!(openssl[0].line, 7);
        assert_eq!(openssl[1].architecture, "i386");
        assert!(!list.by_name.contains_key("broken"));
        assert_eq!(list.by_name["tzdata"][0].architecture, "all");
    }

    #[test]
    fn parsed_lists_keep_no_spare_room() {
        // Parsed lists stay cached for the daemon's lifetime.
        let list = parse_packages(
            b"Package: a\nVersion: 1\nArchitecture: amd64\n\nPackage: b\nVersion: 1\nArchitecture: all\n\nPackage: b\nVersion: 2\nArchitecture: i386\n",
        );
        assert_eq!(list.by_name.len(), 2);
        for (name, entries) in &list.by_name {
            assert_eq!(entries.capacity(), entries.len(), "{name}");
        }
        assert_eq!(list.by_name["b"].len(), 2);
    }
}
