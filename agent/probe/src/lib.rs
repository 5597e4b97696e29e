//! Probes: the only code in hardend that reads the host.
//!
//! Every read goes through a [`RootFs`], so a probe sees `<root>/etc/...` and
//! never the host's own files when a root is given. [`Probe::collect`] gathers
//! exactly the facts a set of rules needs; [`Probe::sources`] says which paths
//! back each fact, which is what the drift watcher watches.

pub mod accounts;
pub mod certificate;
pub mod file;
pub mod firewall;
pub mod listening;
pub mod netlink;
pub mod package;
pub mod patches;
pub mod processes;
pub mod reboot;
pub mod root;
pub mod rpmdb;
pub mod service;
pub mod sqlite;
pub mod sshd;
pub mod sysctl;

use std::collections::BTreeSet;
use std::path::PathBuf;

use hardend_facts::{FactKey, Facts, ProbeFailure, Probed, Source};

pub use root::{RootError, RootFs};

/// Version comparison is pure, so it lives with the facts the engine reads;
/// the posture probes keep their `crate::dpkgver` path.
pub use hardend_facts::{dpkgver, rpmver, version};

/// Starts `probe` on a thread named `name` of `scope` when `wanted`. None
/// when it is not wanted or no thread could be started.
fn spawn_probe<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    name: &str,
    wanted: bool,
    probe: impl FnOnce() -> T + Send + 'scope,
) -> Option<std::thread::ScopedJoinHandle<'scope, T>> {
    if !wanted {
        return None;
    }
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, probe)
        .ok()
}

/// The answer of a probe started with [`spawn_probe`]; a panic in it is
/// that fact's failure.
fn joined<T>(handle: std::thread::ScopedJoinHandle<'_, Probed<T>>, what: &str) -> Probed<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(ProbeFailure::new(format!("the {what} probe panicked"))))
}

/// The host (or image) below one root.
#[derive(Debug, Clone)]
pub struct Probe {
    fs: RootFs,
}

impl Probe {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Probe {
            fs: RootFs::new(root),
        }
    }

    pub fn fs(&self) -> &RootFs {
        &self.fs
    }

    /// Reads every fact named in `keys`. Never fails as a whole: a fact that
    /// cannot be read is stored as its failure.
    ///
    /// Files read for many keys (the sysctl.d files, the unit directories)
    /// are read once for all of them. On a live root the firewall, the
    /// listening sockets and the processes are read on threads of their own
    /// while the other facts are read: the firewall probe mostly waits for
    /// `nft`, and the other two are hundreds of small `/proc` reads.
    pub fn collect(&self, keys: &BTreeSet<FactKey>) -> Facts {
        let fs = &self.fs;
        std::thread::scope(|scope| {
            // A fact that gets no thread is read in turn below.
            let threaded = |key: FactKey| fs.is_live() && keys.contains(&key);
            let firewall = spawn_probe(
                scope,
                "hardend-firewall",
                threaded(FactKey::Firewall),
                || firewall::probe(fs),
            );
            let listening = spawn_probe(
                scope,
                "hardend-listening",
                threaded(FactKey::Listening),
                || listening::probe(fs),
            );
            let processes = spawn_probe(
                scope,
                "hardend-processes",
                threaded(FactKey::Processes),
                || processes::probe(fs),
            );

            let mut facts = Facts::default();
            let sysctl_config = keys
                .iter()
                .any(|k| matches!(k, FactKey::Sysctl(_)))
                .then(|| sysctl::load_config(fs));
            let service_index = keys
                .iter()
                .any(|k| matches!(k, FactKey::Service(_)))
                .then(|| {
                    let mut index = service::load_index(fs);
                    // One `systemctl is-active` for every unit, not one each.
                    index.prefetch_activity(
                        fs,
                        keys.iter().filter_map(|k| match k {
                            FactKey::Service(unit) => Some(unit.as_str()),
                            _ => None,
                        }),
                    );
                    index
                });
            for key in keys {
                match (key, &sysctl_config, &service_index) {
                    (FactKey::Sysctl(k), Some(config), _) => {
                        facts
                            .sysctl
                            .insert(k.clone(), sysctl::probe_with(fs, k, config));
                    }
                    (FactKey::Service(unit), _, Some(index)) => {
                        facts
                            .services
                            .insert(unit.clone(), service::probe_with(fs, unit, index));
                    }
                    (FactKey::Firewall, _, _) if firewall.is_some() => {}
                    (FactKey::Listening, _, _) if listening.is_some() => {}
                    (FactKey::Processes, _, _) if processes.is_some() => {}
                    _ => self.collect_one(key, &mut facts),
                }
            }
            if let Some(handle) = firewall {
                facts.firewall = Some(joined(handle, "firewall"));
            }
            if let Some(handle) = listening {
                facts.listening = Some(joined(handle, "listening"));
            }
            if let Some(handle) = processes {
                facts.processes = Some(joined(handle, "processes"));
            }
            facts
        })
    }

    /// Reads one fact into `facts`, replacing what was there.
    pub fn collect_one(&self, key: &FactKey, facts: &mut Facts) {
        let fs = &self.fs;
        match key {
            FactKey::Sysctl(k) => {
                facts.sysctl.insert(k.clone(), sysctl::probe(fs, k));
            }
            FactKey::Sshd => facts.sshd = Some(sshd::probe(fs)),
            FactKey::File { path, content } => {
                // Content subsumes metadata: keep the richer of two requests.
                let have_content =
                    matches!(facts.files.get(path), Some(Ok(f)) if f.lines.is_some());
                if !have_content || *content {
                    facts
                        .files
                        .insert(path.clone(), file::probe(fs, path, *content));
                }
            }
            FactKey::Accounts => facts.accounts = Some(accounts::probe(fs)),
            FactKey::Packages => facts.packages = Some(package::probe(fs)),
            FactKey::Service(unit) => {
                facts
                    .services
                    .insert(unit.clone(), service::probe(fs, unit));
            }
            FactKey::Listening => facts.listening = Some(listening::probe(fs)),
            FactKey::Firewall => facts.firewall = Some(firewall::probe(fs)),
            FactKey::Patches => facts.patches = Some(patches::probe(fs)),
            FactKey::Reboot => facts.reboot = Some(reboot::probe(fs)),
            FactKey::Processes => facts.processes = Some(processes::probe(fs)),
            FactKey::Certificate(path) => {
                facts
                    .certificates
                    .insert(path.clone(), certificate::probe(fs, path));
            }
        }
    }

    /// The paths (host paths, below the root) whose change can change `key`,
    /// and the facts that must be polled because nothing signals their change.
    pub fn sources(&self, key: &FactKey) -> Vec<Source> {
        let fs = &self.fs;
        match key {
            FactKey::Sysctl(k) => sysctl::sources(fs, k),
            FactKey::Sshd => sshd::sources(fs),
            FactKey::File { path, .. } => file::sources(fs, path),
            FactKey::Accounts => accounts::sources(fs),
            FactKey::Packages => package::sources(fs),
            FactKey::Service(unit) => service::sources(fs, unit),
            FactKey::Listening | FactKey::Firewall => vec![Source::Poll(key.clone())],
            FactKey::Patches => patches::sources(fs),
            FactKey::Reboot => reboot::sources(fs),
            FactKey::Processes => processes::sources(fs),
            FactKey::Certificate(path) => certificate::sources(fs, path),
        }
    }
}
