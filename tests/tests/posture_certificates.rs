//! Certificates made by the real `openssl` tool, read by the probe and
//! judged by the engine: expired, expiring in 10 days, self-signed, a
//! 1024-bit RSA key, a SHA-1 signature, a good chain, an EC key, a DER
//! file, and a directory of all of them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use hardend_engine::{Context, RuleResult, Status, evaluate, required_facts};
use hardend_facts::FactKey;
use hardend_probe::Probe;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and the certificates under test, written to `<root>/etc/ssl/hardend`.
struct Pki {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Pki {
    fn dir(&self) -> PathBuf {
        self.root.join("etc/ssl/hardend")
    }
}

fn make_pki() -> Option<Pki> {
    if !hardend_tests::require("openssl", hardend_tests::have_command("openssl")) {
        return None;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path().join("root");
    let out = root.join("etc/ssl/hardend");
    let work = tmp.path().join("work");
    fs::create_dir_all(&out).expect("mkdir");
    fs::create_dir_all(&work).expect("mkdir");
    let w = work.as_path();
    // The CA.
    openssl(
        w,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-sha256",
            "-nodes",
            "-days",
            "7300",
            "-subj",
            "/CN=Test Fleet CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    let leaf = |name: &str, key: &[&str], days: &str, md: &str| {
        let mut args = vec!["req", "-new", "-nodes", "-subj"];
        let subject = format!("/CN={name}");
        let keyout = format!("{name}.key");
        let csr = format!("{name}.csr");
        args.extend([subject.as_str()]);
        args.extend(key);
        args.extend(["-keyout", keyout.as_str(), "-out", csr.as_str()]);
        openssl(w, &args);
        let pem = format!("{name}.pem");
        openssl(
            w,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                days,
                md,
                "-out",
                &pem,
            ],
        );
    };
    leaf("good", &["-newkey", "rsa:2048"], "365", "-sha256");
    leaf("expiring", &["-newkey", "rsa:2048"], "10", "-sha256");
    leaf("weak1024", &["-newkey", "rsa:1024"], "365", "-sha256");
    leaf("sha1", &["-newkey", "rsa:2048"], "365", "-sha1");
    leaf(
        "ec",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        "365",
        "-sha256",
    );
    openssl(
        w,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-sha256",
            "-nodes",
            "-days",
            "365",
            "-subj",
            "/CN=selfsigned",
            "-keyout",
            "selfsigned.key",
            "-out",
            "selfsigned.pem",
        ],
    );
    // An expired certificate: `openssl ca` is the tool that takes explicit dates.
    fs::write(work.join("index.txt"), "").expect("index");
    fs::write(work.join("serial"), "1000\n").expect("serial");
    fs::write(
        work.join("ca.cnf"),
        format!(
            "[ca]\ndefault_ca = t\n[t]\ndatabase = {d}/index.txt\nnew_certs_dir = {d}\nserial = {d}/serial\ndefault_md = sha256\npolicy = any\nunique_subject = no\n[any]\ncommonName = supplied\n",
            d = work.display()
        ),
    )
    .expect("ca.cnf");
    openssl(
        w,
        &[
            "req",
            "-new",
            "-nodes",
            "-newkey",
            "rsa:2048",
            "-subj",
            "/CN=expired",
            "-keyout",
            "expired.key",
            "-out",
            "expired.csr",
        ],
    );
    openssl(
        w,
        &[
            "ca",
            "-batch",
            "-config",
            "ca.cnf",
            "-cert",
            "ca.pem",
            "-keyfile",
            "ca.key",
            "-in",
            "expired.csr",
            "-startdate",
            "20200101000000Z",
            "-enddate",
            "20210101000000Z",
            "-notext",
            "-out",
            "expired.pem",
        ],
    );
    // The files under test: every leaf followed by the CA, as servers present them.
    let ca = fs::read(work.join("ca.pem")).expect("ca.pem");
    for name in ["good", "expiring", "weak1024", "sha1", "ec", "expired"] {
        let mut chain = fs::read(work.join(format!("{name}.pem"))).expect("leaf");
        chain.extend_from_slice(&ca);
        fs::write(out.join(format!("{name}.pem")), chain).expect("write chain");
    }
    fs::copy(work.join("selfsigned.pem"), out.join("selfsigned.pem")).expect("copy");
    openssl(
        w,
        &[
            "x509", "-in", "good.pem", "-outform", "DER", "-out", "good.der",
        ],
    );
    fs::copy(work.join("good.der"), out.join("good.der")).expect("copy");
    // A private key in the directory is not a certificate and is skipped.
    fs::copy(work.join("good.key"), out.join("good.key")).expect("copy");
    Some(Pki { _tmp: tmp, root })
}

fn policy(paths: &[&str], extra: &str) -> hardend_policy::Policy {
    let mut text =
        String::from("policy: { id: certs, title: Certificates, version: \"1\" }\nrules:\n");
    for (i, path) in paths.iter().enumerate() {
        text.push_str(&format!(
            "  - id: cert-{i}\n    title: {path}\n    severity: high\n    check:\n      certificate: {{ path: {path}, min_days_valid: 30, self_signed: false, min_key_bits: 2048{extra} }}\n"
        ));
    }
    hardend_policy::parse_policy(&text, Path::new("certs.yaml"))
        .unwrap_or_else(|e| panic!("policy: {e:?}"))
}

fn run(root: &Path, policy: &hardend_policy::Policy) -> Vec<RuleResult> {
    let probe = Probe::new(root);
    let facts = probe.collect(&required_facts(std::slice::from_ref(policy)));
    let ctx = Context {
        waivers: &[],
        today: hardend::jiff::Zoned::now().date(),
    };
    evaluate(policy, &facts, &ctx)
}

