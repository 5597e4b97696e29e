//! The synchronous heart of the daemon: the loaded policies, the facts last
//! probed, the rules indexed by the facts they need, and the persistent state
//! that drift is computed against. It re-probes only the facts asked for,
//! re-evaluates only the rules that depend on them, and turns every change of
//! a rule's result into a numbered [`DriftEvent`]. No async, no watcher.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use hardend_engine::{Context, HostInfo, Report, RuleResult, Status};
use hardend_facts::{FactKey, Facts};
use hardend_policy::config::Deadlines;
use hardend_policy::{Policy, Waiver};
use hardend_probe::Probe;

use crate::state::{RuleState, State};
use crate::{DriftEvent, DriftKind, PolicyInfo, RuleKey};

/// The evaluation state of the daemon.
#[derive(Debug)]
pub struct Evaluator {
    probe: Probe,
    hostname: String,
    policies: Vec<Policy>,
    waivers: Vec<Waiver>,
    deadlines: Deadlines,
    /// Fact -> the rules (policy index, rule index) that need it.
    rule_index: HashMap<FactKey, Vec<(usize, usize)>>,
    required: BTreeSet<FactKey>,
    facts: Facts,
    state: State,
    /// The state changed since it was last saved.
    dirty: bool,
    last_duration_ms: f64,
    last_evaluated_at: jiff::Timestamp,
}

impl Evaluator {
    /// An evaluator over `probe`'s root, continuing from `state` (the
    /// persisted results alerts are computed against). Nothing is evaluated
    /// until [`Evaluator::full`].
    pub fn new(
        probe: Probe,
        policies: Vec<Policy>,
        waivers: Vec<Waiver>,
        deadlines: Deadlines,
        state: State,
    ) -> Evaluator {
        let hostname = hardend_probe::root::hostname(probe.fs());
        let mut e = Evaluator {
            probe,
            hostname,
            policies: Vec::new(),
            waivers,
            deadlines,
            rule_index: HashMap::new(),
            required: BTreeSet::new(),
            facts: Facts::default(),
            state,
            dirty: false,
            last_duration_ms: 0.0,
            last_evaluated_at: jiff::Timestamp::now(),
        };
        e.set_policies(policies);
        e
    }

    /// Replaces the policies; call [`Evaluator::full`] afterwards.
    pub fn set_policies(&mut self, policies: Vec<Policy>) {
        self.rule_index.clear();
        for (pi, policy) in policies.iter().enumerate() {
            for (ri, rule) in policy.rules.iter().enumerate() {
                for key in hardend_engine::rule_facts(rule) {
                    self.rule_index.entry(key).or_default().push((pi, ri));
                }
            }
        }
        self.required = hardend_engine::required_facts(&policies);
        self.policies = policies;
    }

    /// Replaces the waivers and deadlines (a configuration reload).
    pub fn set_settings(&mut self, waivers: Vec<Waiver>, deadlines: Deadlines) {
        self.waivers = waivers;
        self.deadlines = deadlines;
    }

    /// Scans another root from now on (a configuration reload).
    pub fn set_probe(&mut self, probe: Probe) {
        self.hostname = hardend_probe::root::hostname(probe.fs());
        self.probe = probe;
        self.facts = Facts::default();
    }

