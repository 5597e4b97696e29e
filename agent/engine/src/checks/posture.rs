//! Patch posture and certificate checks: `patches`, `reboot`, `processes`
//! and `certificate`.
//!
//! Certificates are judged against `Context::today`, never a clock: a
//! certificate's days of validity are the whole days from today (UTC) to
//! the day of its `notAfter`.

use hardend_facts::posture::CertificateInfo;
use hardend_facts::{Evidence, Facts, Live, PackageFormat};
use hardend_policy::{CertificateCheck, PatchesCheck, ProcessesCheck, RebootCheck};

use crate::Outcome;

/// At most this many items are named in `actual`; the evidence has them all.
const MAX_NAMED: usize = 20;

/// Hashes too weak for a certificate signature.
const WEAK_HASHES: [&str; 4] = ["md2", "md4", "md5", "sha1"];

fn named(items: &[String]) -> String {
    let mut out = items
        .iter()
        .take(MAX_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > MAX_NAMED {
        out.push_str(&format!(" and {} more", items.len() - MAX_NAMED));
    }
    out
}

/// `patches: { security_updates_pending: N }`.
pub(crate) fn eval_patches(check: &PatchesCheck, facts: &Facts) -> Outcome {
    let max = check.security_updates_pending;
    let expected = if max == 0 {
        "no pending security update".to_string()
    } else {
        format!("at most {max} pending security updates")
    };
    let fact = match &facts.patches {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(f)) => f,
    };
    if fact.security_lists.is_empty() {
        // Without a security source the host cannot learn of security
        // fixes: that fails, whatever is installed.
        let (actual, path, why) = match fact.format {
            PackageFormat::Dpkg => (
                "no apt list of a security suite under /var/lib/apt/lists",
                "/var/lib/apt/lists",
                "no *_Packages list whose Release names a security suite",
            ),
            PackageFormat::Rpm => (
                "no dnf updateinfo (security advisories) cached under /var/cache/dnf, /var/cache/libdnf5 or /var/cache/yum",
                "/var/cache/dnf",
                "no cached repodata/repomd.xml names an updateinfo file that was downloaded",
            ),
        };
        return Outcome::verdict(
            false,
            expected,
            format!("{actual}: the host cannot learn of security fixes"),
            vec![Evidence::text(path, why)],
        );
    }
    let count = fact.pending.len();
    let ok = u32::try_from(count).is_ok_and(|c| c <= max);
    if count == 0 {
        return Outcome::verdict(
            ok,
            expected,
            format!(
                "0 pending ({} installed packages against {} security {})",
                fact.installed_count,
                fact.security_lists.len(),
                match fact.format {
                    PackageFormat::Dpkg => "lists",
                    PackageFormat::Rpm => "updateinfo files",
                }
            ),
            Vec::new(),
        );
    }
    let items: Vec<String> = fact
        .pending
        .iter()
        .map(|p| {
            format!(
                "{} {} -> {} ({})",
                p.package, p.installed, p.candidate, p.suite
            )
        })
        .collect();
    Outcome::verdict(
        ok,
        expected,
        format!("{count} pending: {}", named(&items)),
        fact.pending.iter().map(|p| p.evidence.clone()).collect(),
    )
}

/// `reboot: { required: BOOL }`.
pub(crate) fn eval_reboot(check: &RebootCheck, facts: &Facts) -> Outcome {
    let expected = if check.required {
        "a reboot is pending".to_string()
    } else {
        "no reboot pending".to_string()
    };
    let fact = match &facts.reboot {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(f)) => f,
    };
    let required = fact.required();
    let actual = if required {
        let why: Vec<String> = fact
            .reasons
            .iter()
            .map(|e| e.text.clone().unwrap_or_else(|| e.path.clone()))
            .collect();
        format!("reboot required: {}", why.join("; "))
    } else {
        match &fact.running_kernel {
            Some(k) => format!("no reboot pending (running kernel {k})"),
            None => "no reboot pending".to_string(),
        }
    };
    Outcome::verdict(
        required == check.required,
        expected,
        actual,
        fact.reasons.clone(),
    )
}

