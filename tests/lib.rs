//! Helpers shared by the end-to-end tests: locating the built programs and the
//! fixture trees, and requiring the real components a test needs.

use std::path::PathBuf;

/// The repository's top directory.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// The shipped policies directory.
pub fn shipped_policies() -> PathBuf {
    repo_root().join("policies")
}

/// A program built by this workspace (`hardend`, ...), next to the test binary's
/// own target directory. Panics with a clear message when it was not built.
pub fn program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} was not built: run `cargo build --workspace` (or `cargo nextest run --workspace`) first",
        path.display()
    );
    path
}

/// True when the fast subset was asked for explicitly (`HARDEND_FAST_TESTS=1`):
/// then tests that need root-only real components skip, saying why. Without
/// it, a missing component fails the test.
pub fn fast_subset() -> bool {
    std::env::var_os("HARDEND_FAST_TESTS").is_some_and(|v| v == "1")
}

/// Returns false (after printing why) when the test should be skipped because
/// the fast subset was asked for; panics when a required component is missing
/// and the full suite is running.
pub fn require(what: &str, available: bool) -> bool {
    if available {
        return true;
    }
    if fast_subset() {
        eprintln!("SKIP: {what} is not available and HARDEND_FAST_TESTS=1 asked for the fast subset");
        return false;
    }
    panic!("{what} is required by this test and is missing (install it, see README.md; or set HARDEND_FAST_TESTS=1 for the fast subset)");
}

/// Whether a command exists on PATH (or as an absolute path).
pub fn have_command(cmd: &str) -> bool {
    if cmd.contains('/') {
        return std::path::Path::new(cmd).exists();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
        .unwrap_or(false)
}

/// Whether this process is root (namespaces, chown in fixtures).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