    pub fn probe(&self) -> &Probe {
        &self.probe
    }

    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// Every fact the loaded rules need.
    pub fn required(&self) -> &BTreeSet<FactKey> {
        &self.required
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether the state changed since [`Evaluator::mark_saved`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Probes every fact, evaluates every rule, and returns the drift against
    /// the last results. Rules that are no longer loaded are forgotten.
    pub fn full(&mut self, now: jiff::Timestamp) -> Vec<DriftEvent> {
        let clock = std::time::Instant::now();
        self.facts = self.probe.collect(&self.required);
        let all: Vec<(usize, usize)> = self
            .policies
            .iter()
            .enumerate()
            .flat_map(|(pi, p)| (0..p.rules.len()).map(move |ri| (pi, ri)))
            .collect();
        let events = self.evaluate(&all, now);
        let loaded: BTreeSet<RuleKey> = self
            .policies
            .iter()
            .flat_map(|p| p.rules.iter().map(|r| (p.id.clone(), r.id.clone())))
            .collect();
        let before = self.state.rules.len();
        self.state.rules.retain(|k, _| loaded.contains(k));
        if self.state.rules.len() != before {
            self.dirty = true;
        }
        self.last_duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
        events
    }

    /// Re-probes `keys` and re-evaluates the rules that depend on them.
    pub fn refresh(&mut self, keys: &BTreeSet<FactKey>, now: jiff::Timestamp) -> Vec<DriftEvent> {
        let clock = std::time::Instant::now();
        // A file is stored once whatever was asked of it: re-probe every
        // variant of an affected file, so content is never lost.
        let mut wanted: BTreeSet<FactKey> = keys
            .iter()
            .filter(|k| self.required.contains(*k))
            .cloned()
            .collect();
        let paths: BTreeSet<&String> = wanted
            .iter()
            .filter_map(|k| match k {
                FactKey::File { path, .. } => Some(path),
                _ => None,
            })
            .collect();
        if !paths.is_empty() {
            let variants: Vec<FactKey> = self
                .required
                .iter()
                .filter(|k| matches!(k, FactKey::File { path, .. } if paths.contains(path)))
                .cloned()
                .collect();
            wanted.extend(variants);
        }
        if wanted.is_empty() {
            return Vec::new();
        }
        // Kernel parameters and units share files read once for all of them
        // (the sysctl.d and unit directories): collect those together.
        let batched: BTreeSet<FactKey> = wanted
            .iter()
            .filter(|k| matches!(k, FactKey::Sysctl(_) | FactKey::Service(_)))
            .cloned()
            .collect();
        if !batched.is_empty() {
            let mut fresh = self.probe.collect(&batched);
            for key in &batched {
                move_fact(&mut self.facts, &mut fresh, key);
            }
        }
        for key in wanted.iter().filter(|k| !batched.contains(*k)) {
            // Variants of one file come in order (metadata, then content), so
            // the content is re-read last and kept.
            self.probe.collect_one(key, &mut self.facts);
        }
        let mut rules: Vec<(usize, usize)> = wanted
            .iter()
            .filter_map(|k| self.rule_index.get(k))
            .flatten()
            .copied()
            .collect();
        rules.sort_unstable();
        rules.dedup();
        let events = self.evaluate(&rules, now);
        self.last_duration_ms = clock.elapsed().as_secs_f64() * 1000.0;
        events
    }

    /// Evaluates the given rules (in policy order) and records their drift.
    fn evaluate(&mut self, rules: &[(usize, usize)], now: jiff::Timestamp) -> Vec<DriftEvent> {
        let today = now.to_zoned(jiff::tz::TimeZone::system()).date();
        let ctx = Context {
            waivers: &self.waivers,
            today,
        };
        let results: Vec<RuleResult> = rules
            .iter()
            .filter_map(|&(pi, ri)| {
                let policy = self.policies.get(pi)?;
                let rule = policy.rules.get(ri)?;
                Some(hardend_engine::evaluate_rule(
                    policy,
                    rule,
                    &self.facts,
                    &ctx,
                ))
            })
            .collect();
        self.last_evaluated_at = now;
        let mut events = Vec::new();
        for result in results {
            if let Some(event) = self.record(result, now) {
                events.push(event);
            }
        }
        events
    }

    /// Stores one new result and returns its drift event, if any.
    fn record(&mut self, result: RuleResult, now: jiff::Timestamp) -> Option<DriftEvent> {
        let key = (result.policy.clone(), result.rule.clone());
        let previous = self.state.rules.get(&key);
        let kind = DriftKind::classify(previous.map(|p| &p.result), &result);
        let previous_status = previous.map(|p| p.result.status);
        let failing = result.status == Status::Fail;
        let (first_failed, overdue_alerted) = match previous {
            Some(p) if failing && p.result.status == Status::Fail => {
                (p.first_failed.or(Some(now)), p.overdue_alerted)
            }
            _ if failing => (Some(now), false),
            _ => (None, false),
        };
        let new = RuleState {
            result,
            first_failed,
            overdue_alerted,
        };
        if previous != Some(&new) {
            self.dirty = true;
        }
        let event = kind.map(|kind| DriftEvent {
            seq: self.take_seq(),
            at: now,
            kind,
            previous: previous_status,
            result: new.result.clone(),
        });
        self.state.rules.insert(key, new);
        event
    }

    /// Takes the next sequence number for a message that is not a drift
    /// event (a snapshot for the collector).
    pub fn allocate_seq(&mut self) -> u64 {
        self.take_seq()
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.state.next_seq;
        self.state.next_seq = seq.saturating_add(1);
        self.dirty = true;
        seq
    }

    fn deadline_of(&self, rule: &RuleState) -> Option<jiff::Timestamp> {
        let deadline = self.deadlines.deadline(rule.result.severity)?;
        let first = rule.first_failed?;
        let span = jiff::SignedDuration::try_from(deadline).ok()?;
        first.checked_add(span).ok()
    }

    /// Raises one overdue event for each failing rule past its severity's
    /// deadline whose overdue alert was not sent yet.
    pub fn overdue(&mut self, now: jiff::Timestamp) -> Vec<DriftEvent> {
        let due: Vec<RuleKey> = self
            .state
            .rules
            .iter()
            .filter(|(_, r)| r.result.status == Status::Fail && !r.overdue_alerted)
            .filter(|(_, r)| self.deadline_of(r).is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect();
        // Alert in policy order, as other drift is.
        let order = self.rule_order();
        let mut due: Vec<(usize, RuleKey)> = due
            .into_iter()
            .map(|k| (order.get(&k).copied().unwrap_or(usize::MAX), k))
            .collect();
        due.sort();
        let mut events = Vec::new();
        for (_, key) in due {
            let seq = self.take_seq();
            if let Some(rule) = self.state.rules.get_mut(&key) {
                rule.overdue_alerted = true;
                events.push(DriftEvent {
                    seq,
                    at: now,
                    kind: DriftKind::Overdue,
                    previous: Some(Status::Fail),
                    result: rule.result.clone(),
                });
            }
        }
        events
    }

    /// When the next failing rule becomes overdue, if any will.
    pub fn next_overdue(&self) -> Option<jiff::Timestamp> {
        self.state
            .rules
            .values()
            .filter(|r| r.result.status == Status::Fail && !r.overdue_alerted)
            .filter_map(|r| self.deadline_of(r))
            .min()
    }

    /// The deadline of a severity, for status lines.
    pub fn deadlines(&self) -> &Deadlines {
        &self.deadlines
    }

    fn rule_order(&self) -> BTreeMap<RuleKey, usize> {
        self.policies
            .iter()
            .flat_map(|p| p.rules.iter().map(|r| (p.id.clone(), r.id.clone())))
            .enumerate()
            .map(|(i, k)| (k, i))
            .collect()
    }

    /// The latest result of every loaded rule, in policy order, as a report.
    pub fn report(&self) -> Report {
        let results: Vec<RuleResult> = self
            .policies
            .iter()
            .flat_map(|p| p.rules.iter().map(|r| (p.id.clone(), r.id.clone())))
            .filter_map(|k| self.state.rules.get(&k).map(|s| s.result.clone()))
            .collect();
        let at = self.last_evaluated_at;
        hardend_engine::build_report(
            HostInfo {
                hostname: self.hostname.clone(),
                root: self.probe.fs().root().display().to_string(),
            },
            at.round(jiff::Unit::Millisecond).unwrap_or(at).to_string(),
            self.last_duration_ms,
            &self.policies,
            results,
        )
    }

    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The loaded policies, as `ListPolicies` shows them.
    pub fn policy_infos(&self) -> Vec<PolicyInfo> {
        self.policies
            .iter()
            .map(|p| PolicyInfo {
                id: p.id.clone(),
                version: p.version.clone(),
                title: p.title.clone(),
                source: p.source.display().to_string(),
                rules: u32::try_from(p.rules.len()).unwrap_or(u32::MAX),
            })
            .collect()
    }

    /// When each failing rule started failing.
    pub fn first_failed(&self) -> BTreeMap<RuleKey, jiff::Timestamp> {
        self.state
            .rules
            .iter()
            .filter(|(_, r)| r.result.status == Status::Fail)
            .filter_map(|(k, r)| Some((k.clone(), r.first_failed?)))
            .collect()
    }

    /// The failing rules past their deadline.
    pub fn overdue_rules(&self, now: jiff::Timestamp) -> BTreeSet<RuleKey> {
        self.state
            .rules
            .iter()
            .filter(|(_, r)| r.result.status == Status::Fail)
            .filter(|(_, r)| r.overdue_alerted || self.deadline_of(r).is_some_and(|d| d <= now))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// How long the last evaluation took.
    pub fn last_duration(&self) -> Duration {
        Duration::from_secs_f64(self.last_duration_ms.max(0.0) / 1000.0)
    }
}

/// Moves the fact of a kernel parameter or a unit from `src` into `dst`.
fn move_fact(dst: &mut Facts, src: &mut Facts, key: &FactKey) {
    match key {
        FactKey::Sysctl(k) => {
            if let Some(f) = src.sysctl.remove(k) {
                dst.sysctl.insert(k.clone(), f);
            }
        }
        FactKey::Service(unit) => {
            if let Some(f) = src.services.remove(unit) {
                dst.services.insert(unit.clone(), f);
            }
        }
        _ => {}
    }
}
