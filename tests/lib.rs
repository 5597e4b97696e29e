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

/// Whether python3 exists and can run `import IMPORTS` (a comma-separated
/// module list), so a test can say which Python package is missing.
pub fn python_imports(imports: &str) -> bool {
    have_command("python3")
        && std::process::Command::new("python3")
            .args(["-c", &format!("import {imports}")])
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Runs `tests/python/SCRIPT` with `args` (a client nobody here wrote) and
/// returns the one JSON value it printed; a failed run or other output
/// fails the test with the script's stderr.
pub fn run_python_json<I, A>(script: &str, args: I) -> serde_json::Value
where
    I: IntoIterator<Item = A>,
    A: AsRef<std::ffi::OsStr>,
{
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("tests/python").join(script))
        .args(args)
        // Keep the checkout free of bytecode caches.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{script} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("{script}: not JSON ({e}): {stdout}"))
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
        eprintln!(
            "SKIP: {what} is not available and HARDEND_FAST_TESTS=1 asked for the fast subset"
        );
        return false;
    }
    panic!(
        "{what} is required by this test and is missing (install it, see README.md; or set HARDEND_FAST_TESTS=1 for the fast subset)"
    );
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

/// A Debian bookworm minbase root with openssh-server, made by debootstrap and
/// cached outside the repository (`HARDEND_DEBIAN_ROOT`, default
/// `/var/cache/hardend-tests/bookworm-ssh`). Built on first use (about 30 s,
/// needs the Debian mirror); later runs reuse it. Returns `None` only when the
/// fast subset was asked for and debootstrap is unavailable.
pub fn debian_root() -> Option<PathBuf> {
    use std::process::Command;
    let cache = std::env::var_os("HARDEND_DEBIAN_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hardend-tests/bookworm-ssh"));
    if cache.join("usr/sbin/sshd").exists() && cache.join("var/lib/dpkg/status").exists() {
        return Some(cache);
    }
    if !require(
        "debootstrap (as root)",
        have_command("debootstrap") && is_root(),
    ) {
        return None;
    }
    // Several tests may ask at once: one builds, the others wait on the lock.
    let parent = cache.parent().expect("cache has a parent").to_path_buf();
    std::fs::create_dir_all(&parent).expect("create the cache directory");
    let lock = std::fs::File::create(parent.join(".bookworm-ssh.lock")).expect("lock file");
    lock.lock().expect("lock the debootstrap cache");
    if cache.join("usr/sbin/sshd").exists() {
        return Some(cache);
    }
    let building = parent.join(format!(".bookworm-ssh.{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&building);
    let status = Command::new("debootstrap")
        .args(["--variant=minbase", "--include=openssh-server", "bookworm"])
        .arg(&building)
        .arg(debian_mirror())
        .status()
        .expect("run debootstrap");
    assert!(status.success(), "debootstrap failed: {status}");
    if cache.exists() {
        std::fs::remove_dir_all(&cache).expect("remove a stale cache");
    }
    std::fs::rename(&building, &cache).expect("move the new root into the cache");
    Some(cache)
}

/// The Debian mirror this machine's apt uses (deb822 `URIs:` of the first
/// `bookworm` source), or the public default.
pub fn debian_mirror() -> String {
    let text =
        std::fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("URIs:"))
        .and_then(|u| u.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string())
}

/// A private copy of `src` (with modes, owners and links) in a new temporary
/// directory, for tests that change the tree.
pub fn copy_tree(src: &std::path::Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dir.path())
        .status()
        .expect("run cp");
    assert!(status.success(), "cp -a {} failed", src.display());
    dir
}

