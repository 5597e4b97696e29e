//! The core loop: start-up (state, policies, watches, the first full
//! evaluation), then events (debounced watcher batches, the poll backstop,
//! periodic full rescans, overdue deadlines, API commands, reloads) turned
//! into drift events for the alert sink, the broadcast channel and the
//! shared view, with the state persisted after each batch.
//!
//! Everything the loop touches is injected through [`DaemonOptions`], so tests
//! build a daemon over a fixture root with a capturing sink.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hardend_facts::FactKey;
use hardend_policy::config::{AgentConfig, load_config_or_default};
use hardend_policy::{ConfiguredPoliciesError, Policy, PolicyError};
use hardend_probe::Probe;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::evaluator::Evaluator;
use crate::metrics::{AgentMetrics, EvaluationKind};
use crate::sd_notify::SdNotify;
use crate::state::{State, StateError, StateStore};
use crate::watch::{Batch, Inbox, PathWatcher, SourceIndex, WatchError, watch_targets};
use crate::{AgentView, AlertSink, Command, DriftEvent, Shared};

/// How many drift events a slow API subscriber may fall behind before it
/// loses some (it is told how many with `RecvError::Lagged`).
pub const DRIFT_CHANNEL_CAPACITY: usize = 1024;
/// How many API commands may wait for the core loop.
pub const COMMAND_CHANNEL_CAPACITY: usize = 64;
/// The longest wait between two overdue checks.
const OVERDUE_CHECK_MAX: Duration = Duration::from_secs(60);
/// A burst is processed after it has been quiet for the debounce time, or at
/// the latest this many debounce times after its first event.
const DEBOUNCE_MAX_FACTOR: u32 = 4;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Policy files are invalid; each error is `file:line:col: message`.
    #[error("{}", hardend_policy::join_lines(.0))]
    Policies(Vec<PolicyError>),
    /// None of the configured policy paths exists.
    #[error("no policy directory exists (looked in {})", hardend_policy::show_paths(.tried))]
    NoPolicyDirectory { tried: Vec<PathBuf> },
    /// The root to scan is not a directory.
    #[error("{}: the root to scan is not a readable directory: {reason}", .root.display())]
    Root { root: PathBuf, reason: String },
    /// The state directory is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// inotify could not be started.
    #[error(transparent)]
    Watch(#[from] WatchError),
}

/// Everything a daemon is built from.
pub struct DaemonOptions {
    /// The configuration in force at start.
    pub config: AgentConfig,
    /// The file a reload re-reads; `None` keeps `config` and reloads only the
    /// policies.
    pub config_path: Option<PathBuf>,
    /// Where alerts go (journald in production, a capturing sink in tests).
    pub sink: Box<dyn AlertSink>,
    /// systemd notifications (disabled in tests).
    pub notify: SdNotify,
    /// The Prometheus counters, when `metrics:` is configured.
    pub metrics: Option<Arc<AgentMetrics>>,
}

/// Counters of the core loop, for tests and status lines.
#[derive(Debug, Default)]
pub struct CoreStats {
    /// Watcher batches processed.
    pub batches: AtomicU64,
    /// Full evaluations (start, rescans, reloads, `Evaluate`).
    pub full_evaluations: AtomicU64,
    /// Polls of the backstop.
    pub polls: AtomicU64,
    /// State files written.
    pub saves: AtomicU64,
}

/// A read-only handle on the daemon's counters and queue sizes.
#[derive(Debug, Clone)]
pub struct StatsHandle {
    inbox: Arc<Inbox>,
    core: Arc<CoreStats>,
}

impl StatsHandle {
    /// Distinct changed paths waiting for the core loop now.
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// The most distinct paths ever waiting at once (bounded by
    /// [`crate::watch::INBOX_CAPACITY`]).
    pub fn pending_high_water(&self) -> usize {
        self.inbox.stats.high_water.load(Ordering::Relaxed)
    }

    /// Change events received from the watcher.
    pub fn received(&self) -> u64 {
        self.inbox.stats.received.load(Ordering::Relaxed)
    }

