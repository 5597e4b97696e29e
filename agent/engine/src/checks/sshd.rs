//! `sshd_config` checks: effective values, for one connection or for every
//! connection the `Match` blocks could describe.

use hardend_facts::sshd::{self as model, Connection, EffectiveValue, SshdConfig, SshdFact};
use hardend_facts::{AccountsFact, Evidence, Facts};
use hardend_policy::{MissingSshd, SshdCheck, SshdMatch};

use crate::Outcome;
use crate::compare::{self, Case};

/// Evaluates an sshd_config check.
pub(crate) fn eval(check: &SshdCheck, facts: &Facts) -> Outcome {
    let keyword = model::canonical_keyword(&check.keyword)
        .map(str::to_string)
        .unwrap_or_else(|| check.keyword.to_ascii_lowercase());
    let expected = compare::expected(&keyword, &check.compare);
    let config = match &facts.sshd {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(SshdFact::NotInstalled)) => return not_installed(check, expected),
        Some(Ok(SshdFact::Config(config))) => config,
    };
    match &check.connection {
        Some(m) => for_connection(check, config, &keyword, expected, m, facts),
        None => for_every_connection(check, config, &keyword, expected),
    }
}

fn not_installed(check: &SshdCheck, expected: String) -> Outcome {
    const WHY: &str = "sshd is not installed";
    match check.if_not_installed {
        MissingSshd::NotApplicable => Outcome::not_applicable(WHY),
        MissingSshd::Pass | MissingSshd::Fail => Outcome::verdict(
            check.if_not_installed == MissingSshd::Pass,
            expected,
            "not installed".to_string(),
            vec![Evidence::text("/usr/sbin/sshd", "not installed")],
        ),
    }
}

/// The value `sshd -T -C user=..,host=..,addr=..` would print.
fn for_connection(
    check: &SshdCheck,
    config: &SshdConfig,
    keyword: &str,
    expected: String,
    m: &SshdMatch,
    facts: &Facts,
) -> Outcome {
    let groups = match &m.user {
        None => Vec::new(),
        Some(user) => match user_groups(user, config, facts) {
            Ok(g) => g,
            Err(why) => return Outcome::error(Some(expected), why),
        },
    };
    let conn = Connection {
        user: m.user.clone(),
        groups,
        host: m.host.clone(),
        addr: m.addr.clone(),
        laddr: m.laddr.clone(),
        lport: m.lport,
        rdomain: m.rdomain.clone(),
    };
    // `sshd -T -C` refuses some specifications (a `Match LocalPort` without
    // a local port); so does the check, rather than guess.
    if let Err(e) = config.check_connection(&conn) {
        return Outcome::error(Some(expected), e.to_string());
    }
    let value = config.effective(keyword, &conn);
    Outcome::verdict(
        compare::holds(&check.compare, &value.value, Case::Insensitive),
        expected,
        show(&value.value),
        evidence_of(config, keyword, &value),
    )
}

/// An empty effective value (an unset list such as `AllowUsers`) reads as `(empty)`.
fn show(value: &str) -> String {
    if value.is_empty() {
        "(empty)".to_string()
    } else {
        value.to_string()
    }
}

/// The line that set the value, or for a compiled default the main file
/// with a note saying so.
fn evidence_of(config: &SshdConfig, keyword: &str, value: &EffectiveValue) -> Vec<Evidence> {
    match &value.evidence {
        Some(e) => vec![e.clone()],
        None => {
            let file = config
                .files
                .first()
                .cloned()
                .unwrap_or_else(|| model::SSHD_DIR.to_string() + "/sshd_config");
            vec![Evidence::text(
                file,
                format!("{keyword} not set: OpenSSH default {}", show(&value.value)),
            )]
        }
    }
}

/// The groups of `user` (primary group and supplementary memberships), for
/// `Match Group`. An unreadable passwd or group file is an error only when
/// some Match block asks about groups.
fn user_groups(user: &str, config: &SshdConfig, facts: &Facts) -> Result<Vec<String>, String> {
    let needs_groups = config
        .blocks
        .iter()
        .any(|b| b.criteria.iter().any(|c| c.name == "group"));
    let Some(accounts) = &facts.accounts else {
        return if needs_groups {
            Err(crate::NOT_COLLECTED.to_string())
        } else {
            Ok(Vec::new())
        };
    };
    match groups_of(user, accounts) {
        Ok(g) => Ok(g),
        Err(e) if needs_groups => Err(e),
        Err(_) => Ok(Vec::new()),
    }
}

fn groups_of(user: &str, accounts: &AccountsFact) -> Result<Vec<String>, String> {
    let passwd = accounts.passwd.as_ref().map_err(|e| e.message.clone())?;
    let group = accounts.group.as_ref().map_err(|e| e.message.clone())?;
    let primary = passwd.iter().find(|p| p.name == user).map(|p| p.gid);
    let mut out: Vec<String> = Vec::new();
    for g in group {
        if (Some(g.gid) == primary || g.members.iter().any(|m| m == user)) && !out.contains(&g.name)
        {
            out.push(g.name.clone());
        }
    }
    Ok(out)
}

/// Every connection: the global value and each Match block's value must pass.
fn for_every_connection(
    check: &SshdCheck,
    config: &SshdConfig,
    keyword: &str,
    expected: String,
) -> Outcome {
    let mut variants = config.variants(keyword);
    if !variants.iter().any(|v| v.block.is_none()) {
        variants.insert(
            0,
            model::Variant {
                block: None,
                value: config.global(keyword),
            },
        );
    }
    let ok = |v: &str| compare::holds(&check.compare, v, Case::Insensitive);
    let failing: Vec<&model::Variant> = variants.iter().filter(|v| !ok(&v.value.value)).collect();
    let global = variants.iter().find(|v| v.block.is_none());
    if failing.is_empty() {
        let actual = global.map(|g| show(&g.value.value)).unwrap_or_default();
        let evidence = global
            .map(|g| evidence_of(config, keyword, &g.value))
            .unwrap_or_default();
        return Outcome::verdict(true, expected, actual, evidence);
    }
    let mut actual = Vec::new();
    let mut evidence = Vec::new();
    for v in failing {
        match v.block.and_then(|i| config.blocks.get(i)) {
            None => {
                actual.push(show(&v.value.value));
                evidence.extend(evidence_of(config, keyword, &v.value));
            }
            Some(block) => {
                let label = block
                    .evidence
                    .text
                    .clone()
                    .unwrap_or_else(|| "Match block".to_string());
                actual.push(format!("{} in {label}", show(&v.value.value)));
                evidence.push(block.evidence.clone());
                evidence.extend(v.value.evidence.clone());
            }
        }
    }
    Outcome::verdict(false, expected, actual.join("; "), evidence)
}
