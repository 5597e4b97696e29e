//! The evaluation engine: `evaluate(policy, facts) -> results`.
//!
//! Pure: no I/O, no clock, no async. Anything the engine needs from outside
//! (today's date for waivers) is passed in. A fact that could not be read
//! yields the `error` status; it never passes.
//!
//! Codemap: [`rule_facts`]/[`required_facts`] say which facts a rule needs,
//! `checks` holds one module per check kind, `compare` the scalar
//! comparisons, and this file the combinators (`all`, `any`, `not`), `when`,
//! waivers and the report.

mod checks;
mod compare;
pub mod report;

use std::collections::BTreeSet;

use hardend_facts::{Evidence, FactKey, Facts};
use hardend_policy::{Check, Policy, Rule, Waiver};

pub use report::*;

/// What the engine is told about the world besides the facts.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Waivers from the agent's configuration.
    pub waivers: &'a [Waiver],
    /// Today's date, for waiver expiry: a waiver applies while `expires >= today`.
    pub today: jiff::civil::Date,
}

/// The message of every result whose fact the caller did not collect.
pub const NOT_COLLECTED: &str = "internal: fact not collected";

/// The facts every rule of `policies` needs, for one probe pass.
pub fn required_facts(policies: &[Policy]) -> BTreeSet<FactKey> {
    policies
        .iter()
        .flat_map(|p| p.rules.iter())
        .flat_map(rule_facts)
        .collect()
}

/// The facts one rule needs: those of its check and of its `when`.
///
/// An sshd check with a `match:` user also needs the accounts, because the
/// user's groups decide `Match Group` blocks.
pub fn rule_facts(rule: &Rule) -> BTreeSet<FactKey> {
    let mut keys = BTreeSet::new();
    check_facts(&rule.check, &mut keys);
    if let Some(when) = &rule.when {
        check_facts(when, &mut keys);
    }
    keys
}

fn check_facts(check: &Check, keys: &mut BTreeSet<FactKey>) {
    match check {
        Check::Sysctl(c) => {
            keys.insert(FactKey::Sysctl(c.key.clone()));
        }
        Check::SshdConfig(c) => {
            keys.insert(FactKey::Sshd);
            if c.connection.as_ref().is_some_and(|m| m.user.is_some()) {
                keys.insert(FactKey::Accounts);
            }
        }
        Check::File(c) => {
            keys.insert(FactKey::File {
                path: c.path.clone(),
                content: c.contains.is_some() || c.not_contains.is_some(),
            });
        }
        Check::FileExists(path) => {
            keys.insert(FactKey::File {
                path: path.clone(),
                content: false,
            });
        }
        Check::Accounts(_) => {
            keys.insert(FactKey::Accounts);
        }
        Check::Package(_) | Check::PackageInstalled(_) => {
            keys.insert(FactKey::Packages);
        }
        Check::Service(c) => {
            keys.insert(FactKey::Service(c.unit.clone()));
        }
        Check::Listening(_) => {
            keys.insert(FactKey::Listening);
        }
        Check::Firewall(_) => {
            keys.insert(FactKey::Firewall);
        }
        Check::Patches(_) => {
            keys.insert(FactKey::Patches);
        }
        Check::Reboot(_) => {
            keys.insert(FactKey::Reboot);
        }
        Check::Processes(_) => {
            keys.insert(FactKey::Processes);
        }
        Check::Certificate(c) => {
            keys.insert(FactKey::Certificate(c.path.clone()));
        }
        Check::All(parts) | Check::Any(parts) => {
            for part in parts {
                check_facts(part, keys);
            }
        }
        Check::Not(inner) => check_facts(inner, keys),
    }
}

/// Evaluates every rule of `policy`, in the policy's order.
pub fn evaluate(policy: &Policy, facts: &Facts, ctx: &Context) -> Vec<RuleResult> {
    policy
        .rules
        .iter()
        .map(|rule| evaluate_rule(policy, rule, facts, ctx))
        .collect()
}