    /// Overflows (kernel queue or inbox) that turned into full rescans.
    pub fn overflows(&self) -> u64 {
        self.inbox.stats.overflows.load(Ordering::Relaxed)
    }

    pub fn batches(&self) -> u64 {
        self.core.batches.load(Ordering::Relaxed)
    }

    pub fn full_evaluations(&self) -> u64 {
        self.core.full_evaluations.load(Ordering::Relaxed)
    }

    pub fn polls(&self) -> u64 {
        self.core.polls.load(Ordering::Relaxed)
    }

    pub fn saves(&self) -> u64 {
        self.core.saves.load(Ordering::Relaxed)
    }
}

/// A started daemon: state loaded, policies loaded, watches set, the first
/// full evaluation done and its alerts emitted. [`Daemon::run`] runs the loop.
pub struct Daemon {
    config: AgentConfig,
    config_path: Option<PathBuf>,
    evaluator: Evaluator,
    store: StateStore,
    sink: Box<dyn AlertSink>,
    notify: SdNotify,
    inbox: Arc<Inbox>,
    watcher: PathWatcher,
    sources: SourceIndex,
    policy_errors: Vec<String>,
    started_at: jiff::Timestamp,
    last_full_scan_at: Option<jiff::Timestamp>,
    drift_events: u64,
    view_tx: watch::Sender<Arc<AgentView>>,
    drift_tx: broadcast::Sender<Arc<DriftEvent>>,
    commands_tx: mpsc::Sender<Command>,
    commands_rx: Option<mpsc::Receiver<Command>>,
    stats: Arc<CoreStats>,
    metrics: Option<Arc<AgentMetrics>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("root", &self.config.root)
            .field("watcher", &self.watcher)
            .finish_non_exhaustive()
    }
}