#[test]
fn each_kind_of_bad_certificate_fails_for_its_own_reason() {
    let Some(pki) = make_pki() else { return };
    let cases: &[(&str, Status, &str)] = &[
        (
            "/etc/ssl/hardend/good.pem",
            Status::Pass,
            "2 certificate(s) sound",
        ),
        ("/etc/ssl/hardend/ec.pem", Status::Pass, "sound"),
        (
            "/etc/ssl/hardend/good.der",
            Status::Pass,
            "1 certificate(s) sound",
        ),
        (
            "/etc/ssl/hardend/expired.pem",
            Status::Fail,
            "CN=expired: expired on 2021-01-01",
        ),
        (
            "/etc/ssl/hardend/expiring.pem",
            Status::Fail,
            "CN=expiring: expires on",
        ),
        (
            "/etc/ssl/hardend/selfsigned.pem",
            Status::Fail,
            "CN=selfsigned: self-signed",
        ),
        (
            "/etc/ssl/hardend/weak1024.pem",
            Status::Fail,
            "CN=weak1024: RSA 1024-bit key (< 2048 bits)",
        ),
        (
            "/etc/ssl/hardend/sha1.pem",
            Status::Fail,
            "CN=sha1: signed with sha1WithRSAEncryption",
        ),
        (
            "/etc/ssl/hardend/missing.pem",
            Status::Fail,
            "no such file or directory",
        ),
    ];
    let paths: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let results = run(&pki.root, &policy(&paths, ""));
    for ((path, status, actual), result) in cases.iter().zip(&results) {
        assert_eq!(result.status, *status, "{path}: {result:?}");
        let got = result.actual.as_deref().unwrap_or_default();
        assert!(
            got.contains(actual),
            "{path}: actual {got:?} lacks {actual:?}"
        );
    }
    // Expiring in 10 days is 9 or 10 whole days from today, depending on the hour.
    let expiring = results[4].actual.as_deref().unwrap_or_default();
    assert!(
        expiring.contains("in 10 days (< 30)") || expiring.contains("in 9 days (< 30)"),
        "{expiring}"
    );
    // Each failing certificate's evidence names its subject, issuer and notAfter.
    let expired = &results[3].evidence[0];
    assert_eq!(expired.path, "/etc/ssl/hardend/expired.pem");
    let text = expired.text.as_deref().unwrap_or_default();
    assert!(
        text.contains("subject CN=expired, issuer CN=Test Fleet CA, notAfter 2021-01-01T00:00:00Z"),
        "{text}"
    );
}

#[test]
fn the_probe_reports_keys_signatures_and_self_signatures() {
    let Some(pki) = make_pki() else { return };
    let probe = Probe::new(&pki.root);
    let mut facts = hardend_facts::Facts::default();
    probe.collect_one(&FactKey::Certificate("/etc/ssl/hardend".into()), &mut facts);
    let fact = facts.certificates["/etc/ssl/hardend"]
        .as_ref()
        .expect("the directory is readable");
    assert!(fact.exists);
    let find = |file: &str, index: u32| {
        fact.certificates
            .iter()
            .find(|c| c.file == format!("/etc/ssl/hardend/{file}") && c.index == index)
            .unwrap_or_else(|| panic!("{file}#{index} not found in {:?}", fact.certificates))
    };
    // 6 chains of 2, a self-signed certificate and a DER file.
    assert_eq!(fact.certificates.len(), 14);
    assert_eq!(fact.skipped.len(), 1, "{:?}", fact.skipped);
    assert_eq!(fact.skipped[0].path, "/etc/ssl/hardend/good.key");
    let good = find("good.pem", 0);
    assert_eq!((good.key_type.as_str(), good.key_bits), ("RSA", Some(2048)));
    assert_eq!(good.signature_hash.as_deref(), Some("sha256"));
    assert!(!good.self_signed);
    assert!(find("good.pem", 1).self_signed, "the CA signed itself");
    assert!(find("selfsigned.pem", 0).self_signed);
    assert_eq!(find("weak1024.pem", 0).key_bits, Some(1024));
    assert_eq!(
        find("sha1.pem", 0).signature_algorithm,
        "sha1WithRSAEncryption"
    );
    let ec = find("ec.pem", 0);
    assert_eq!(
        (ec.key_type.as_str(), ec.curve.as_deref(), ec.key_bits),
        ("EC", Some("P-256"), Some(256))
    );
    assert_eq!(ec.rsa_equivalent_bits(), Some(3072));
    assert_eq!(find("good.der", 0).subject, "CN=good");
}

#[test]
fn a_directory_fails_once_per_bad_certificate_and_weak_signatures_can_be_allowed() {
    let Some(pki) = make_pki() else { return };
    let dir = pki.dir();
    assert!(dir.is_dir());
    let results = run(&pki.root, &policy(&["/etc/ssl/hardend"], ""));
    assert_eq!(results[0].status, Status::Fail);
    let mut failing: Vec<&str> = results[0]
        .evidence
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    failing.sort_unstable();
    assert_eq!(
        failing,
        vec![
            "/etc/ssl/hardend/expired.pem",
            "/etc/ssl/hardend/expiring.pem",
            "/etc/ssl/hardend/selfsigned.pem",
            "/etc/ssl/hardend/sha1.pem",
            "/etc/ssl/hardend/weak1024.pem",
        ]
    );
    let allowed = run(
        &pki.root,
        &policy(
            &["/etc/ssl/hardend/sha1.pem"],
            ", allow_weak_signatures: true",
        ),
    );
    assert_eq!(allowed[0].status, Status::Pass, "{:?}", allowed[0]);
}
