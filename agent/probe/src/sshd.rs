//! The sshd configuration under the root: `/etc/ssh/sshd_config` parsed with
//! every `Include` expanded, through a loader that reads and globs below the
//! root only.

use std::collections::BTreeSet;

use hardend_facts::sshd::{SshdConfig, SshdLoader, pattern};
use hardend_facts::{ProbeFailure, Probed, Source, SshdFact};

use crate::RootFs;

/// The sshd binary whose presence means sshd is installed.
pub const SSHD_BINARY: &str = "/usr/sbin/sshd";
/// The main configuration file.
pub const SSHD_CONFIG: &str = "/etc/ssh/sshd_config";

/// Reads and globs paths below a [`RootFs`]; paths are root-relative.
pub struct RootLoader<'a> {
    fs: &'a RootFs,
}

impl<'a> RootLoader<'a> {
    pub fn new(fs: &'a RootFs) -> Self {
        RootLoader { fs }
    }
}

/// Upper bound on paths one Include glob may produce.
const MAX_GLOB_RESULTS: usize = 10_000;

impl SshdLoader for RootLoader<'_> {
    fn read(&self, path: &str) -> Result<String, String> {
        let md = self.fs.metadata(path).map_err(|e| e.to_string())?;
        if md.is_dir() {
            // sshd opens a directory, reads nothing from it and carries on.
            return Ok(String::new());
        }
        self.fs.read_to_string(path).map_err(|e| e.to_string())
    }

    fn glob(&self, pat: &str) -> Result<Vec<String>, String> {
        // Expand one component at a time, listing directories through the
        // root so that symlinks never lead outside it.
        let mut current: Vec<String> = vec![String::new()];
        for comp in pat.split('/').filter(|c| !c.is_empty()) {
            let mut next = Vec::new();
            for base in &current {
                if pattern::has_glob_meta(comp) || comp.contains('\\') {
                    let dir = if base.is_empty() { "/" } else { base.as_str() };
                    let names = match self.fs.read_dir(dir) {
                        Ok(n) => n,
                        Err(_) => continue,
                    };
                    for name in names {
                        if pattern::glob_component(comp, &name) {
                            next.push(format!("{base}/{name}"));
                        }
                    }
                } else {
                    next.push(format!("{base}/{comp}"));
                }
                if next.len() > MAX_GLOB_RESULTS {
                    return Err(format!("more than {MAX_GLOB_RESULTS} matches"));
                }
            }
            current = next;
        }
        let mut found: Vec<String> = current
            .into_iter()
            .filter(|p| !p.is_empty() && self.fs.symlink_metadata(p).is_ok())
            .collect();
        found.sort();
        Ok(found)
    }
}

/// Parses the configuration below the root. `NotInstalled` when the sshd
/// binary is absent; an error (never a pass) when the configuration cannot
/// be read or sshd would reject it.
pub fn probe(fs: &RootFs) -> Probed<SshdFact> {
    match fs.symlink_metadata(SSHD_BINARY) {
        Ok(_) => {}
        Err(e) if e.is_not_found() => return Ok(SshdFact::NotInstalled),
        Err(e) => return Err(ProbeFailure::new(format!("{SSHD_BINARY}: {e}"))),
    }
    let loader = RootLoader::new(fs);
    SshdConfig::parse(&loader, SSHD_CONFIG)
        .map(SshdFact::Config)
        .map_err(|e| ProbeFailure::new(e.to_string()))
}

fn parent(path: &str) -> String {
    match path.rsplit_once('/') {
        Some(("", _)) | None => "/".to_string(),
        Some((dir, _)) => dir.to_string(),
    }
}

