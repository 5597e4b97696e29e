//! dpkg version comparison: a table of known orderings, and agreement with
//! the real `dpkg --compare-versions` on generated versions.

use std::cmp::Ordering;
use std::process::Command;

use hardend_probe::dpkgver::{DpkgVersion, compare};

/// Pairs whose order is known from dpkg's documentation and behaviour.
const KNOWN: &[(&str, &str, Ordering)] = &[
    ("1.0", "1.0", Ordering::Equal),
    ("1.0", "1.0-0", Ordering::Equal),
    ("0:1.0", "1.0", Ordering::Equal),
    ("1.0", "1.00", Ordering::Equal),
    ("1.0", "1.1", Ordering::Less),
    ("1.2", "1.10", Ordering::Less),
    ("1:0.1", "2.0", Ordering::Greater),
    ("2:1.0", "10:0.1", Ordering::Less),
    ("1.0~rc1", "1.0", Ordering::Less),
    ("1.0~~", "1.0~~a", Ordering::Less),
    ("1.0~~a", "1.0~", Ordering::Less),
    ("1.0~", "1.0", Ordering::Less),
    ("1.0", "1.0a", Ordering::Less),
    ("1.0a", "1.0+", Ordering::Less),
    ("1.0+", "1.0.", Ordering::Less),
    ("1.0a", "1.0b", Ordering::Less),
    ("1.0Z", "1.0a", Ordering::Less),
    ("1.0-1", "1.0-2", Ordering::Less),
    ("1.0-1", "1.0-1.1", Ordering::Less),
    ("1.0-1~bpo1", "1.0-1", Ordering::Less),
    ("1.0-1+deb12u1", "1.0-1", Ordering::Greater),
    ("3.0.11-1~deb12u1", "3.0.11-1~deb12u2", Ordering::Less),
    ("3.0.11-1~deb12u2", "3.0.13-1~deb12u1", Ordering::Less),
    ("2.36-9+deb12u3", "2.36-9+deb12u10", Ordering::Less),
    ("1:9.2p1-2+deb12u2", "1:9.2p1-2+deb12u3", Ordering::Less),
    ("1.2-3-4", "1.2-3-5", Ordering::Less),
    ("1.2-3-4", "1.2-4", Ordering::Greater),
    ("7.88.1-10+deb12u5", "7.88.1-10+deb12u12", Ordering::Less),
    ("0.9", "0.10", Ordering::Less),
    ("1.001", "1.1", Ordering::Equal),
    ("20240101", "2024.01.01", Ordering::Greater),
];

#[test]
fn known_orderings_hold_both_ways() {
    for &(a, b, want) in KNOWN {
        assert_eq!(compare(a, b), want, "{a} vs {b}");
        assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
    }
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed
/// from the seed it prints.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap_or(0)
    }

    fn pick(&mut self, chars: &[u8]) -> char {
        char::from(chars[self.below(chars.len())])
    }
}

/// A valid version drawn from a small alphabet, so that generated versions
/// often share prefixes and the interesting rules (`~`, letters against
/// punctuation, leading zeros, epochs) decide their order.
fn version(rng: &mut Rng) -> String {
    let mut v = String::new();
    if rng.below(5) == 0 {
        v.push_str(["0:", "1:", "2:", "01:"][rng.below(4)]);
    }
    v.push(rng.pick(b"0123456789"));
    let has_revision = rng.below(2) == 0;
    let upstream_chars: &[u8] = if has_revision {
        b"000112399..~~+aAzb-"
    } else {
        b"000112399..~~+aAzb"
    };
    for _ in 0..rng.below(7) {
        v.push(rng.pick(upstream_chars));
    }
    if has_revision {
        v.push('-');
        v.push(rng.pick(b"0129a~+."));
        for _ in 0..rng.below(4) {
            v.push(rng.pick(b"00129a~+.b"));
        }
    }
    v
}

/// `dpkg --compare-versions a OP b`: true, false, or a panic when dpkg
/// rejects the input.
fn dpkg_says(a: &str, op: &str, b: &str) -> bool {
    let status = Command::new("dpkg")
        .args(["--compare-versions", a, op, b])
        .status()
        .expect("run dpkg");
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("dpkg --compare-versions {a} {op} {b} exited with {other:?}"),
    }
}

fn have_dpkg() -> bool {
    Command::new("dpkg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Generated versions are sorted by our comparison; dpkg must agree on every
/// adjacent pair (strictly less, or equal). Since both orders are total
/// preorders, agreement on adjacent pairs is agreement on all pairs of the
/// list, so a few thousand dpkg runs check millions of pairs.
#[test]
fn agrees_with_dpkg_on_generated_versions() {
    if !have_dpkg() {
        if std::env::var_os("HARDEND_FAST_TESTS").is_some_and(|v| v == "1") {
            eprintln!("SKIP: dpkg is missing and HARDEND_FAST_TESTS=1");
            return;
        }
        panic!("dpkg is required by this test and is missing");
    }
    let seed = std::env::var("POSTURE_DPKG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    let mut rng = Rng(seed);
    let mut versions: Vec<String> = (0..4000)
        .map(|_| version(&mut rng))
        .filter(|v| DpkgVersion::parse(v).is_ok())
        .collect();
    versions.sort_by(|a, b| compare(a, b));
    versions.dedup();
    let pairs: Vec<(String, String, Ordering)> = versions
        .windows(2)
        .map(|w| (w[0].clone(), w[1].clone(), compare(&w[0], &w[1])))
        .collect();
    assert!(pairs.len() > 2500, "too few distinct versions generated");
    // Two workers: each pair is one dpkg run.
    let (left, right) = pairs.split_at(pairs.len() / 2);
    let check = |chunk: &[(String, String, Ordering)]| -> Vec<String> {
        chunk
            .iter()
            .filter_map(|(a, b, ours)| {
                let (op, want) = match ours {
                    Ordering::Less => ("lt", true),
                    Ordering::Equal => ("eq", true),
                    Ordering::Greater => ("gt", false),
                };
                (dpkg_says(a, op, b) != want)
                    .then(|| format!("{a} {op} {b}: ours {ours:?}, dpkg disagrees"))
            })
            .collect()
    };
    let disagreements: Vec<String> = std::thread::scope(|s| {
        let h = s.spawn(|| check(left));
        let mut out = check(right);
        out.extend(h.join().expect("worker"));
        out
    });
    assert!(
        disagreements.is_empty(),
        "seed {seed}: {} disagreements with dpkg, e.g. {:?}",
        disagreements.len(),
        &disagreements[..disagreements.len().min(10)]
    );
}