/// Runs blocking work (probing, evaluating, fsync) from async code without
/// stalling the runtime's other tasks when it has several worker threads.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn check_root(root: &Path) -> Result<(), AppError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(AppError::Root {
            root: root.to_path_buf(),
            reason: "not a directory".to_string(),
        }),
        Err(e) => Err(AppError::Root {
            root: root.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn load_policies(paths: &[PathBuf]) -> Result<Vec<Policy>, AppError> {
    hardend_policy::load_configured(paths).map_err(|e| match e {
        ConfiguredPoliciesError::NoPolicyDirectory { tried } => {
            AppError::NoPolicyDirectory { tried }
        }
        ConfiguredPoliciesError::Policy(errors) => AppError::Policies(errors),
    })
}

/// Error lines of a failed policy load, each `file:line:col: message` (or
/// the one line saying that no policy directory exists).
fn error_lines(e: &AppError) -> Vec<String> {
    match e {
        AppError::Policies(errors) => errors.iter().map(|e| e.to_string()).collect(),
        other => vec![other.to_string()],
    }
}

/// Whether a path names a policy file by its name (`*.yaml`, `*.yml`, not hidden).
fn is_policy_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.') && (n.ends_with(".yaml") || n.ends_with(".yml")))
}

impl Daemon {
    /// Starts a daemon: opens the state (a corrupt state is reported and set
    /// aside, and the daemon starts fresh), loads the policies (an invalid
    /// one is fatal here), sets the watches, runs the first full evaluation
    /// and emits what differs from the persisted results.
    pub fn start(opts: DaemonOptions) -> Result<Daemon, AppError> {
        let DaemonOptions {
            config,
            config_path,
            sink,
            notify,
            metrics,
        } = opts;
        check_root(&config.root)?;
        let store = StateStore::open(&config.state_dir)?;
        let state = match store.load() {
            Ok(Some(state)) => state,
            Ok(None) => State::default(),
            Err(e) => {
                tracing::error!(error = %e, "the state cannot be used; starting fresh");
                match store.set_aside() {
                    Ok(to) => tracing::warn!(path = %to.display(), "the old state was kept aside"),
                    Err(e) => tracing::warn!(error = %e, "the old state could not be set aside"),
                }
                State::default()
            }
        };
        // Messages queued for the collector may be ahead of the saved state.
        let mut state = state;
        state.next_seq = state.next_seq.max(sink.next_seq_floor());
        let policies = load_policies(&config.policies)?;
        let inbox = Inbox::new();
        let watcher = PathWatcher::new(inbox.clone())?;
        let evaluator = Evaluator::new(
            Probe::new(&config.root),
            policies,
            config.waivers.clone(),
            config.deadlines.clone(),
            state,
        );
        let placeholder = Arc::new(AgentView {
            hostname: evaluator.hostname().to_string(),
            root: config.root.display().to_string(),
            started_at: jiff::Timestamp::now(),
            last_full_scan_at: None,
            report: evaluator.report(),
            first_failed: Default::default(),
            overdue: Default::default(),
            policies: Vec::new(),
            policy_errors: Vec::new(),
            drift_events: 0,
        });
        let (view_tx, _) = watch::channel(placeholder);
        let (drift_tx, _) = broadcast::channel(DRIFT_CHANNEL_CAPACITY);
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
        let mut daemon = Daemon {
            config,
            config_path,
            evaluator,
            store,
            sink,
            notify,
            inbox,
            watcher,
            sources: SourceIndex::default(),
            policy_errors: Vec::new(),
            started_at: jiff::Timestamp::now(),
            last_full_scan_at: None,
            drift_events: 0,
            view_tx,
            drift_tx,
            commands_tx,
            commands_rx: Some(commands_rx),
            stats: Arc::default(),
            metrics,
        };
        // Watch first, then read: a change during the evaluation is seen.
        daemon.rebuild_sources();
        daemon.reconcile_watches();
        daemon.full_evaluation();
        Ok(daemon)
    }

    /// The handles the API serves from.
    pub fn shared(&self) -> Shared {
        Shared {
            view: self.view_tx.subscribe(),
            drift: self.drift_tx.clone(),
            commands: self.commands_tx.clone(),
        }
    }

    /// Counters and queue sizes.
    pub fn stats(&self) -> StatsHandle {
        StatsHandle {
            inbox: self.inbox.clone(),
            core: self.stats.clone(),
        }
    }

    /// The current view.
    pub fn view(&self) -> Arc<AgentView> {
        self.view_tx.borrow().clone()
    }

    /// How many paths are watched with inotify.
    pub fn watched_paths(&self) -> usize {
        self.watcher.len()
    }

    /// Runs the loop until `shutdown` completes, then saves the state and
    /// tells systemd it is stopping.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), AppError> {
        tokio::pin!(shutdown);
        let inbox = self.inbox.clone();
        let Some(mut commands) = self.commands_rx.take() else {
            return Ok(());
        };
        let Timers {
            poll: mut poll_timer,
            rescan: mut rescan_timer,
            watchdog: mut watchdog_timer,
        } = Timers::new(&self.config, &self.notify);
        loop {
            let overdue_in = self.overdue_wait();
            let mut reset_timers = false;
            tokio::select! {
                () = &mut shutdown => break,
                () = wake(&inbox) => {
                    debounce(&inbox, self.config.watch.debounce).await;
                    if let Some(batch) = inbox.take() {
                        blocking(|| self.handle_batch(batch));
                    }
                }
                _ = poll_timer.tick() => blocking(|| self.poll()),
                _ = rescan_timer.tick() => {
                    tracing::info!("periodic full rescan");
                    blocking(|| self.full_evaluation());
                }
                () = tokio::time::sleep(overdue_in) => blocking(|| self.settle(Vec::new(), false)),
                command = commands.recv() => match command {
                    Some(Command::Evaluate(reply)) => {
                        blocking(|| self.full_evaluation());
                        // The caller may have gone; nothing to do then.
                        let _ = reply.send(self.view());
                    }
                    Some(Command::Reload) => {
                        blocking(|| self.reload());
                        reset_timers = true;
                    }
                    Some(Command::Snapshot) => blocking(|| self.snapshot()),
                    // Only the daemon's own handle is left: nothing will come.
                    None => {}
                },
                _ = watchdog_tick(&mut watchdog_timer) => self.notify.watchdog(),
            }
            if reset_timers {
                let t = Timers::new(&self.config, &self.notify);
                (poll_timer, rescan_timer, watchdog_timer) = (t.poll, t.rescan, t.watchdog);
            }
        }
        self.notify.stopping();
        blocking(|| self.save());
        tracing::info!("stopped");
        Ok(())
    }

    /// The time until the next rule becomes overdue, at most a minute.
    fn overdue_wait(&self) -> Duration {
        let Some(at) = self.evaluator.next_overdue() else {
            return OVERDUE_CHECK_MAX;
        };
        let now = jiff::Timestamp::now();
        let wait = at.duration_since(now);
        if wait.is_negative() {
            return Duration::ZERO;
        }
        Duration::try_from(wait)
            .unwrap_or(OVERDUE_CHECK_MAX)
            .min(OVERDUE_CHECK_MAX)
    }

    /// Probes and evaluates everything.
    fn full_evaluation(&mut self) {
        let now = jiff::Timestamp::now();
        let started = std::time::Instant::now();
        let events = self.evaluator.full(now);
        self.observe(EvaluationKind::Full, started);
        self.last_full_scan_at = Some(now);
        self.stats.full_evaluations.fetch_add(1, Ordering::Relaxed);
        // The sources may have changed (an Include added, a directory made).
        self.rebuild_sources();
        self.reconcile_watches();
        self.settle(events, true);
        self.snapshot();
        crate::memory::release_free();
    }

    /// Hands the sinks that want one a snapshot of the view, with its own
    /// sequence number, and saves the state that counts it.
    fn snapshot(&mut self) {
        if !self.sink.wants_snapshots() {
            return;
        }
        let seq = self.evaluator.allocate_seq();
        let view = self.view();
        self.sink.snapshot(seq, &view);
        self.save();
    }

    /// One debounced batch from the watcher.
    fn handle_batch(&mut self, batch: Batch) {
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        if batch.rescan {
            tracing::warn!("change events were lost (queue overflow); full rescan");
            if self.policy_paths_changed(None) {
                self.reload_policies(false);
            } else {
                self.full_evaluation();
            }
            return;
        }
        let mut keys: BTreeSet<FactKey> = BTreeSet::new();
        let mut policies_changed = false;
        for path in &batch.paths {
            keys.extend(self.sources.affected(path));
            policies_changed |= self.policy_paths_changed(Some(path));
        }
        tracing::debug!(
            paths = batch.paths.len(),
            facts = keys.len(),
            policies_changed,
            "change batch"
        );
        if policies_changed {
            // A reload evaluates everything, which covers the facts too.
            self.reload_policies(false);
            return;
        }
        if keys.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let events = self.evaluator.refresh(&keys, jiff::Timestamp::now());
        self.observe(EvaluationKind::Partial, started);
        for key in keys
            .iter()
            .filter(|k| self.evaluator.required().contains(*k))
        {
            self.sources.set(key, self.evaluator.probe().sources(key));
        }
        self.reconcile_watches();
        self.settle(events, false);
    }

    /// Whether `path` (or, for `None`, anything: after an overflow) can
    /// change the loaded policies.
    fn policy_paths_changed(&self, path: Option<&Path>) -> bool {
        let Some(path) = path else {
            return true;
        };
        self.config.policies.iter().any(|p| {
            path == p
                || p.starts_with(path)
                || (path.parent() == Some(p.as_path()) && is_policy_file(path))
        })
    }

    /// The poll backstop: re-probe kernel parameters and what nothing
    /// signals (listening sockets, the firewall) and compare.
    fn poll(&mut self) {
        self.stats.polls.fetch_add(1, Ordering::Relaxed);
        let keys = self.sources.polled().clone();
        if keys.is_empty() {
            return;
        }
        let started = std::time::Instant::now();
        let events = self.evaluator.refresh(&keys, jiff::Timestamp::now());
        self.observe(EvaluationKind::Partial, started);
        self.settle(events, false);
    }

    /// Counts an evaluation that began at `started` (with metrics on).
    fn observe(&self, kind: EvaluationKind, started: std::time::Instant) {
        if let Some(metrics) = &self.metrics {
            metrics.evaluated(kind, started.elapsed());
        }
    }

    /// Re-reads the configuration file and the policies (SIGHUP, `Reload`).
    fn reload(&mut self) {
        self.notify.reloading();
        tracing::info!("reloading the configuration and the policies");
        let mut errors = Vec::new();
        if let Some(path) = self.config_path.clone() {
            match load_config_or_default(&path) {
                Ok(config) => self.apply_config(config),
                Err(config_errors) => {
                    errors.extend(config_errors.iter().map(|e| e.to_string()));
                }
            }
        }
        self.reload_policies(true);
        if !errors.is_empty() {
            tracing::error!(
                errors = errors.len(),
                "the configuration is invalid; the old one stays in force"
            );
            // Configuration errors are shown next to policy errors.
            let mut all = errors.clone();
            all.append(&mut self.policy_errors);
            self.policy_errors = all;
            self.publish_view();
            self.sink.policy_errors(&errors);
        }
        self.notify.ready(&self.status_line());
    }

    /// Applies a new configuration; what only a restart can change is logged.
    fn apply_config(&mut self, config: AgentConfig) {
        if config.state_dir != self.config.state_dir
            || config.socket != self.config.socket
            || config.journald != self.config.journald
            || config.collector != self.config.collector
            || config.metrics != self.config.metrics
        {
            tracing::warn!(
                "state_dir, socket, journald, collector and metrics changes take effect at the next restart"
            );
        }
        if config.root != self.config.root {
            match check_root(&config.root) {
                Ok(()) => self.evaluator.set_probe(Probe::new(&config.root)),
                Err(e) => {
                    tracing::error!(error = %e, "the new root is unusable; keeping the old one");
                    return;
                }
            }
        }
        self.evaluator
            .set_settings(config.waivers.clone(), config.deadlines.clone());
        let AgentConfig {
            state_dir,
            socket,
            journald,
            collector,
            metrics,
            ..
        } = self.config.clone();
        self.config = AgentConfig {
            state_dir,
            socket,
            journald,
            collector,
            metrics,
            ..config
        };
    }

    /// Reloads the policies: good ones replace the old and everything is
    /// evaluated; invalid ones are reported and the old stay in force.
    /// `always_report` reports errors even when they are the same as last time.
    fn reload_policies(&mut self, always_report: bool) {
        match load_policies(&self.config.policies) {
            Ok(policies) => {
                tracing::info!(policies = policies.len(), "policies loaded");
                self.policy_errors.clear();
                self.evaluator.set_policies(policies);
                self.full_evaluation();
            }
            Err(e) => {
                let lines = error_lines(&e);
                tracing::error!(
                    errors = lines.len(),
                    "invalid policies; the last good policies stay in force"
                );
                let report = always_report || lines != self.policy_errors;
                self.policy_errors = lines;
                // The view first, as for drift events.
                self.publish_view();
                if report {
                    self.sink.policy_errors(&self.policy_errors);
                }
                // The other changes of the batch still count.
                self.full_evaluation();
            }
        }
    }

    /// Re-reads the sources of every required fact.
    fn rebuild_sources(&mut self) {
        let mut sources = SourceIndex::default();
        for key in self.evaluator.required() {
            sources.set(key, self.evaluator.probe().sources(key));
        }
        self.sources = sources;
    }

    /// Makes the watches match the sources and the policy paths. A directory
    /// watched for the first time since start may already hold changes, so
    /// it is queued as changed.
    fn reconcile_watches(&mut self) {
        let proc = self.evaluator.probe().fs().root().join("proc");
        let mut targets = watch_targets(self.sources.paths(), &proc);
        targets.extend(watch_targets(
            self.config.policies.iter().map(PathBuf::as_path),
            &proc,
        ));
        let first = self.watcher.is_empty();
        let added = self.watcher.reconcile(&targets);
        if !first && !added.is_empty() {
            tracing::debug!(added = added.len(), "new watches");
            self.inbox.push_paths(added);
        }
    }

    /// Adds the overdue events, publishes the view, emits the events in
    /// order, then persists the state if it changed. The view comes first so
    /// that whoever reacts to an event finds it in the view; the state comes
    /// last so that a crash in between repeats an alert rather than loses it.
    fn settle(&mut self, mut events: Vec<DriftEvent>, force_view: bool) {
        events.extend(self.evaluator.overdue(jiff::Timestamp::now()));
        self.drift_events += events.len() as u64;
        if self.evaluator.is_dirty() || force_view || !events.is_empty() {
            self.publish_view();
        }
        if !events.is_empty() {
            let view = self.view();
            self.sink.drift_batch(&events, &view);
            if let Some(metrics) = &self.metrics {
                metrics.drift_emitted(&events);
            }
        }
        for event in &events {
            tracing::info!(
                seq = event.seq,
                kind = ?event.kind,
                policy = %event.result.policy,
                rule = %event.result.rule,
                status = %event.result.status,
                "drift"
            );
            // No subscriber is not an error.
            let _ = self.drift_tx.send(Arc::new(event.clone()));
        }
        self.save();
    }

    /// Writes the state if it changed; a failure is logged and retried at
    /// the next change.
    fn save(&mut self) {
        if !self.evaluator.is_dirty() {
            return;
        }
        match self.store.save(self.evaluator.state()) {
            Ok(()) => {
                self.evaluator.mark_saved();
                self.stats.saves.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "cannot save the state"),
        }
    }

    fn publish_view(&mut self) {
        let now = jiff::Timestamp::now();
        let view = AgentView {
            hostname: self.evaluator.hostname().to_string(),
            root: self.evaluator.probe().fs().root().display().to_string(),
            started_at: self.started_at,
            last_full_scan_at: self.last_full_scan_at,
            report: self.evaluator.report(),
            first_failed: self.evaluator.first_failed(),
            overdue: self.evaluator.overdue_rules(now),
            policies: self.evaluator.policy_infos(),
            policy_errors: self.policy_errors.clone(),
            drift_events: self.drift_events,
        };
        self.notify.status(&status_of(&view));
        self.view_tx.send_replace(Arc::new(view));
    }

    /// The one-line status systemd shows.
    pub fn status_line(&self) -> String {
        status_of(&self.view())
    }
}