/// Evaluates one rule: its `when`, its check, then the waivers.
pub fn evaluate_rule(policy: &Policy, rule: &Rule, facts: &Facts, ctx: &Context) -> RuleResult {
    let outcome = match &rule.when {
        None => eval_check(&rule.check, facts, ctx),
        Some(when) => {
            let applies = eval_check(when, facts, ctx);
            match applies.status {
                Status::Pass | Status::Waived => eval_check(&rule.check, facts, ctx),
                Status::Fail => Outcome::not_applicable(format!(
                    "when does not hold: {}",
                    applies.expected.as_deref().unwrap_or("condition")
                )),
                Status::NotApplicable => Outcome::not_applicable(format!(
                    "when is not applicable: {}",
                    applies.message.as_deref().unwrap_or("condition")
                )),
                Status::Error => Outcome {
                    message: Some(format!(
                        "when: {}",
                        applies
                            .message
                            .as_deref()
                            .unwrap_or("could not be evaluated")
                    )),
                    ..Outcome::status(Status::Error)
                },
            }
        }
    };
    let mut result = RuleResult {
        policy: policy.id.clone(),
        rule: rule.id.clone(),
        title: rule.title.clone(),
        severity: rule.severity,
        status: outcome.status,
        waived_status: None,
        expected: outcome.expected,
        actual: outcome.actual,
        evidence: outcome.evidence,
        message: outcome.message,
    };
    apply_waivers(&mut result, ctx);
    result
}

/// Turns a `fail` or `error` into `waived` when an unexpired waiver covers
/// it; a matching waiver that has expired is named in the message.
fn apply_waivers(result: &mut RuleResult, ctx: &Context) {
    if !matches!(result.status, Status::Fail | Status::Error) {
        return;
    }
    let waiver = ctx
        .waivers
        .iter()
        .find(|w| w.policy == result.policy && w.rule == result.rule && w.expires >= ctx.today);
    let note = match waiver {
        Some(w) => {
            result.waived_status = Some(result.status);
            result.status = Status::Waived;
            format!("waived until {}: {}", w.expires, w.reason)
        }
        None => {
            // An expired waiver does not apply, but the operator should learn
            // that it lapsed rather than wonder why the rule fails again.
            let expired = ctx
                .waivers
                .iter()
                .filter(|w| w.policy == result.policy && w.rule == result.rule)
                .max_by_key(|w| w.expires);
            match expired {
                Some(w) => format!("waiver expired on {}: {}", w.expires, w.reason),
                None => return,
            }
        }
    };
    result.message = Some(match result.message.take() {
        Some(m) => format!("{m}; {note}"),
        None => note,
    });
}

/// Assembles the `hardend.report/v1` document.
pub fn build_report(
    host: HostInfo,
    started_at: String,
    duration_ms: f64,
    policies: &[Policy],
    results: Vec<RuleResult>,
) -> Report {
    Report {
        schema: REPORT_SCHEMA.to_string(),
        host,
        started_at,
        duration_ms,
        policies: policies
            .iter()
            .map(|p| PolicyRef {
                id: p.id.clone(),
                version: p.version.clone(),
            })
            .collect(),
        summary: Summary::of(&results),
        results,
    }
}

/// The verdict of one check before it becomes a [`RuleResult`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outcome {
    pub status: Status,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub evidence: Vec<Evidence>,
    pub message: Option<String>,
}

impl Outcome {
    pub(crate) fn status(status: Status) -> Outcome {
        Outcome {
            status,
            expected: None,
            actual: None,
            evidence: Vec::new(),
            message: None,
        }
    }

    /// `pass` or `fail` depending on `ok`.
    pub(crate) fn verdict(
        ok: bool,
        expected: String,
        actual: String,
        evidence: Vec<Evidence>,
    ) -> Outcome {
        Outcome {
            status: if ok { Status::Pass } else { Status::Fail },
            expected: Some(expected),
            actual: Some(actual),
            evidence,
            message: None,
        }
    }

    pub(crate) fn error(expected: Option<String>, message: impl Into<String>) -> Outcome {
        Outcome {
            expected,
            message: Some(message.into()),
            ..Outcome::status(Status::Error)
        }
    }

    pub(crate) fn not_collected(expected: Option<String>) -> Outcome {
        Outcome::error(expected, NOT_COLLECTED)
    }

    pub(crate) fn not_applicable(message: impl Into<String>) -> Outcome {
        Outcome {
            message: Some(message.into()),
            ..Outcome::status(Status::NotApplicable)
        }
    }
}

