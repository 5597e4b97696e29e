//! The data-driven fixture harness: every case under `tests/fixtures/cases/`
//! is evaluated and compared with its `expected.yaml` (see
//! `tests/fixtures/README.md` for the format).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use hardend_engine::{Context, RuleResult, Status};
use hardend_facts::Facts;
use hardend_policy::{Policy, Waiver};
use serde::Deserialize;

/// The date every case is evaluated on, so waiver cases do not rot.
fn today() -> hardend::jiff::civil::Date {
    hardend::jiff::civil::date(2026, 11, 22)
}

fn cases_dir() -> PathBuf {
    hardend_tests::fixtures().join("cases")
}

/// One line of `expected.yaml`: a bare status, or a status with substrings
/// that `actual` and some evidence line must contain.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Expectation {
    Status(String),
    Detailed(Detailed),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Detailed {
    status: String,
    actual: Option<String>,
    evidence: Option<String>,
}

impl Expectation {
    fn status(&self) -> &str {
        match self {
            Expectation::Status(s) => s,
            Expectation::Detailed(d) => &d.status,
        }
    }
}

/// `setup.yaml`: what git cannot store.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Setup {
    /// Path -> octal mode (`"0640"`).
    modes: BTreeMap<String, String>,
    /// Path -> `uid:gid`.
    owners: BTreeMap<String, String>,
    /// Link path -> target (stored as written).
    symlinks: BTreeMap<String, String>,
    /// Directories to create (empty ones git would drop).
    dirs: Vec<String>,
}

/// A root-relative path joined below `root`, refusing `..`.
fn below(root: &Path, path: &str) -> Result<PathBuf, String> {
    let rel = Path::new(path);
    if rel
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(format!("{path}: `..` is not allowed in setup paths"));
    }
    Ok(root.join(rel.strip_prefix("/").unwrap_or(rel)))
}

/// Copies a tree, keeping symlinks as symlinks and permission bits as they are.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    fs::create_dir_all(to).map_err(|e| err(to, e))?;
    for entry in fs::read_dir(from).map_err(|e| err(from, e))? {
        let entry = entry.map_err(|e| err(from, e))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let kind = entry.file_type().map_err(|e| err(&src, e))?;
        if kind.is_symlink() {
            let target = fs::read_link(&src).map_err(|e| err(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| err(&dst, e))?;
        } else if kind.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(|e| err(&src, e))?;
        }
    }
    Ok(())
}

fn apply_setup(root: &Path, setup: &Setup) -> Result<(), String> {
    for dir in &setup.dirs {
        let p = below(root, dir)?;
        fs::create_dir_all(&p).map_err(|e| format!("{dir}: {e}"))?;
    }
    for (link, target) in &setup.symlinks {
        let p = below(root, link)?;
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("{link}: {e}"))?;
        }
        std::os::unix::fs::symlink(target, &p).map_err(|e| format!("{link}: {e}"))?;
    }
    for (path, mode) in &setup.modes {
        let bits = u32::from_str_radix(mode.trim_start_matches("0o"), 8)
            .map_err(|e| format!("{path}: mode {mode:?}: {e}"))?;
        fs::set_permissions(below(root, path)?, fs::Permissions::from_mode(bits))
            .map_err(|e| format!("{path}: chmod: {e}"))?;
    }
    for (path, owner) in &setup.owners {
        let (uid, gid) = owner
            .split_once(':')
            .and_then(|(u, g)| Some((u.parse::<u32>().ok()?, g.parse::<u32>().ok()?)))
            .ok_or_else(|| format!("{path}: owner {owner:?} is not uid:gid"))?;
        std::os::unix::fs::lchown(below(root, path)?, Some(uid), Some(gid))
            .map_err(|e| format!("{path}: chown {owner} (the suite runs as root): {e}"))?;
    }
    Ok(())
}