/// `processes: { deleted_files_mapped: BOOL, command: [..] }`.
pub(crate) fn eval_processes(check: &ProcessesCheck, facts: &Facts) -> Outcome {
    let who = if check.commands.is_empty() {
        "any process".to_string()
    } else {
        check.commands.join(", ")
    };
    let expected = if check.deleted_files_mapped {
        format!("{who} maps a deleted file")
    } else {
        format!("no deleted file mapped by {who}")
    };
    let fact = match &facts.processes {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(Live::NotApplicable(why))) => return Outcome::not_applicable(why.clone()),
        Some(Ok(Live::Value(f))) => f,
    };
    let found: Vec<_> = fact
        .deleted
        .iter()
        .filter(|d| check.commands.is_empty() || check.commands.contains(&d.command))
        .collect();
    let items: Vec<String> = found
        .iter()
        .map(|d| format!("pid {} ({}) {}", d.pid, d.command, d.file))
        .collect();
    let evidence = found
        .iter()
        .map(|d| {
            let source = if d.executable { "exe" } else { "maps" };
            Evidence::text(
                format!("/proc/{}/{source}", d.pid),
                format!("pid {} ({}) runs {} (deleted)", d.pid, d.command, d.file),
            )
        })
        .collect();
    let actual = if items.is_empty() {
        format!("none ({} processes examined)", fact.scanned)
    } else {
        named(&items)
    };
    Outcome::verdict(
        items.is_empty() != check.deleted_files_mapped,
        expected,
        actual,
        evidence,
    )
}

/// The civil date (UTC) of a Unix time.
fn utc_date(seconds: i64) -> Option<jiff::civil::Date> {
    let ts = jiff::Timestamp::from_second(seconds).ok()?;
    Some(ts.to_zoned(jiff::tz::TimeZone::UTC).date())
}

/// Whole days from `today` to `date` (negative when it is past).
fn days_between(today: jiff::civil::Date, date: jiff::civil::Date) -> Option<i64> {
    let span = today.until((jiff::Unit::Day, date)).ok()?;
    Some(i64::from(span.get_days()))
}

fn shown_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| format!("@{seconds}"))
}

fn key_text(c: &CertificateInfo) -> String {
    match (&c.curve, c.key_bits) {
        (Some(curve), _) => format!("{} {curve}", c.key_type),
        (None, Some(bits)) => format!("{} {bits}-bit", c.key_type),
        (None, None) => c.key_type.clone(),
    }
}

/// What is wrong with one certificate, as short phrases.
fn problems(
    check: &CertificateCheck,
    c: &CertificateInfo,
    today: jiff::civil::Date,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let expiry =
        utc_date(c.not_after).ok_or_else(|| format!("notAfter {} is out of range", c.not_after))?;
    let left =
        days_between(today, expiry).ok_or_else(|| format!("cannot count the days to {expiry}"))?;
    let min = check.min_days_valid.unwrap_or(0);
    if left < 0 {
        out.push(format!("expired on {expiry}"));
    } else if left < min {
        out.push(format!("expires on {expiry}, in {left} days (< {min})"));
    }
    if let Some(start) = utc_date(c.not_before)
        && start > today
    {
        out.push(format!("not valid before {start}"));
    }
    // The first certificate of a file is the one presented; the rest are
    // its chain, whose root is self-signed by nature.
    if c.index == 0
        && let Some(want) = check.self_signed
        && c.self_signed != want
    {
        out.push(if c.self_signed {
            "self-signed".to_string()
        } else {
            "not self-signed".to_string()
        });
    }
    if let Some(min_bits) = check.min_key_bits {
        match c.rsa_equivalent_bits() {
            Some(bits) if bits >= min_bits => {}
            Some(_) => out.push(format!("{} key (< {min_bits} bits)", key_text(c))),
            None => out.push(format!("{} key of unknown strength", key_text(c))),
        }
    }
    // A trust anchor's own signature is never checked by clients.
    let anchor = c.self_signed && c.index > 0;
    if !check.allow_weak_signatures
        && !anchor
        && c.signature_hash
            .as_deref()
            .is_some_and(|h| WEAK_HASHES.contains(&h))
    {
        out.push(format!("signed with {}", c.signature_algorithm));
    }
    Ok(out)
}

fn certificate_expected(check: &CertificateCheck) -> String {
    let mut parts = vec![match check.min_days_valid {
        Some(d) if d > 0 => format!("valid for at least {d} more days"),
        _ => "not expired".to_string(),
    }];
    match check.self_signed {
        Some(false) => parts.push("not self-signed".to_string()),
        Some(true) => parts.push("self-signed".to_string()),
        None => {}
    }
    if let Some(bits) = check.min_key_bits {
        parts.push(format!("keys of at least {bits} bits (RSA-equivalent)"));
    }
    if !check.allow_weak_signatures {
        parts.push("no MD5 or SHA-1 signature".to_string());
    }
    format!("{}: {}", check.path, parts.join(", "))
}

