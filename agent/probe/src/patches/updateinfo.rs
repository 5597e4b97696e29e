//! The repository metadata dnf and yum cache: `repomd.xml` (which file of
//! the repository holds its advisories) and `updateinfo.xml` (the
//! advisories, of which only the security ones are kept).
//!
//! Both are read with a streaming XML reader over bytes that are hostile:
//! a document that is not well-formed XML is an error, never a guess, and
//! nothing read is kept but the fields used.

use std::collections::HashMap;
use std::io::{self, BufRead, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};

use crate::rpmver::{self, RpmVersion};

/// What is wrong with a `repomd.xml` or `updateinfo.xml`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateinfoError {
    #[error("not well-formed XML at byte {position}: {reason}")]
    Xml { position: u64, reason: String },
    #[error("the document ends inside an element")]
    Truncated,
    #[error("the updateinfo location {href:?} leaves the repository")]
    BadLocation { href: String },
}

/// One package of a security advisory: the newest one offered for its name
/// and architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvisoryPackage {
    pub arch: String,
    /// `[epoch:]version-release`, the epoch only when it is not 0.
    pub evr: String,
    /// The advisory's `<id>` (`RHSA-2024:1234`, `FEDORA-2024-0123456789`).
    pub advisory: String,
    /// The advisory's `<severity>` (`Important`), when it names one.
    pub severity: Option<String>,
    /// The line of the `<package>` element in the decompressed document.
    pub line: u32,
}

/// The security advisories' packages of one `updateinfo.xml`, by name.
#[derive(Debug, Default)]
pub struct SecurityPackages {
    pub by_name: HashMap<String, Vec<AdvisoryPackage>>,
    /// How many security advisories the document holds.
    pub advisories: usize,
}

fn xml_err<T, R>(reader: &Reader<R>, e: impl std::fmt::Display) -> Result<T, UpdateinfoError> {
    Err(UpdateinfoError::Xml {
        position: reader.error_position(),
        reason: e.to_string(),
    })
}

/// The value of the attribute whose local name is `name`.
fn attribute<R>(
    reader: &Reader<R>,
    e: &BytesStart<'_>,
    name: &str,
) -> Result<Option<String>, UpdateinfoError> {
    for a in e.attributes() {
        let a = match a {
            Ok(a) => a,
            Err(err) => return xml_err(reader, err),
        };
        if a.key.local_name().as_ref() == name {
            return match a.normalized_value(XmlVersion::Implicit1_0) {
                Ok(v) => Ok(Some(v.into_owned())),
                Err(err) => xml_err(reader, err),
            };
        }
    }
    Ok(None)
}

