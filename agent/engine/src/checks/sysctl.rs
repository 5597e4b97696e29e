//! `sysctl` checks: the live value, and with `persistent` the boot configuration too.

use hardend_facts::{Evidence, Facts};
use hardend_policy::SysctlCheck;

use crate::Outcome;
use crate::compare::{self, Case};

/// Evaluates a sysctl check.
///
/// Without `persistent`, the live value decides; an offline image (no live
/// file) falls back to the configured value. With `persistent`, the live and
/// the configured value must both pass; with no live file only the configured
/// value is checked. A key that is neither live nor configured fails with
/// `actual: unset`.
pub(crate) fn eval(check: &SysctlCheck, facts: &Facts) -> Outcome {
    let expected = compare::expected(&check.key, &check.compare);
    let Some(fact) = facts.sysctl.get(&check.key) else {
        return Outcome::not_collected(Some(expected));
    };
    let live = match &fact.live {
        Ok(v) => v.as_deref(),
        Err(e) => return Outcome::error(Some(expected), e.message.clone()),
    };
    let configured = match (&fact.configured, check.persistent, live) {
        (Ok(c), _, _) => c.as_ref(),
        // The configuration matters only when persistence is asked for or
        // there is no live value to judge.
        (Err(e), true, _) | (Err(e), false, None) => {
            return Outcome::error(Some(expected), e.message.clone());
        }
        (Err(_), false, Some(_)) => None,
    };
    let ok = |v: &str| compare::holds(&check.compare, v, Case::Sensitive);
    let live_evidence = |v: &str| Evidence::text(fact.live_path.clone(), compare::fold(v));

    match (live, configured) {
        (None, None) => Outcome::verdict(
            false,
            expected,
            "unset".to_string(),
            vec![Evidence::text(
                fact.live_path.clone(),
                "not set live or in sysctl.d",
            )],
        ),
        (Some(v), _) if !check.persistent => {
            Outcome::verdict(ok(v), expected, compare::fold(v), vec![live_evidence(v)])
        }
        (None, Some(c)) => Outcome::verdict(
            ok(&c.value),
            expected,
            compare::fold(&c.value),
            vec![c.evidence.clone()],
        ),
        (Some(v), None) => Outcome::verdict(
            false,
            expected,
            format!("{} (live), unset (configured)", compare::fold(v)),
            vec![live_evidence(v)],
        ),
        (Some(v), Some(c)) => {
            let (lv, cv) = (compare::fold(v), compare::fold(&c.value));
            let actual = if lv == cv {
                lv
            } else {
                format!("{lv} (live), {cv} (configured)")
            };
            Outcome::verdict(
                ok(v) && ok(&c.value),
                expected,
                actual,
                vec![live_evidence(v), c.evidence.clone()],
            )
        }
    }
}