/// Evaluates one check (or combinator) against the facts.
pub(crate) fn eval_check(check: &Check, facts: &Facts, ctx: &Context) -> Outcome {
    match check {
        Check::Sysctl(c) => checks::sysctl::eval(c, facts),
        Check::SshdConfig(c) => checks::sshd::eval(c, facts),
        Check::File(c) => checks::file::eval(c, facts),
        Check::FileExists(path) => checks::file::eval_exists(path, facts),
        Check::Accounts(c) => checks::accounts::eval(c, facts),
        Check::Package(c) => {
            checks::system::eval_package(&c.name, c.installed, c.min_version.as_deref(), facts)
        }
        Check::PackageInstalled(name) => checks::system::eval_package(name, true, None, facts),
        Check::Service(c) => checks::system::eval_service(c, facts),
        Check::Listening(c) => checks::system::eval_listening(c, facts),
        Check::Firewall(c) => checks::system::eval_firewall(c, facts),
        Check::Patches(c) => checks::posture::eval_patches(c, facts),
        Check::Reboot(c) => checks::posture::eval_reboot(c, facts),
        Check::Processes(c) => checks::posture::eval_processes(c, facts),
        Check::Certificate(c) => checks::posture::eval_certificate(c, facts, ctx.today),
        Check::All(parts) => all(parts.iter().map(|p| eval_check(p, facts, ctx)).collect()),
        Check::Any(parts) => any(parts.iter().map(|p| eval_check(p, facts, ctx)).collect()),
        Check::Not(inner) => not(eval_check(inner, facts, ctx)),
    }
}

fn join(parts: impl Iterator<Item = Option<String>>, sep: &str) -> Option<String> {
    let parts: Vec<String> = parts.flatten().collect();
    (!parts.is_empty()).then(|| parts.join(sep))
}

/// The parts' expectations joined by `sep`, each compound one in parentheses
/// so `a or b and c` cannot be misread.
fn join_expected(parts: &[Outcome], sep: &str) -> Option<String> {
    let single = parts.len() == 1;
    join(
        parts.iter().map(|o| {
            o.expected.as_ref().map(|e| {
                if !single && (e.contains(" and ") || e.contains(" or ")) {
                    format!("({e})")
                } else {
                    e.clone()
                }
            })
        }),
        sep,
    )
}

/// Combines the outcomes of the parts of a combinator: the status is
/// `status`, and the details come from the parts whose status is `pick`.
fn combine(parts: Vec<Outcome>, status: Status, pick: &[Status], sep: &str) -> Outcome {
    let expected = join_expected(&parts, sep);
    let chosen: Vec<&Outcome> = parts.iter().filter(|o| pick.contains(&o.status)).collect();
    Outcome {
        status,
        expected,
        actual: join(chosen.iter().map(|o| o.actual.clone()), "; "),
        evidence: chosen.iter().flat_map(|o| o.evidence.clone()).collect(),
        message: join(chosen.iter().map(|o| o.message.clone()), "; "),
    }
}

/// `all`: any fail -> fail, else any error -> error, else pass; parts that
/// are not applicable are left out, and all of them not applicable is not
/// applicable.
fn all(parts: Vec<Outcome>) -> Outcome {
    let has = |s: Status| parts.iter().any(|o| o.status == s);
    let (status, pick): (Status, &[Status]) = if has(Status::Fail) {
        (Status::Fail, &[Status::Fail])
    } else if has(Status::Error) {
        (Status::Error, &[Status::Error])
    } else if has(Status::Pass) {
        (Status::Pass, &[Status::Pass])
    } else {
        (Status::NotApplicable, &[Status::NotApplicable])
    };
    combine(parts, status, pick, " and ")
}

/// `any`: any pass -> pass, else any error -> error, else fail; parts that
/// are not applicable are left out, and all of them not applicable is not
/// applicable.
fn any(parts: Vec<Outcome>) -> Outcome {
    let has = |s: Status| parts.iter().any(|o| o.status == s);
    let (status, pick): (Status, &[Status]) = if has(Status::Pass) {
        (Status::Pass, &[Status::Pass])
    } else if has(Status::Error) {
        (Status::Error, &[Status::Error])
    } else if has(Status::Fail) {
        (Status::Fail, &[Status::Fail])
    } else {
        (Status::NotApplicable, &[Status::NotApplicable])
    };
    if status == Status::Pass {
        // One passing part is the reason; its details alone explain it.
        let expected = join_expected(&parts, " or ");
        if let Some(first) = parts.into_iter().find(|o| o.status == Status::Pass) {
            return Outcome { expected, ..first };
        }
        return Outcome::status(Status::Pass);
    }
    combine(parts, status, pick, " or ")
}

/// `not`: pass and fail swap; error and not applicable stay.
fn not(inner: Outcome) -> Outcome {
    let status = match inner.status {
        Status::Pass => Status::Fail,
        Status::Fail => Status::Pass,
        other => other,
    };
    Outcome {
        status,
        expected: inner.expected.map(|e| format!("not ({e})")),
        ..inner
    }
}

#[cfg(test)]
mod tests;