/// `certificate: { path, min_days_valid, self_signed, min_key_bits }`.
pub(crate) fn eval_certificate(
    check: &CertificateCheck,
    facts: &Facts,
    today: jiff::civil::Date,
) -> Outcome {
    let expected = certificate_expected(check);
    let fact = match facts.certificates.get(&check.path) {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(f)) => f,
    };
    if !fact.exists {
        return Outcome::verdict(
            false,
            expected,
            "no such file or directory".to_string(),
            vec![Evidence::text(&check.path, "missing")],
        );
    }
    if fact.certificates.is_empty() {
        return Outcome::verdict(
            false,
            expected,
            "no certificate found".to_string(),
            fact.skipped.clone(),
        );
    }
    let mut failures = Vec::new();
    let mut evidence = Vec::new();
    let mut earliest: Option<(i64, &CertificateInfo)> = None;
    for c in &fact.certificates {
        let found = match problems(check, c, today) {
            Ok(p) => p,
            Err(why) => return Outcome::error(Some(expected), format!("{}: {why}", c.file)),
        };
        if earliest.is_none_or(|(t, _)| c.not_after < t) {
            earliest = Some((c.not_after, c));
        }
        let description = format!(
            "subject {}, issuer {}, notAfter {}, {} key, {}",
            c.subject,
            c.issuer,
            shown_time(c.not_after),
            key_text(c),
            c.signature_algorithm
        );
        if found.is_empty() {
            continue;
        }
        let who = if c.subject.is_empty() {
            format!("{}#{}", c.file, c.index)
        } else {
            c.subject.clone()
        };
        failures.push(format!("{who}: {}", found.join(", ")));
        evidence.push(Evidence::text(
            &c.file,
            format!("{description}: {}", found.join(", ")),
        ));
    }
    if failures.is_empty() {
        let actual = match earliest {
            Some((t, c)) => format!(
                "{} certificate(s) sound; the first to expire is {} on {}",
                fact.certificates.len(),
                c.subject,
                shown_time(t)
            ),
            None => "sound".to_string(),
        };
        let evidence = fact
            .certificates
            .iter()
            .take(MAX_NAMED)
            .map(|c| {
                Evidence::text(
                    &c.file,
                    format!(
                        "subject {}, issuer {}, notAfter {}",
                        c.subject,
                        c.issuer,
                        shown_time(c.not_after)
                    ),
                )
            })
            .collect();
        return Outcome::verdict(true, expected, actual, evidence);
    }
    Outcome::verdict(false, expected, named(&failures), evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Status;
    use hardend_facts::PatchesFact;
    use hardend_facts::posture::PendingUpdate;

    fn cert(not_after: &str, index: u32) -> CertificateInfo {
        let ts: jiff::Timestamp = not_after.parse().expect("timestamp");
        CertificateInfo {
            file: "/c.pem".into(),
            index,
            subject: "CN=a".into(),
            issuer: "CN=ca".into(),
            not_before: 0,
            not_after: ts.as_second(),
            self_signed: false,
            key_type: "RSA".into(),
            key_bits: Some(2048),
            curve: None,
            signature_algorithm: "sha256WithRSAEncryption".into(),
            signature_hash: Some("sha256".into()),
        }
    }

    fn check(min_days: Option<i64>) -> CertificateCheck {
        CertificateCheck {
            path: "/c.pem".into(),
            min_days_valid: min_days,
            self_signed: Some(false),
            min_key_bits: Some(2048),
            allow_weak_signatures: false,
        }
    }

    const TODAY: jiff::civil::Date = jiff::civil::date(2026, 11, 22);

    fn patches(fact: PatchesFact, max: u32) -> Outcome {
        let facts = Facts {
            patches: Some(Ok(fact)),
            ..Facts::default()
        };
        eval_patches(
            &PatchesCheck {
                security_updates_pending: max,
            },
            &facts,
        )
    }

    #[test]
    fn a_host_without_security_sources_fails_saying_where_it_looked() {
        let dpkg = patches(PatchesFact::default(), 0);
        assert_eq!(dpkg.status, Status::Fail);
        let actual = dpkg.actual.unwrap_or_default();
        assert!(
            actual.starts_with("no apt list of a security suite"),
            "{actual}"
        );
        assert!(
            actual.ends_with("cannot learn of security fixes"),
            "{actual}"
        );
        let rpm = patches(
            PatchesFact {
                format: PackageFormat::Rpm,
                installed_count: 3,
                ..PatchesFact::default()
            },
            5,
        );
        assert_eq!(rpm.status, Status::Fail);
        let actual = rpm.actual.unwrap_or_default();
        assert!(actual.starts_with("no dnf updateinfo"), "{actual}");
        assert!(
            actual.ends_with("cannot learn of security fixes"),
            "{actual}"
        );
        assert_eq!(rpm.evidence[0].path, "/var/cache/dnf");
    }

    #[test]
    fn rpm_advisories_are_named_in_actual_and_evidence() {
        let path = "/var/cache/dnf/baseos-1/repodata/x-updateinfo.xml.gz";
        let pending = PendingUpdate {
            package: "openssl".into(),
            architecture: "x86_64".into(),
            installed: "1:3.0.7-24.el9".into(),
            candidate: "1:3.0.7-25.el9".into(),
            suite: "RHSA-2024:1234".into(),
            severity: Some("Important".into()),
            evidence: Evidence::line(path, 12, "openssl ..."),
        };
        let fact = PatchesFact {
            pending: vec![pending],
            security_lists: vec![path.into()],
            installed_count: 2,
            format: PackageFormat::Rpm,
        };
        let out = patches(fact.clone(), 0);
        assert_eq!(out.status, Status::Fail);
        assert_eq!(
            out.actual.as_deref(),
            Some("1 pending: openssl 1:3.0.7-24.el9 -> 1:3.0.7-25.el9 (RHSA-2024:1234)")
        );
        assert_eq!(out.evidence[0].line, Some(12));
        assert_eq!(patches(fact, 1).status, Status::Pass);
        let current = patches(
            PatchesFact {
                security_lists: vec![path.into()],
                installed_count: 2,
                format: PackageFormat::Rpm,
                ..PatchesFact::default()
            },
            0,
        );
        assert_eq!(current.status, Status::Pass);
        assert_eq!(
            current.actual.as_deref(),
            Some("0 pending (2 installed packages against 1 security updateinfo files)")
        );
    }

    #[test]
    fn days_count_whole_utc_days_from_today() {
        let c = cert("2026-12-22T23:59:59Z", 0);
        assert_eq!(problems(&check(Some(30)), &c, TODAY), Ok(vec![]));
        assert_eq!(
            problems(&check(Some(31)), &c, TODAY),
            Ok(vec!["expires on 2026-12-22, in 30 days (< 31)".to_string()])
        );
        // The last day of validity is not expired yet; the day after is.
        assert_eq!(
            problems(&check(None), &cert("2026-11-22T00:00:01Z", 0), TODAY),
            Ok(vec![])
        );
        assert_eq!(
            problems(&check(None), &cert("2026-11-21T23:59:59Z", 0), TODAY),
            Ok(vec!["expired on 2026-11-21".to_string()])
        );
    }

    #[test]
    fn a_chain_root_is_exempt_from_self_signed_and_signature_rules() {
        let mut root = cert("2040-01-01T00:00:00Z", 1);
        root.self_signed = true;
        root.signature_algorithm = "sha1WithRSAEncryption".into();
        root.signature_hash = Some("sha1".into());
        assert_eq!(problems(&check(None), &root, TODAY), Ok(vec![]));
        root.index = 0;
        assert_eq!(
            problems(&check(None), &root, TODAY),
            Ok(vec![
                "self-signed".to_string(),
                "signed with sha1WithRSAEncryption".to_string()
            ])
        );
    }

    #[test]
    fn keys_compare_by_rsa_equivalent_strength() {
        let mut ec = cert("2040-01-01T00:00:00Z", 0);
        ec.key_type = "EC".into();
        ec.key_bits = Some(256);
        ec.curve = Some("P-256".into());
        assert_eq!(problems(&check(None), &ec, TODAY), Ok(vec![]));
        ec.key_bits = Some(192);
        ec.curve = Some("P-192".into());
        assert_eq!(
            problems(&check(None), &ec, TODAY),
            Ok(vec!["EC P-192 key (< 2048 bits)".to_string()])
        );
        ec.key_type = "1.2.3.4".into();
        ec.curve = None;
        ec.key_bits = None;
        assert_eq!(
            problems(&check(None), &ec, TODAY),
            Ok(vec!["1.2.3.4 key of unknown strength".to_string()])
        );
    }
}