/// The directories whose change can change the configuration: `/etc/ssh`,
/// the sshd binary's directory, and the directory of every file read
/// (including the directories Include globs list), as host paths.
pub fn sources(fs: &RootFs) -> Vec<Source> {
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    dirs.insert("/etc/ssh".to_string());
    dirs.insert(parent(SSHD_BINARY));
    let loader = RootLoader::new(fs);
    if let Ok(cfg) = SshdConfig::parse(&loader, SSHD_CONFIG) {
        for f in &cfg.files {
            dirs.insert(parent(f));
        }
        // Include directories that hold no matching file yet still matter:
        // a file dropped there later changes the configuration.
        for pat in &cfg.include_patterns {
            let literal: Vec<&str> = pat
                .split('/')
                .take_while(|c| !pattern::has_glob_meta(c))
                .collect();
            let dir = if literal.len() == pat.split('/').count() {
                parent(pat)
            } else {
                literal.join("/")
            };
            if !dir.is_empty() {
                dirs.insert(dir);
            }
        }
    }
    dirs.into_iter()
        .map(|d| Source::Path(fs.host_path(&d)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardend_facts::sshd::Connection;
    use std::fs;

    fn root_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (p, c) in files {
            let host = dir.path().join(p.trim_start_matches('/'));
            fs::create_dir_all(host.parent().unwrap()).unwrap();
            fs::write(host, c).unwrap();
        }
        dir
    }

    #[test]
    fn not_installed_without_the_binary() {
        let dir = root_with(&[("/etc/ssh/sshd_config", "PermitRootLogin yes\n")]);
        let fact = probe(&RootFs::new(dir.path())).unwrap();
        assert_eq!(fact, SshdFact::NotInstalled);
    }

    #[test]
    fn unreadable_config_is_an_error_not_a_pass() {
        let dir = root_with(&[("/usr/sbin/sshd", "")]);
        let err = probe(&RootFs::new(dir.path())).unwrap_err();
        assert!(err.message.contains("/etc/ssh/sshd_config"), "{err}");
    }

    #[test]
    fn includes_are_globbed_below_the_root_in_name_order() {
        let dir = root_with(&[
            ("/usr/sbin/sshd", ""),
            (
                "/etc/ssh/sshd_config",
                "Include sshd_config.d/*.conf\nPasswordAuthentication yes\n",
            ),
            ("/etc/ssh/sshd_config.d/20-b.conf", "PermitRootLogin yes\n"),
            (
                "/etc/ssh/sshd_config.d/10-a.conf",
                "PermitRootLogin no\nPasswordAuthentication no\n",
            ),
            (
                "/etc/ssh/sshd_config.d/.hidden.conf",
                "PermitRootLogin yes\n",
            ),
        ]);
        let fs = RootFs::new(dir.path());
        let SshdFact::Config(cfg) = probe(&fs).unwrap() else {
            panic!("expected a configuration");
        };
        let v = cfg.global("permitrootlogin");
        assert_eq!(v.value, "no");
        let ev = v.evidence.unwrap();
        assert_eq!(ev.path, "/etc/ssh/sshd_config.d/10-a.conf");
        assert_eq!(ev.line, Some(1));
        assert_eq!(
            cfg.effective("PasswordAuthentication", &Connection::default())
                .value,
            "no"
        );
        assert_eq!(
            cfg.files,
            vec![
                "/etc/ssh/sshd_config",
                "/etc/ssh/sshd_config.d/10-a.conf",
                "/etc/ssh/sshd_config.d/20-b.conf"
            ]
        );
        let srcs = sources(&fs);
        assert!(srcs.contains(&Source::Path(dir.path().join("etc/ssh/sshd_config.d"))));
        assert!(srcs.contains(&Source::Path(dir.path().join("etc/ssh"))));
        assert!(srcs.contains(&Source::Path(dir.path().join("usr/sbin"))));
    }

    #[test]
    fn absolute_symlinks_in_include_dirs_stay_inside_the_root() {
        let dir = root_with(&[
            ("/usr/sbin/sshd", ""),
            ("/etc/ssh/sshd_config", "Include /etc/ssh/conf.d/*\n"),
            ("/srv/sshd/a.conf", "MaxAuthTries 3\n"),
        ]);
        std::os::unix::fs::symlink("/srv/sshd", dir.path().join("etc/ssh/conf.d")).unwrap();
        let SshdFact::Config(cfg) = probe(&RootFs::new(dir.path())).unwrap() else {
            panic!("expected a configuration");
        };
        assert_eq!(cfg.global("maxauthtries").value, "3");
    }

    #[test]
    fn an_empty_drop_in_directory_is_watched() {
        let dir = root_with(&[
            ("/usr/sbin/sshd", ""),
            (
                "/etc/ssh/sshd_config",
                "Include /etc/ssh/sshd_config.d/*.conf\n",
            ),
        ]);
        fs::create_dir_all(dir.path().join("etc/ssh/sshd_config.d")).unwrap();
        let srcs = sources(&RootFs::new(dir.path()));
        assert!(srcs.contains(&Source::Path(dir.path().join("etc/ssh/sshd_config.d"))));
    }

    #[test]
    fn a_bad_line_is_an_error() {
        let dir = root_with(&[
            ("/usr/sbin/sshd", ""),
            ("/etc/ssh/sshd_config", "PermitRootLogin maybe\n"),
        ]);
        let err = probe(&RootFs::new(dir.path())).unwrap_err();
        assert!(err.message.contains("line 1"), "{err}");
    }
}
