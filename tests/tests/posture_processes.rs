//! Deleted code still running: a process started from a copied binary (and
//! with a copied library preloaded) whose files are then deleted is found
//! by the live probe with its pid; once it exits, nothing is reported.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hardend_engine::{Context, Status, evaluate, required_facts};
use hardend_facts::posture::ProcessesFact;
use hardend_facts::{FactKey, Facts, Live};
use hardend_probe::Probe;

fn live_processes() -> ProcessesFact {
    let mut facts = Facts::default();
    Probe::new("/").collect_one(&FactKey::Processes, &mut facts);
    match facts.processes {
        Some(Ok(Live::Value(f))) => f,
        other => panic!("the live processes probe failed: {other:?}"),
    }
}

/// The files the probe reports for `pid`.
fn deleted_of(fact: &ProcessesFact, pid: u32) -> Vec<(String, bool)> {
    fact.deleted
        .iter()
        .filter(|d| d.pid == pid)
        .map(|d| (d.file.clone(), d.executable))
        .collect()
}

/// A shared library that any program can preload harmlessly.
fn some_library() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/usr/lib/aarch64-linux-gnu/libz.so.1",
        "/usr/lib64/libz.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
}

/// Waits until the child has mapped `file` (the dynamic loader runs first).
fn wait_mapped(child: &Child, file: &Path) {
    let maps = format!("/proc/{}/maps", child.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::fs::read_to_string(&maps).is_ok_and(|m| m.contains(&*file.to_string_lossy())) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{} never mapped {}", child.id(), file.display());
}

#[test]
fn a_deleted_binary_and_library_are_found_until_the_process_exits() {
    let Some(lib) = some_library() else {
        hardend_tests::require("libz.so.1 (zlib1g)", false);
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("posture-sleep");
    let copied_lib = dir.path().join("libposture.so.1");
    std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
    std::fs::copy(&lib, &copied_lib).expect("copy library");
    let mut child = Command::new(&bin)
        .arg("60")
        .env("LD_PRELOAD", &copied_lib)
        .spawn()
        .expect("start the copied sleep");
    wait_mapped(&child, &copied_lib);
    let pid = child.id();

    // Before deletion the files exist: nothing is reported for the process.
    assert_eq!(deleted_of(&live_processes(), pid), vec![]);

    std::fs::remove_file(&bin).expect("delete the binary");
    std::fs::remove_file(&copied_lib).expect("delete the library");
    let fact = live_processes();
    let mut found = deleted_of(&fact, pid);
    found.sort();
    let mut want = vec![
        (bin.display().to_string(), true),
        (copied_lib.display().to_string(), false),
    ];
    want.sort();
    assert_eq!(found, want);
    let comm = fact
        .deleted
        .iter()
        .find(|d| d.pid == pid)
        .map(|d| d.command.clone());
    assert_eq!(comm.as_deref(), Some("posture-sleep"));

    // The engine names the pid, the command and the file.
    let policy = hardend_policy::parse_policy(
        "policy: { id: p, title: P, version: \"1\" }\nrules:\n  - id: stale\n    title: stale\n    severity: high\n    check:\n      processes: { deleted_files_mapped: false, command: posture-sleep }\n",
        Path::new("p.yaml"),
    )
    .expect("policy");
    let facts = Probe::new("/").collect(&required_facts(std::slice::from_ref(&policy)));
    let ctx = Context {
        waivers: &[],
        today: hardend::jiff::civil::date(2026, 11, 22),
    };
    let result = &evaluate(&policy, &facts, &ctx)[0];
    assert_eq!(result.status, Status::Fail);
    let actual = result.actual.as_deref().unwrap_or_default();
    assert!(
        actual.contains(&format!("pid {pid} (posture-sleep) {}", bin.display())),
        "{actual}"
    );
    assert!(
        result
            .evidence
            .iter()
            .any(|e| e.path == format!("/proc/{pid}/exe")),
        "{:?}",
        result.evidence
    );

    // The process restarts (here: exits): nothing is reported any more.
    child.kill().expect("kill");
    child.wait().expect("wait");
    let after = live_processes();
    assert_eq!(deleted_of(&after, pid), vec![]);
    assert!(
        !after
            .deleted
            .iter()
            .any(|d| d.file.starts_with(&*dir.path().to_string_lossy())),
        "{:?}",
        after.deleted
    );
    let result = &evaluate(
        &policy,
        &Probe::new("/").collect(&required_facts(std::slice::from_ref(&policy))),
        &ctx,
    )[0];
    assert_eq!(result.status, Status::Pass, "{result:?}");
}

#[test]
fn processes_are_not_applicable_on_an_offline_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut facts = Facts::default();
    Probe::new(dir.path()).collect_one(&FactKey::Processes, &mut facts);
    assert!(
        matches!(facts.processes, Some(Ok(Live::NotApplicable(_)))),
        "{:?}",
        facts.processes
    );
}
