//! Hostile input for the posture parsers: apt lists, Release files, dnf's
//! repomd.xml and updateinfo.xml, compressed files, certificates,
//! `/proc/PID/maps` text and version strings never make them panic, and the
//! version comparison is a consistent order on any text.

use std::cmp::Ordering;

use hardend_probe::certificate::parse_file;
use hardend_probe::dpkgver::compare;
use hardend_probe::patches::updateinfo::{parse_repomd, parse_updateinfo};
use hardend_probe::patches::{Compression, decompress, parse_packages, parse_release};
use hardend_probe::processes::deleted_in_maps;
use proptest::prelude::*;

/// Text that looks like deb822 more often than random bytes would.
fn deb822() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"Package: ".to_vec()),
            Just(b"Version: ".to_vec()),
            Just(b"Architecture: ".to_vec()),
            Just(b"Suite: ".to_vec()),
            Just(b"Label: Debian-Security".to_vec()),
            Just(b"-----BEGIN PGP SIGNED MESSAGE-----".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\n\n".to_vec()),
            Just(b" ".to_vec()),
            Just(b":".to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
        ],
        0..60,
    )
    .prop_map(|parts| parts.concat())
}

/// Text that looks like repomd.xml or updateinfo.xml more often than random
/// bytes would: their elements and attributes, broken entities, CDATA and
/// stray bytes, in any order and nesting.
fn dnf_xml() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"<?xml version=\"1.0\"?>".to_vec()),
            Just(b"<updates>".to_vec()),
            Just(b"</updates>".to_vec()),
            Just(b"<update type=\"security\">".to_vec()),
            Just(b"<update type=\"bugfix\"/>".to_vec()),
            Just(b"</update>".to_vec()),
            Just(b"<id>RHSA-2024:1".to_vec()),
            Just(b"</id>".to_vec()),
            Just(b"<severity>Important</severity>".to_vec()),
            Just(
                b"<package name=\"a\" version=\"1\" release=\"2\" epoch=\"1\" arch=\"noarch\"/>"
                    .to_vec()
            ),
            Just(b"<package name=\"a\" epoch=\"x\" arch=\"\">".to_vec()),
            Just(b"</package>".to_vec()),
            Just(b"<data type=\"updateinfo\">".to_vec()),
            Just(b"<data type=\"updateinfo_zck\">".to_vec()),
            Just(b"</data>".to_vec()),
            Just(b"<location href=\"repodata/u.xml.gz\"/>".to_vec()),
            Just(b"<location href=\"../../etc/shadow\"/>".to_vec()),
            Just(b"&amp;&bogus;&#0;&#x110000;".to_vec()),
            Just(b"<![CDATA[x]]>".to_vec()),
            Just(b"<!DOCTYPE x [<!ENTITY e \"eee\">]>".to_vec()),
            Just(b"\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..50,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn dnf_metadata_parsers_never_panic(data in dnf_xml()) {
        if let Ok(hrefs) = parse_repomd(&data) {
            for h in hrefs {
                prop_assert!(!h.starts_with('/') && !h.split('/').any(|c| c == ".." || c.is_empty()));
            }
        }
        if let Ok(info) = parse_updateinfo(&data) {
            for entries in info.by_name.values() {
                prop_assert!(!entries.is_empty());
                for p in entries {
                    prop_assert!(p.line >= 1 && !p.evr.is_empty() && !p.advisory.is_empty());
                }
            }
        }
    }

    #[test]
    fn decompressors_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        for c in [Compression::Gzip, Compression::Lz4, Compression::Zstd, Compression::Xz] {
            let _ = decompress(&data, c);
        }
        // Valid magic numbers with hostile bodies.
        for magic in [&b"\x1f\x8b\x08\x00"[..], b"\x28\xb5\x2f\xfd", b"\xfd7zXZ\x00"] {
            let mut v = magic.to_vec();
            v.extend(&data);
            for c in [Compression::Gzip, Compression::Zstd, Compression::Xz] {
                let _ = decompress(&v, c);
            }
        }
    }

    #[test]
    fn apt_parsers_never_panic(data in deb822()) {
        let list = parse_packages(&data);
        for entries in list.by_name.values() {
            prop_assert!(!entries.is_empty());
        }
        let _ = parse_release(&data).is_security();
    }

    #[test]
    fn certificate_parser_never_panics(data in prop::collection::vec(any::<u8>(), 0..400), pem in any::<bool>()) {
        let input = if pem {
            let mut v = b"-----BEGIN CERTIFICATE-----\n".to_vec();
            v.extend(&data);
            v.extend(b"\n-----END CERTIFICATE-----\n");
            v
        } else {
            data
        };
        let _ = parse_file(&input, "/x.pem");
    }

    #[test]
    fn maps_parser_never_panics(data in deb822()) {
        let mut text = data;
        text.extend(b" (deleted)\n7f-80 r-xp 0 0:0 1 /x (deleted)");
        let found = deleted_in_maps(&text);
        prop_assert!(found.contains("/x"));
    }

    #[test]
    fn versions_compare_as_an_order(a in "[0-9a-z.:~+-]{0,10}", b in "[0-9a-z.:~+-]{0,10}", c in "[0-9a-z.:~+-]{0,10}") {
        prop_assert_eq!(compare(&a, &a), Ordering::Equal);
        prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        if compare(&a, &b) != Ordering::Greater && compare(&b, &c) != Ordering::Greater {
            prop_assert_ne!(compare(&a, &c), Ordering::Greater, "{} <= {} <= {}", a, b, c);
        }
    }
}
