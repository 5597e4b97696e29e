//! Hostile input for the posture parsers: apt lists, Release files,
//! certificates, `/proc/PID/maps` text and version strings never make them
//! panic, and the version comparison is a consistent order on any text.

use std::cmp::Ordering;

use hardend_probe::certificate::parse_file;
use hardend_probe::dpkgver::compare;
use hardend_probe::patches::{parse_packages, parse_release};
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

proptest! {
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