/// The policies a case evaluates: its own `policy.yaml` or `policies/`, else
/// the shipped ones.
fn case_policies(case: &Path) -> Result<Vec<Policy>, String> {
    let own: Vec<PathBuf> = ["policy.yaml", "policies"]
        .iter()
        .map(|n| case.join(n))
        .filter(|p| p.exists())
        .collect();
    let paths = if own.is_empty() {
        vec![hardend_tests::shipped_policies()]
    } else {
        own
    };
    hardend_policy::load_paths(&paths).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn uses_shipped_policies(case: &Path) -> bool {
    !case.join("policy.yaml").exists() && !case.join("policies").exists()
}

fn case_waivers(case: &Path) -> Result<Vec<Waiver>, String> {
    let path = case.join("config.yaml");
    if !path.exists() {
        return Ok(Vec::new());
    }
    hardend_policy::config::load_config(&path)
        .map(|c| c.waivers)
        .map_err(|errors| {
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
}

fn read_yaml<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn expectations(case: &Path) -> Result<BTreeMap<String, Expectation>, String> {
    read_yaml(&case.join("expected.yaml"))
}

/// Evaluates one case: the facts file through the engine, or the root tree
/// (copied and set up) through the agent's check.
fn evaluate_case(case: &Path) -> Result<Vec<RuleResult>, String> {
    let policies = case_policies(case)?;
    let waivers = case_waivers(case)?;
    let facts_path = case.join("facts.json");
    if facts_path.exists() {
        let text = fs::read_to_string(&facts_path).map_err(|e| format!("facts.json: {e}"))?;
        let facts: Facts = serde_json::from_str(&text).map_err(|e| format!("facts.json: {e}"))?;
        let ctx = Context {
            waivers: &waivers,
            today: today(),
        };
        return Ok(policies
            .iter()
            .flat_map(|p| hardend_engine::evaluate(p, &facts, &ctx))
            .collect());
    }
    let tmp = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
    let root = tmp.path().join("root");
    if case.join("root").is_dir() {
        copy_tree(&case.join("root"), &root)?;
    } else {
        fs::create_dir_all(&root).map_err(|e| format!("root: {e}"))?;
    }
    if case.join("setup.yaml").exists() {
        let setup: Setup = read_yaml(&case.join("setup.yaml"))?;
        apply_setup(&root, &setup)?;
    }
    let report = hardend::check_policies(&root, &policies, &waivers, Some(today()))
        .map_err(|e| e.to_string())?;
    Ok(report.results)
}

fn describe(r: &RuleResult) -> String {
    let evidence: Vec<String> = r
        .evidence
        .iter()
        .map(hardend::output::evidence_line)
        .collect();
    format!(
        "{} (expected: {:?}, actual: {:?}, evidence: {:?}, message: {:?})",
        r.status, r.expected, r.actual, evidence, r.message
    )
}

/// Every mismatch of one case, as lines.
fn compare(case: &Path) -> Vec<String> {
    let expected = match expectations(case) {
        Ok(e) => e,
        Err(e) => return vec![format!("expected.yaml: {e}")],
    };
    if expected.is_empty() {
        return vec!["expected.yaml lists no rule".to_string()];
    }
    let results = match evaluate_case(case) {
        Ok(r) => r,
        Err(e) => return vec![format!("cannot evaluate: {e}")],
    };
    let mut problems = Vec::new();
    for (key, want) in &expected {
        let Some(got) = results
            .iter()
            .find(|r| format!("{}/{}", r.policy, r.rule) == *key)
        else {
            problems.push(format!("{key}: no such rule was evaluated"));
            continue;
        };
        if got.status.as_str() != want.status() {
            problems.push(format!(
                "{key}: want {}, got {}",
                want.status(),
                describe(got)
            ));
            continue;
        }
        if let Expectation::Detailed(d) = want {
            if let Some(a) = &d.actual
                && !got.actual.as_deref().unwrap_or("").contains(a.as_str())
            {
                problems.push(format!(
                    "{key}: actual should contain {a:?}, got {}",
                    describe(got)
                ));
            }
            if let Some(ev) = &d.evidence
                && !got
                    .evidence
                    .iter()
                    .any(|e| hardend::output::evidence_line(e).contains(ev.as_str()))
            {
                problems.push(format!(
                    "{key}: no evidence contains {ev:?}, got {}",
                    describe(got)
                ));
            }
        }
    }
    problems
}

fn all_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(cases_dir())
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    cases.sort();
    cases
}

#[test]
fn every_fixture_case_gets_its_expected_statuses() {
    let cases = all_cases();
    assert!(
        !cases.is_empty(),
        "no cases under {}",
        cases_dir().display()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let name = case
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for p in compare(case) {
            failures.push(format!("{name}: {p}"));
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} mismatch(es) across {} case(s):\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_shipped_rule_has_a_passing_and_a_failing_case() {
    let shipped = hardend_policy::load_paths(&[hardend_tests::shipped_policies()])
        .unwrap_or_else(|e| panic!("shipped policies do not load: {e:?}"));
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for case in all_cases().iter().filter(|c| uses_shipped_policies(c)) {
        // A broken expected.yaml is reported by the other test.
        if let Ok(expected) = expectations(case) {
            for (key, want) in expected {
                seen.entry(key)
                    .or_default()
                    .insert(want.status().to_string());
            }
        }
    }
    let mut missing = Vec::new();
    for policy in &shipped {
        for rule in &policy.rules {
            let key = format!("{}/{}", policy.id, rule.id);
            let statuses = seen.get(&key);
            for status in [Status::Pass, Status::Fail] {
                if !statuses.is_some_and(|s| s.contains(status.as_str())) {
                    missing.push(format!("{key}: no case with {status}"));
                }
            }
        }
    }
    for m in &missing {
        eprintln!("{m}");
    }
    assert!(
        missing.is_empty(),
        "{} shipped rule/status pair(s) have no fixture case:\n{}",
        missing.len(),
        missing.join("\n")
    );
}
