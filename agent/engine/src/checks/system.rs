//! `package`, `service`, `listening` and `firewall` checks.

use hardend_facts::listening::{Proto, Socket};
use hardend_facts::{Evidence, Facts, Live};
use hardend_policy::{FirewallCheck, ListenProto, ListeningCheck, ServiceCheck};

use crate::Outcome;

/// `package: { name, installed, min_version }` and the `package_installed`
/// shorthand. `min_version` compares by the ordering of the database the
/// package came from (dpkg's or rpm's).
pub(crate) fn eval_package(
    name: &str,
    installed: bool,
    min_version: Option<&str>,
    facts: &Facts,
) -> Outcome {
    let expected = match (installed, min_version) {
        (true, Some(min)) => format!("{name} installed, version >= {min}"),
        (true, None) => format!("{name} installed"),
        (false, _) => format!("{name} not installed"),
    };
    let db = match &facts.packages {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(db)) => db,
    };
    match db.installed.get(name) {
        Some(p) => {
            let new_enough = min_version
                .is_none_or(|min| db.format.compare(&p.version, min) != std::cmp::Ordering::Less);
            let actual = match min_version {
                Some(_) => format!("installed {} ({} ordering)", p.version, db.format),
                None => format!("installed {}", p.version),
            };
            Outcome::verdict(
                installed && new_enough,
                expected,
                actual,
                vec![p.evidence.clone()],
            )
        }
        None => Outcome::verdict(
            !installed,
            expected,
            "not installed".to_string(),
            db.databases
                .iter()
                .map(|d| Evidence::text(d.clone(), format!("no {name}")))
                .collect(),
        ),
    }
}

/// `service: { unit, enabled, active }`.
///
/// `enabled` comes from the unit files and links; `active` from the live
/// systemd. A unit that does not exist at all is neither enabled nor active,
/// on a live system or not. `active` on an offline image is not applicable
/// (when `enabled` is asked too, `enabled` alone decides).
pub(crate) fn eval_service(check: &ServiceCheck, facts: &Facts) -> Outcome {
    let unit = &check.unit;
    let mut parts = Vec::new();
    if let Some(e) = check.enabled {
        parts.push(format!(
            "{unit} {}",
            if e { "enabled" } else { "not enabled" }
        ));
    }
    if let Some(a) = check.active {
        parts.push(format!(
            "{unit} {}",
            if a { "active" } else { "not active" }
        ));
    }
    let expected = parts.join(" and ");
    let fact = match facts.services.get(unit) {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(f)) => f,
    };
    let exists = fact.unit_file.is_some() || fact.masked || !fact.enabled_by.is_empty();
    let mut evidence: Vec<Evidence> = fact.enabled_by.clone();
    if let Some(file) = &fact.unit_file {
        evidence.insert(0, Evidence::text(file.clone(), "unit file"));
    }
    let enabled_state = if !exists {
        "not installed"
    } else if fact.masked {
        "masked"
    } else if fact.enabled() {
        "enabled"
    } else {
        "disabled"
    };
    let mut actual = vec![enabled_state.to_string()];
    let mut ok = check.enabled.is_none_or(|want| want == fact.enabled());
    if let Some(want) = check.active {
        let active = if exists {
            match &fact.active {
                Live::NotApplicable(why) => {
                    if check.enabled.is_none() {
                        return Outcome {
                            expected: Some(expected),
                            ..Outcome::not_applicable(why.clone())
                        };
                    }
                    None
                }
                Live::Value(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
                Live::Value(Ok(a)) => Some(*a),
            }
        } else {
            Some(false)
        };
        if let Some(a) = active {
            if exists {
                actual.push(if a { "active" } else { "inactive" }.to_string());
            }
            ok &= a == want;
        }
    }
    Outcome::verdict(ok, expected, actual.join(", "), evidence)
}

fn proc_net(s: &Socket) -> &'static str {
    match (s.proto, s.address.is_ipv4()) {
        (Proto::Tcp, true) => "/proc/net/tcp",
        (Proto::Tcp, false) => "/proc/net/tcp6",
        (Proto::Udp, true) => "/proc/net/udp",
        (Proto::Udp, false) => "/proc/net/udp6",
    }
}