fn status_of(view: &AgentView) -> String {
    let s = &view.report.summary;
    let mut line = format!(
        "{} rules: {} pass, {} fail, {} error; {} drift events",
        s.total, s.pass, s.fail, s.error, view.drift_events
    );
    if !view.policy_errors.is_empty() {
        line.push_str(&format!(
            "; {} policy errors (old policies in force)",
            view.policy_errors.len()
        ));
    }
    line
}

/// Completes at once when changes are pending (a wake-up may have been
/// spent by a branch that lost the race), else at the watcher's next event.
async fn wake(inbox: &Inbox) {
    if inbox.burst().is_none() {
        inbox.wait().await;
    }
}

/// Waits until the current burst is quiet for `debounce`, or has lasted
/// [`DEBOUNCE_MAX_FACTOR`] times `debounce`.
async fn debounce(inbox: &Inbox, debounce: Duration) {
    loop {
        let Some((first, last)) = inbox.burst() else {
            return;
        };
        let deadline = (last + debounce).min(first + debounce * DEBOUNCE_MAX_FACTOR);
        if std::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(Instant::from_std(deadline)).await;
    }
}

/// The loop's periodic timers.
struct Timers {
    poll: tokio::time::Interval,
    rescan: tokio::time::Interval,
    watchdog: Option<tokio::time::Interval>,
}

impl Timers {
    fn new(config: &AgentConfig, notify: &SdNotify) -> Timers {
        let every = |period: Duration| {
            let period = period.max(Duration::from_millis(10));
            let mut i = tokio::time::interval_at(Instant::now() + period, period);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        };
        Timers {
            poll: every(config.watch.poll_interval),
            rescan: every(config.watch.full_rescan_interval),
            watchdog: notify.watchdog_interval().map(every),
        }
    }
}

/// Completes at the watchdog's next tick, or never without a watchdog.
async fn watchdog_tick(watchdog: &mut Option<tokio::time::Interval>) {
    match watchdog {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}