/// The `href`s of the repository's advisories, relative to its directory
/// (`repodata/...-updateinfo.xml.zst`), in the order to try them: the
/// `<location>` of `<data type="updateinfo">`, then of `updateinfo_zck`
/// (the zchunk copy dnf may download instead). Empty when the repository
/// publishes no advisories. A location that is absolute or climbs out of
/// the repository is an error.
pub fn parse_repomd(data: &[u8]) -> Result<Vec<String>, UpdateinfoError> {
    const TYPES: [&str; 2] = ["updateinfo", "updateinfo_zck"];
    let mut reader = Reader::from_reader(data);
    let mut depth = 0usize;
    // The depth and type (index into TYPES) of the `<data>` being read.
    let mut in_data: Option<(usize, usize)> = None;
    let mut found: [Option<String>; 2] = [None, None];
    loop {
        let event = match reader.read_event() {
            Ok(ev) => ev,
            Err(e) => return xml_err(&reader, e),
        };
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if in_data.is_some_and(|(d, _)| d == depth) {
                    in_data = None;
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let local = e.local_name();
        if local.as_ref() == "data" && !empty && in_data.is_none() {
            let kind = attribute(&reader, &e, "type")?;
            in_data = TYPES
                .iter()
                .position(|t| kind.as_deref().is_some_and(|k| k.trim() == *t))
                .map(|i| (depth, i));
        } else if local.as_ref() == "location"
            && let Some((_, i)) = in_data
            && let Some(slot) = found.get_mut(i)
            && slot.is_none()
        {
            *slot = attribute(&reader, &e, "href")?;
        }
        if !empty {
            depth += 1;
        }
    }
    if depth != 0 {
        return Err(UpdateinfoError::Truncated);
    }
    let mut out = Vec::new();
    for href in found.into_iter().flatten() {
        if !location_is_safe(&href) {
            return Err(UpdateinfoError::BadLocation { href });
        }
        out.push(href);
    }
    Ok(out)
}

/// A relative path of plain components (no `..`, `.`, empty or absolute).
fn location_is_safe(href: &str) -> bool {
    !href.is_empty()
        && !href.starts_with('/')
        && href
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

/// The advisory being read.
#[derive(Default)]
struct Update {
    security: bool,
    id: Option<String>,
    severity: Option<String>,
    /// (name, arch, evr, line) of its packages.
    packages: Vec<(String, String, String, u32)>,
}

/// Which child of `<update>` is collecting text.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Id,
    Severity,
}

/// `[epoch:]version-release` of a `<package>`; `None` when a part is
/// missing or the epoch is not a number.
fn package_evr(epoch: Option<&str>, version: &str, release: &str) -> Option<String> {
    if version.is_empty() || release.is_empty() {
        return None;
    }
    let epoch = match epoch.map(str::trim) {
        None | Some("") => None,
        Some(e) => Some(e.parse::<u32>().ok()?),
    };
    Some(RpmVersion::display(epoch, version, release))
}

/// Parses an `updateinfo.xml`, keeping for each package name and
/// architecture the newest version a security advisory (`type="security"`)
/// names. Advisories without an `<id>` and packages without a name,
/// version, release or architecture are skipped; malformed XML is an error.
pub fn parse_updateinfo(data: &[u8]) -> Result<SecurityPackages, UpdateinfoError> {
    parse_updateinfo_for(data, |_| true)
}

/// A reader that counts the newlines of the bytes its reader has consumed,
/// so that a streaming parse knows the line it is at, and keeps the error
/// of the reader below it (a decompressor's) to report it as such.
pub struct LineCounter<R> {
    inner: R,
    newlines: u64,
    consumed: u64,
    failed: Option<String>,
}

impl<R: BufRead> LineCounter<R> {
    pub fn new(inner: R) -> LineCounter<R> {
        LineCounter {
            inner,
            newlines: 0,
            consumed: 0,
            failed: None,
        }
    }

    /// How many bytes were consumed.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// The error the reader below returned, if it did.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }
}

impl<R: BufRead> Read for LineCounter<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for LineCounter<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        match self.inner.fill_buf() {
            Ok(buf) => Ok(buf),
            Err(e) => {
                self.failed = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        // The bytes being consumed are the front of the buffer that the
        // last fill_buf returned; asking again costs no read.
        if let Ok(buf) = self.inner.fill_buf() {
            let taken = buf.get(..amt).unwrap_or(buf);
            self.newlines += memchr::memchr_iter(b'\n', taken).count() as u64;
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

/// [`parse_updateinfo`] keeping only the packages whose name `keep`
/// accepts (those installed: a repository's advisories name tens of
/// thousands of packages, and the parsed file stays cached).
pub fn parse_updateinfo_for(
    data: &[u8],
    keep: impl Fn(&str) -> bool,
) -> Result<SecurityPackages, UpdateinfoError> {
    parse_updateinfo_from(&mut LineCounter::new(data), keep)
}

/// [`parse_updateinfo_for`] of a document read as it is parsed (from a
/// decompressor, so that the whole text is never in memory).
pub fn parse_updateinfo_from<R: BufRead>(
    input: &mut LineCounter<R>,
    keep: impl Fn(&str) -> bool,
) -> Result<SecurityPackages, UpdateinfoError> {
    let mut out = SecurityPackages::default();
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut update: Option<(usize, Update)> = None;
    let mut field: Option<(Field, String)> = None;
    loop {
        // The line each element starts on: the newlines before it.
        let line = u32::try_from(reader.get_ref().newlines.saturating_add(1)).unwrap_or(u32::MAX);
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => return xml_err(&reader, e),
        };
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                if let (Some((which, text)), Some((_, u))) = (field.take(), update.as_mut()) {
                    let text = text.trim().to_string();
                    match which {
                        Field::Id => u.id = Some(text),
                        Field::Severity => u.severity = Some(text).filter(|s| !s.is_empty()),
                    }
                }
                if update.as_ref().is_some_and(|(d, _)| *d == depth)
                    && let Some((_, u)) = update.take()
                {
                    finish(u, &mut out);
                }
                continue;
            }
            Event::Text(t) => {
                if let Some((_, text)) = field.as_mut() {
                    text.push_str(&t.xml10_content());
                }
                continue;
            }
            Event::CData(t) => {
                if let Some((_, text)) = field.as_mut() {
                    text.push_str(&t.xml10_content());
                }
                continue;
            }
            Event::Eof => break,
            _ => continue,
        };
        let local = e.local_name();
        let local = local.as_ref();
        match update.as_mut() {
            None if local == "update" => {
                let kind = attribute(&reader, &e, "type")?;
                let u = Update {
                    security: kind.is_some_and(|k| k.trim().eq_ignore_ascii_case("security")),
                    ..Update::default()
                };
                if empty {
                    finish(u, &mut out);
                } else {
                    update = Some((depth, u));
                }
            }
            Some((update_depth, u)) => {
                if depth == *update_depth + 1 && !empty {
                    if local == "id" {
                        field = Some((Field::Id, String::new()));
                    } else if local == "severity" {
                        field = Some((Field::Severity, String::new()));
                    }
                }
                if local == "package" && u.security {
                    let get = |n| attribute(&reader, &e, n);
                    let (name, version, release, arch) =
                        (get("name")?, get("version")?, get("release")?, get("arch")?);
                    let epoch = get("epoch")?;
                    if let (Some(name), Some(version), Some(release), Some(arch)) =
                        (name, version, release, arch)
                        && !name.is_empty()
                        && !arch.is_empty()
                        && keep(&name)
                        && let Some(evr) = package_evr(epoch.as_deref(), &version, &release)
                    {
                        u.packages.push((name, arch, evr, line));
                    }
                }
            }
            None => {}
        }
        if !empty {
            depth += 1;
        }
    }
    if depth != 0 {
        return Err(UpdateinfoError::Truncated);
    }
    for entries in out.by_name.values_mut() {
        entries.shrink_to_fit();
    }
    out.by_name.shrink_to_fit();
    Ok(out)
}

/// Records a finished advisory: its packages when it is a security one.
fn finish(u: Update, out: &mut SecurityPackages) {
    let Some(id) = u.id.filter(|id| !id.is_empty()) else {
        return;
    };
    if !u.security {
        return;
    }
    out.advisories += 1;
    for (name, arch, evr, line) in u.packages {
        let entries = out.by_name.entry(name).or_default();
        match entries.iter_mut().find(|p| p.arch == arch) {
            Some(p) => {
                if rpmver::compare(&evr, &p.evr).is_gt() {
                    p.evr = evr;
                    p.advisory = id.clone();
                    p.severity = u.severity.clone();
                    p.line = line;
                }
            }
            None => entries.push(AdvisoryPackage {
                arch,
                evr,
                advisory: id.clone(),
                severity: u.severity.clone(),
                line,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPOMD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <data type="primary">
    <location href="repodata/abc-primary.xml.zst"/>
  </data>
  <data type="updateinfo">
    <checksum type="sha256">00</checksum>
    <location href="repodata/def-updateinfo.xml.gz"/>
  </data>
</repomd>
"#;

    const UPDATEINFO: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@redhat.com" status="final" type="security" version="2">
    <id>RHSA-2024:1234</id>
    <title>openssl security update</title>
    <severity>Important</severity>
    <pkglist>
      <collection short="rhel-9">
        <name>rhel-9</name>
        <package name="openssl" version="3.0.7" release="25.el9" epoch="1" arch="x86_64">
          <filename>openssl-3.0.7-25.el9.x86_64.rpm</filename>
        </package>
        <package name="openssl" version="3.0.7" release="25.el9" epoch="1" arch="src"/>
        <package name="broken" version="1" arch="x86_64"/>
      </collection>
    </pkglist>
  </update>
  <update type="bugfix"><id>RHBA-2024:1</id>
    <pkglist><collection><package name="bash" version="5.2" release="1" epoch="0" arch="x86_64"/></collection></pkglist>
  </update>
  <update type="Security"><id>RHSA-2024:0999</id>
    <pkglist><collection><package name="openssl" version="3.0.7" release="26.el9" epoch="1" arch="x86_64"/>
    <package name="zlib" version="1.2" release="3" epoch="0" arch="noarch"/></collection></pkglist>
  </update>
  <update type="security"><title>no id</title>
    <pkglist><collection><package name="curl" version="9" release="1" arch="x86_64"/></collection></pkglist>
  </update>
</updates>
"#;

    /// A compressed document is parsed as it is decompressed, to the same
    /// packages and lines as its text; a cut one is a corrupt file.
    #[test]
    fn compressed_documents_are_parsed_as_they_are_decompressed() {
        use crate::patches::{Compression, parse_updateinfo_file};
        use std::io::Write;
        let text = UPDATEINFO.as_bytes();
        let plain = parse_updateinfo(text).expect("plain");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let zst =
            ruzstd::encoding::compress_to_vec(text, ruzstd::encoding::CompressionLevel::Fastest);
        let mut xz = Vec::new();
        lzma_rs::xz_compress(&mut &text[..], &mut xz).expect("xz");
        for (data, compression) in [
            (text.to_vec(), Compression::None),
            (gz.clone(), Compression::Gzip),
            (zst, Compression::Zstd),
            (xz, Compression::Xz),
        ] {
            let got = parse_updateinfo_file(&data, compression, |_| true).expect("parses");
            assert_eq!(got.by_name, plain.by_name, "{compression:?}");
            assert_eq!(got.advisories, plain.advisories, "{compression:?}");
        }
        let err = parse_updateinfo_file(&gz[..gz.len() / 2], Compression::Gzip, |_| true)
            .expect_err("a cut file");
        assert!(err.starts_with("corrupt compressed file"), "{err}");
    }

    #[test]
    fn repomd_names_the_updateinfo_file() {
        assert_eq!(
            parse_repomd(REPOMD.as_bytes()),
            Ok(vec!["repodata/def-updateinfo.xml.gz".to_string()])
        );
        let none = REPOMD.replace("updateinfo", "other");
        assert_eq!(parse_repomd(none.as_bytes()), Ok(vec![]));
        // The zchunk copy comes second, whatever the document's order.
        let zck = REPOMD.replace(
            "<data type=\"primary\">\n    <location href=\"repodata/abc-primary.xml.zst\"/>",
            "<data type=\"updateinfo_zck\">\n    <location href=\"repodata/u.xml.zck\"/>",
        );
        assert_eq!(
            parse_repomd(zck.as_bytes()),
            Ok(vec![
                "repodata/def-updateinfo.xml.gz".to_string(),
                "repodata/u.xml.zck".to_string()
            ])
        );
        for bad in ["/etc/shadow", "repodata/../../../etc/shadow", "a//b", ""] {
            let evil = REPOMD.replace("repodata/def-updateinfo.xml.gz", bad);
            assert!(
                matches!(
                    parse_repomd(evil.as_bytes()),
                    Err(UpdateinfoError::BadLocation { .. })
                ),
                "{bad}"
            );
        }
        assert!(parse_repomd(&REPOMD.as_bytes()[..REPOMD.len() / 2]).is_err());
        assert!(matches!(
            parse_repomd(b"<repomd><data></repomd>"),
            Err(UpdateinfoError::Xml { .. })
        ));
    }

    #[test]
    fn only_security_advisories_count_and_the_newest_wins() {
        let got = parse_updateinfo(UPDATEINFO.as_bytes()).expect("parse");
        assert_eq!(got.advisories, 2);
        let openssl = &got.by_name["openssl"];
        assert_eq!(openssl.len(), 2, "{openssl:?}");
        let x86 = openssl.iter().find(|p| p.arch == "x86_64").expect("x86_64");
        assert_eq!(x86.evr, "1:3.0.7-26.el9");
        assert_eq!(x86.advisory, "RHSA-2024:0999");
        assert_eq!(x86.severity, None);
        assert_eq!(x86.line, 22);
        let src = openssl.iter().find(|p| p.arch == "src").expect("src");
        assert_eq!(src.advisory, "RHSA-2024:1234");
        assert_eq!(src.severity.as_deref(), Some("Important"));
        assert_eq!(src.line, 13);
        // Epoch 0 is left out, as rpm prints it.
        assert_eq!(got.by_name["zlib"][0].evr, "1.2-3");
        assert!(!got.by_name.contains_key("bash"), "a bugfix advisory");
        assert!(!got.by_name.contains_key("broken"), "no release");
        assert!(!got.by_name.contains_key("curl"), "no id");
    }

    #[test]
    fn only_the_kept_names_are_kept() {
        let got = parse_updateinfo_for(UPDATEINFO.as_bytes(), |n| n == "zlib").expect("parse");
        assert_eq!(got.by_name.keys().collect::<Vec<_>>(), ["zlib"]);
        assert_eq!(got.advisories, 2);
    }

    #[test]
    fn line_numbers_are_those_of_the_package_element() {
        let text = "<updates>\n<update type=\"security\">\n<id>A</id>\n<pkglist><collection>\n\n<package name=\"a\" version=\"1\" release=\"1\" arch=\"noarch\"/></collection></pkglist></update></updates>";
        let got = parse_updateinfo(text.as_bytes()).expect("parse");
        assert_eq!(got.by_name["a"][0].line, 6);
        assert_eq!(got.by_name["a"][0].advisory, "A");
    }

    #[test]
    fn malformed_documents_are_errors() {
        // Cut short: the reader or the depth check refuses it.
        assert!(parse_updateinfo(b"<updates><update type=\"security\">").is_err());
        assert!(parse_updateinfo(b"<updates></update>").is_err());
        assert!(parse_updateinfo(b"<updates><update type=security/></updates>").is_err());
        assert!(parse_updateinfo(b"<updates>\xff\xfe</updates>").is_err());
        let epoch = br#"<updates><update type="security"><id>X</id><pkglist><collection>
            <package name="a" version="1" release="1" epoch="one" arch="noarch"/></collection></pkglist></update></updates>"#;
        assert!(parse_updateinfo(epoch).expect("parse").by_name.is_empty());
    }

    mod props {
        use super::*;
        use proptest::collection::vec;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_bytes_never_panic(data in vec(any::<u8>(), 0..2000)) {
                let _ = parse_repomd(&data);
                let _ = parse_updateinfo(&data);
            }

            /// Real documents with one byte changed or cut short.
            #[test]
            fn mutated_documents_never_panic(at in any::<prop::sample::Index>(), byte in any::<u8>(),
                                             cut in any::<prop::sample::Index>()) {
                for doc in [REPOMD, UPDATEINFO] {
                    let mut data = doc.as_bytes().to_vec();
                    let i = at.index(data.len());
                    data[i] = byte;
                    let _ = parse_repomd(&data);
                    let _ = parse_updateinfo(&data);
                    let short = &doc.as_bytes()[..cut.index(doc.len())];
                    let _ = parse_repomd(short);
                    let _ = parse_updateinfo(short);
                }
            }

            /// Well-formed advisories read back with their version.
            #[test]
            fn generated_advisories_read_back(
                name in "[a-zA-Z0-9._+-]{1,30}",
                version in "[a-zA-Z0-9._+~^]{1,12}",
                release in "[a-zA-Z0-9._+~^]{1,12}",
                epoch in 0u32..5,
                lines in 0usize..5,
            ) {
                let doc = format!(
                    "<updates><update type=\"security\"><id>S-1</id><pkglist><collection>{}<package name=\"{name}\" version=\"{version}\" release=\"{release}\" epoch=\"{epoch}\" arch=\"noarch\"/></collection></pkglist></update></updates>",
                    "\n".repeat(lines)
                );
                let got = parse_updateinfo(doc.as_bytes()).expect("well formed");
                let p = &got.by_name[&name][0];
                prop_assert_eq!(&p.evr, &RpmVersion::display(Some(epoch), &version, &release));
                prop_assert_eq!(p.line as usize, lines + 1);
            }
        }
    }
}
