//! Benchmark: one full evaluation of every shipped policy, in process and as a
//! whole `hardend check` process. Prints its figures; run with
//! `cargo bench -p hardend-tests --bench full_scan`.
//!
//! Roots measured: the running host (`/`), and the cached debootstrapped
//! Debian root when it exists (`HARDEND_DEBIAN_ROOT`, default
//! `/var/cache/hardend-tests/bookworm-ssh`; the test suite builds it), and
//! a root whose rpm sqlite database holds 1000 packages (`HARDEND_RPM_ROOT`,
//! default `/var/cache/hardend-tests/rpmdb-1000`; built here on first use
//! when rpmbuild is installed, which takes minutes).
//! `HARDEND_BENCH_ITERS` sets the iteration count (default 200).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hardend_engine::{Context, evaluate, required_facts};
use hardend_probe::Probe;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let iters: usize = std::env::var("HARDEND_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let policies_dir = hardend_tests::shipped_policies();
    let policies = match hardend_policy::load_paths(std::slice::from_ref(&policies_dir)) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors {
                eprintln!("{e}");
            }
            std::process::exit(2);
        }
    };
    let rules: usize = policies.iter().map(|p| p.rules.len()).sum();
    println!(
        "shipped policies: {} files, {} rules; {} iterations per figure",
        policies.len(),
        rules,
        iters
    );

    let mut roots: Vec<PathBuf> = vec![PathBuf::from("/")];
    let debian = std::env::var_os("HARDEND_DEBIAN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hardend-tests/bookworm-ssh"));
    if debian.join("var/lib/dpkg/status").exists() {
        roots.push(debian);
    } else {
        println!(
            "(no debootstrapped root at {}: run the test suite once to build it)",
            debian.display()
        );
    }

    match hardend_tests::rpm_big_root() {
        Some(root) => roots.push(root),
        None => println!("(no rpm root: rpm and rpmbuild are needed to build it)"),
    }

    let today = jiff::Zoned::now().date();
    for root in &roots {
        let samples = measure(iters, || {
            let probe = Probe::new(root);
            let keys = required_facts(&policies);
            let facts = probe.collect(&keys);
            let ctx = Context {
                waivers: &[],
                today,
            };
            let n: usize = policies
                .iter()
                .map(|p| evaluate(p, &facts, &ctx).len())
                .sum();
            assert_eq!(n, rules);
        });
        report(
            &format!("in-process full evaluation, root {}", root.display()),
            &samples,
        );
    }

    // Where the time goes on each root: the slowest facts, each probed alone.
    for root in &roots {
        let probe = Probe::new(root);
        let keys = required_facts(&policies);
        let mut costs: Vec<(Duration, String)> = keys
            .iter()
            .map(|key| {
                let mut facts = hardend_facts::Facts::default();
                let t = Instant::now();
                for _ in 0..5 {
                    probe.collect_one(key, &mut facts);
                }
                (t.elapsed() / 5, format!("{key:?}"))
            })
            .collect();
        costs.sort_by_key(|c| std::cmp::Reverse(c.0));
        let line: Vec<String> = costs
            .iter()
            .take(5)
            .map(|(d, k)| format!("{k} {:.2} ms", d.as_secs_f64() * 1000.0))
            .collect();
        println!("slowest facts on {}: {}", root.display(), line.join(", "));
    }

    let hardend = release_or_debug_program("hardend");
    for root in &roots {
        let mut peak_rss_kb = 0i64;
        let samples = measure(iters.min(50), || {
            let (ok, rss) = run_measured(&hardend, root, &policies_dir);
            assert!(ok, "hardend check did not run");
            peak_rss_kb = peak_rss_kb.max(rss);
        });
        report(
            &format!(
                "`hardend check --format json` process, root {}",
                root.display()
            ),
            &samples,
        );
        println!("    peak RSS {:.1} MB", peak_rss_kb as f64 / 1024.0);
    }
}

fn measure(iters: usize, mut f: impl FnMut()) -> Vec<Duration> {
    // One warm-up run fills the page cache.
    f();
    let mut samples = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    samples.sort();
    samples
}

fn report(what: &str, sorted: &[Duration]) {
    let pct = |p: f64| sorted[((sorted.len() as f64 - 1.0) * p).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: min {:.2} ms, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target < 20 ms)",
        ms(sorted[0]),
        ms(pct(0.5)),
        ms(pct(0.99)),
        ms(sorted[sorted.len() - 1])
    );
}

/// The `hardend` binary of the profile the bench runs in (release for `cargo bench`).
fn release_or_debug_program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --release -p hardend` before the bench",
        path.display()
    );
    path
}

/// Runs one `hardend check` and returns (exited with 0 or 1, its peak RSS in KiB).
fn run_measured(hardend: &Path, root: &Path, policies: &Path) -> (bool, i64) {
    // The child is reaped below by wait4, which also gives its rusage.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(hardend)
        .arg("check")
        .arg("--root")
        .arg(root)
        .arg("--policy")
        .arg(policies)
        .args(["--format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn hardend");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own child, not yet reaped; both pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4 failed");
    let code = libc::WEXITSTATUS(status);
    (
        libc::WIFEXITED(status) && (code == 0 || code == 1),
        usage.ru_maxrss,
    )
}