/// Runs `rpm --root ROOT --dbpath /DB_DIR` with the sqlite backend and `args`;
/// panics with rpm's stderr when it fails.
pub fn rpm_in_root(root: &std::path::Path, db_dir: &str, args: &[&std::ffi::OsStr]) {
    let out = std::process::Command::new("rpm")
        .arg("--root")
        .arg(root)
        .args(["--dbpath", &format!("/{db_dir}")])
        .args(["--define", "_db_backend sqlite"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run rpm");
    assert!(
        out.status.success(),
        "rpm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Creates the rpm database in `ROOT/DB_DIR` and registers `packages` in it
/// (`--justdb`: no files are installed, no scripts run).
pub fn rpm_register(root: &std::path::Path, db_dir: &str, packages: &[&std::path::Path]) {
    std::fs::create_dir_all(root.join(db_dir)).expect("mkdir the rpm database directory");
    rpm_in_root(root, db_dir, &["--initdb".as_ref()]);
    let mut args: Vec<&std::ffi::OsStr> =
        ["-i", "--justdb", "--nodeps", "--noscripts", "--notriggers"]
            .iter()
            .map(|s| s.as_ref())
            .collect();
    args.extend(packages.iter().map(|p| p.as_os_str()));
    rpm_in_root(root, db_dir, &args);
}

/// A root whose `/var/lib/rpm` database holds 1000 packages of 40 files each
/// (headers of about 8 KB), made on first use by one rpmbuild of a spec with
/// 1000 subpackages (minutes on two cores) and cached (`HARDEND_RPM_ROOT`,
/// default `/var/cache/hardend-tests/rpmdb-1000`). `None` when rpmbuild is
/// missing.
pub fn rpm_big_root() -> Option<PathBuf> {
    const PACKAGES: usize = 1000;
    const FILES: usize = 40;
    let cache = std::env::var_os("HARDEND_RPM_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hardend-tests/rpmdb-1000"));
    let root = cache.join("root");
    if root.join("var/lib/rpm/rpmdb.sqlite").exists() {
        return Some(root);
    }
    if !(have_command("rpm") && have_command("rpmbuild")) {
        return None;
    }
    eprintln!(
        "building {} (rpmbuild of {PACKAGES} packages, minutes)",
        cache.display()
    );
    let top = cache.join("top");
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(top.join("SPECS")).expect("mkdir SPECS");
    let mut spec = String::from(
        "Name: hd-big\nVersion: 1.0\nRelease: 1\nSummary: s\nLicense: MIT\nBuildArch: noarch\n%description\nd\n",
    );
    for i in 0..PACKAGES {
        spec.push_str(&format!(
            "%package -n hd-big-{i}\nSummary: s\n%description -n hd-big-{i}\nd\n"
        ));
    }
    spec.push_str(&format!(
        "%install\nfor i in $(seq 0 {}); do mkdir -p %{{buildroot}}/usr/share/hd-big/$i; \
         for f in $(seq 0 {}); do echo $i$f > %{{buildroot}}/usr/share/hd-big/$i/file-$f.txt; done; done\n",
        PACKAGES - 1,
        FILES - 1
    ));
    for i in 0..PACKAGES {
        spec.push_str(&format!("%files -n hd-big-{i}\n/usr/share/hd-big/{i}\n"));
    }
    let spec_path = top.join("SPECS/big.spec");
    std::fs::write(&spec_path, spec).expect("write spec");
    let status = std::process::Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("--quiet")
        .arg("-bb")
        .arg(&spec_path)
        .status()
        .expect("run rpmbuild");
    assert!(status.success(), "rpmbuild failed: {status}");
    let mut rpms: Vec<PathBuf> = std::fs::read_dir(top.join("RPMS/noarch"))
        .expect("built rpms")
        .map(|e| e.expect("entry").path())
        .collect();
    rpms.sort();
    let refs: Vec<&std::path::Path> = rpms.iter().map(PathBuf::as_path).collect();
    rpm_register(&root, "var/lib/rpm", &refs);
    Some(root)
}

/// A child whose stdout lines arrive on a channel (`hardend watch`,
/// `hardenctl watch`); killed and reaped when dropped.
pub struct Lines {
    pub child: std::process::Child,
    pub lines: std::sync::mpsc::Receiver<String>,
}

impl Lines {
    pub fn spawn(mut cmd: std::process::Command) -> Lines {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { child, lines: rx }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds an empty rpm package of `arch` (the build host's own, or
/// `noarch`) with `rpmbuild` under `top` (which holds `SPECS/`); returns the
/// package file.
pub fn rpm_build(
    top: &std::path::Path,
    name: &str,
    epoch: Option<u32>,
    version: &str,
    release: &str,
    arch: &str,
) -> PathBuf {
    let epoch_line = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
    let spec = top.join(format!("SPECS/{name}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\n{epoch_line}Version: {version}\nRelease: {release}\n\
             Summary: hardend test package\nLicense: MIT\nBuildArch: {arch}\n\
             %description\nA package with no files.\n%files\n"
        ),
    )
    .expect("write spec");
    let out = std::process::Command::new("rpmbuild")
        .arg("--define")
        .arg(format!("_topdir {}", top.display()))
        .arg("-bb")
        .arg(&spec)
        .output()
        .expect("run rpmbuild");
    assert!(
        out.status.success(),
        "rpmbuild failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rpm = top.join(format!("RPMS/{arch}/{name}-{version}-{release}.{arch}.rpm"));
    assert!(rpm.exists(), "rpmbuild made no {}", rpm.display());
    rpm
}

/// The architecture rpm builds for on this host (`x86_64`).
pub fn rpm_arch() -> String {
    let out = std::process::Command::new("rpm")
        .args(["--eval", "%{_arch}"])
        .output()
        .expect("run rpm --eval");
    let arch = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!arch.is_empty() && arch != "noarch", "rpm's arch: {arch:?}");
    arch
}

/// An advisory for [`dnf_repodata`]: packages are (name, epoch, version,
/// release, arch); `kind` is `security`, `bugfix`, ...
pub fn dnf_advisory(
    id: &str,
    kind: &str,
    packages: &[(&str, &str, &str, &str, &str)],
) -> serde_json::Value {
    let packages: Vec<serde_json::Value> = packages
        .iter()
        .map(|(name, epoch, version, release, arch)| {
            serde_json::json!({"name": name, "epoch": epoch, "version": version,
                               "release": release, "arch": arch})
        })
        .collect();
    serde_json::json!({"id": id, "type": kind, "severity": "Important", "packages": packages})
}

/// Replaces the cached repository `ROOT/REPO` with the `repomd.xml` and the
/// updateinfo of `advisories` that createrepo_c writes (compression `gz`,
/// `zst` or `xz`, see tests/python/dnf_repodata.py); returns the
/// updateinfo's root-relative path (`/REPO/repodata/...`).
pub fn dnf_repodata(
    root: &std::path::Path,
    repo: &str,
    compression: &str,
    advisories: &[serde_json::Value],
) -> String {
    let dir = root.join(repo);
    let _ = std::fs::remove_dir_all(&dir);
    let args: Vec<std::ffi::OsString> = vec![
        dir.into(),
        compression.into(),
        serde_json::Value::from(advisories.to_vec())
            .to_string()
            .into(),
    ];
    let out = run_python_json("dnf_repodata.py", args);
    let href = out["updateinfo"].as_str().expect("updateinfo href");
    format!("/{repo}/{href}")
}