/// `listening: { allowed, include_loopback }`.
pub(crate) fn eval_listening(check: &ListeningCheck, facts: &Facts) -> Outcome {
    let allowed: Vec<String> = check
        .allowed
        .iter()
        .map(|(port, proto)| format!("{port}/{}", listen_proto(*proto).as_str()))
        .collect();
    let expected = if allowed.is_empty() {
        "no listening ports".to_string()
    } else {
        format!("only {} listening", allowed.join(", "))
    };
    let fact = match &facts.listening {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(Live::NotApplicable(why))) => return Outcome::not_applicable(why.clone()),
        Some(Ok(Live::Value(f))) => f,
    };
    let mut unexpected: Vec<String> = Vec::new();
    let mut evidence = Vec::new();
    for s in &fact.sockets {
        if (s.is_loopback() && !check.include_loopback)
            || check
                .allowed
                .iter()
                .any(|(port, proto)| *port == s.port && listen_proto(*proto) == s.proto)
        {
            continue;
        }
        let process = s
            .process
            .as_ref()
            .map(|(pid, comm)| format!(" by {comm} (pid {pid})"))
            .unwrap_or_default();
        let label = format!("{}/{}", s.port, s.proto.as_str());
        let with_process = match &s.process {
            Some((_, comm)) => format!("{label} ({comm})"),
            None => label,
        };
        if !unexpected.contains(&with_process) {
            unexpected.push(with_process);
        }
        let addr = match s.address {
            std::net::IpAddr::V4(a) => format!("{a}:{}", s.port),
            std::net::IpAddr::V6(a) => format!("[{a}]:{}", s.port),
        };
        evidence.push(Evidence::text(
            proc_net(s),
            format!("{addr} {}{process}", s.proto.as_str()),
        ));
    }
    if unexpected.is_empty() {
        Outcome::verdict(true, expected, "no unexpected port".to_string(), Vec::new())
    } else {
        Outcome::verdict(false, expected, unexpected.join(", "), evidence)
    }
}

fn listen_proto(p: ListenProto) -> Proto {
    match p {
        ListenProto::Tcp => Proto::Tcp,
        ListenProto::Udp => Proto::Udp,
    }
}

/// `firewall: { input_default: drop }`: every input base chain denies what
/// reaches its end, and IPv4 and IPv6 are each covered by a denying chain.
pub(crate) fn eval_firewall(check: &FirewallCheck, facts: &Facts) -> Outcome {
    let expected = format!(
        "every input chain's default is {} and IPv4 and IPv6 are covered",
        check.input_default
    );
    let fact = match &facts.firewall {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(Live::NotApplicable(why))) => return Outcome::not_applicable(why.clone()),
        Some(Ok(Live::Value(f))) => f,
    };
    let mut problems = Vec::new();
    let mut evidence = Vec::new();
    for chain in &fact.input_chains {
        if !chain.denies_by_default() {
            problems.push(format!("{} policy {}", chain.name, chain.policy));
            evidence.push(chain.evidence.clone());
        }
    }
    let denying = || fact.input_chains.iter().filter(|c| c.denies_by_default());
    if !denying().any(|c| c.family.covers_ipv4()) {
        problems.push("no denying IPv4 input chain".to_string());
    }
    if !denying().any(|c| c.family.covers_ipv6()) {
        problems.push("no denying IPv6 input chain".to_string());
    }
    if problems.is_empty() {
        let actual = fact
            .input_chains
            .iter()
            .map(|c| format!("{} policy {}", c.name, c.policy))
            .collect::<Vec<_>>()
            .join(", ");
        let evidence = fact
            .input_chains
            .iter()
            .map(|c| c.evidence.clone())
            .collect();
        return Outcome::verdict(true, expected, actual, evidence);
    }
    if evidence.is_empty() {
        evidence.extend(
            fact.sources
                .iter()
                .map(|s| Evidence::text(s.clone(), "ruleset")),
        );
    }
    Outcome::verdict(false, expected, problems.join(", "), evidence)
}
