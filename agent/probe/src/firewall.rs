//! The netfilter ruleset from nft (or iptables-save), reduced to the base
//! chains on the input hook.
//!
//! The ruleset is live state: on an offline root the fact is not applicable.
//! `nft -j list ruleset` is asked first; when nft is missing or fails,
//! `iptables-save` and `ip6tables-save` are read instead. When nft works but
//! shows no input chain at all, iptables-save is read as well, for rules
//! loaded with iptables-legacy (which nft cannot see). When neither tool can
//! be read the fact is a failure (the rule errors), never an empty ruleset.
//!
//! The fact read from nft is kept and handed out again while the nf_tables
//! generation id (read over netlink, see [`generation`]), the network
//! namespace and the lists of legacy tables stay the same: every committed
//! ruleset change bumps the generation, so the poll backstop costs two small
//! netlink datagrams instead of starting nft. A fact that needed
//! iptables-save (legacy tables hold rules whose changes bump nothing) or
//! that failed is never kept.

pub(crate) mod command;
pub mod generation;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hardend_facts::firewall::{Family, InputChain};
use hardend_facts::{Evidence, FirewallFact, Live, ProbeFailure, Probed};
use serde::Deserialize;
use serde_json::Value;

use crate::RootFs;
pub use command::CommandError;

/// The largest JSON document accepted from nft: far above any real ruleset,
/// small enough that a runaway one cannot exhaust memory.
pub const MAX_NFT_JSON_BYTES: usize = 64 * 1024 * 1024;

/// The largest iptables-save output accepted.
pub const MAX_IPTABLES_SAVE_BYTES: usize = 64 * 1024 * 1024;

/// How long a firewall tool may take before it is killed.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(5);

/// The evidence path of chains read from nft.
const NFT_SOURCE: &str = "nft -j list ruleset";

/// Errors of reading the ruleset.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error(transparent)]
    Command(#[from] CommandError),
    #[error("{program} failed: {detail}")]
    Failed { program: String, detail: String },
    #[error("nft JSON is larger than {MAX_NFT_JSON_BYTES} bytes")]
    TooLarge,
    #[error("nft JSON is not valid: {0}")]
    Json(#[from] serde_json::Error),
    #[error("nft JSON entry {index} is malformed: {why}")]
    Malformed { index: usize, why: String },
}

/// What must stay the same for a kept fact to still be the ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    /// The device and inode of this thread's network namespace.
    netns: (u64, u64),
    /// The nf_tables generation id.
    generation: u32,
    /// The contents of the legacy table lists (None: the list is absent).
    legacy: Vec<Option<Vec<u8>>>,
}

impl Stamp {
    /// Reads the stamp of the live ruleset; None when any part of it cannot
    /// be read, and then nothing is kept or handed out.
    fn read(fs: &RootFs) -> Option<Stamp> {
        let netns = std::fs::metadata("/proc/thread-self/ns/net")
            .or_else(|_| std::fs::metadata("/proc/self/ns/net"))
            .ok()
            .map(|m| (m.dev(), m.ino()))?;
        let generation = generation::ruleset_generation().ok()?;
        let mut legacy = Vec::new();
        for path in LEGACY_TABLE_LISTS {
            match fs.read(path) {
                Ok(names) => legacy.push(Some(names)),
                Err(e) if e.is_not_found() => legacy.push(None),
                Err(_) => return None,
            }
        }
        Some(Stamp {
            netns,
            generation,
            legacy,
        })
    }

    /// Whether a legacy table is loaded, by the lists in the stamp.
    fn legacy_loaded(&self) -> bool {
        self.legacy
            .iter()
            .flatten()
            .any(|names| names.iter().any(|b| !b.is_ascii_whitespace()))
    }
}

/// The last fact read from nft with the stamp read just before it.
static KEPT: Mutex<Option<(Stamp, FirewallFact)>> = Mutex::new(None);

/// How many times nft has been started by this process.
static NFT_RUNS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has started `nft -j list ruleset`: a probe
/// answered from the kept fact does not count.
pub fn nft_runs() -> u64 {
    NFT_RUNS.load(Ordering::Relaxed)
}

/// Reads the live ruleset: nft first, iptables-save as the fallback. While
/// the ruleset's stamp is unchanged, the fact nft gave last time is returned
/// without starting nft.
pub fn probe(fs: &RootFs) -> Probed<Live<FirewallFact>> {
    if !fs.is_live() {
        return Ok(Live::NotApplicable(
            "offline root: the firewall is state of the running system".to_string(),
        ));
    }
    // The stamp is read before nft runs: a change in between gives a newer
    // fact under an older stamp, which the next probe replaces.
    let stamp = Stamp::read(fs);
    if let Some(stamp) = &stamp
        && let Ok(kept) = KEPT.lock()
        && let Some((kept_stamp, fact)) = kept.as_ref()
        && kept_stamp == stamp
    {
        return Ok(Live::Value(fact.clone()));
    }
    let nft = read_nft();
    // Keep the fact only when iptables-save plays no part in it below.
    if let (Some(stamp), Ok(fact)) = (stamp, &nft)
        && !(fact.input_chains.is_empty() && stamp.legacy_loaded())
        && let Ok(mut kept) = KEPT.lock()
    {
        *kept = Some((stamp, fact.clone()));
    }
    match nft {
        // Rules loaded with iptables-legacy live outside nf_tables, where nft
        // cannot see them: when nft shows no input chain and legacy tables
        // exist, iptables-save is asked too (with iptables-nft it shows
        // nothing more).
        Ok(mut fact) if fact.input_chains.is_empty() => {
            if legacy_tables_loaded(fs)
                && let Ok(legacy) = read_iptables()
                && !legacy.input_chains.is_empty()
            {
                fact.input_chains.extend(legacy.input_chains);
                fact.sources.extend(legacy.sources);
            }
            Ok(Live::Value(fact))
        }
        Ok(fact) => Ok(Live::Value(fact)),
        Err(nft_error) => match read_iptables() {
            Ok(fact) => Ok(Live::Value(fact)),
            Err(iptables_error) => Err(ProbeFailure::new(format!(
                "cannot read the firewall: {nft_error}; {iptables_error}"
            ))),
        },
    }
}

/// The kernel's lists of loaded legacy (x_tables) tables, IPv4 and IPv6.
const LEGACY_TABLE_LISTS: [&str; 2] = ["/proc/net/ip_tables_names", "/proc/net/ip6_tables_names"];

/// Whether any iptables-legacy table is loaded in this network namespace.
/// Both lists empty or absent (no x_tables support) means there is nothing
/// that iptables-save could show beyond what nft showed, so starting it
/// and ip6tables-save would only cost time. A list that cannot be read
/// counts as loaded, so the programs are asked.
pub fn legacy_tables_loaded(fs: &RootFs) -> bool {
    LEGACY_TABLE_LISTS.iter().any(|path| match fs.read(path) {
        Ok(names) => names.iter().any(|b| !b.is_ascii_whitespace()),
        Err(e) => !e.is_not_found(),
    })
}

/// Runs `nft -j list ruleset` and parses it.
pub fn read_nft() -> Result<FirewallFact, FirewallError> {
    NFT_RUNS.fetch_add(1, Ordering::Relaxed);
    let done = command::run(
        "nft",
        &["-j", "list", "ruleset"],
        TOOL_TIMEOUT,
        MAX_NFT_JSON_BYTES,
    )?;
    if !done.status.success() {
        return Err(FirewallError::Failed {
            program: "nft".to_string(),
            detail: done.failure(),
        });
    }
    let text = String::from_utf8_lossy(&done.stdout);
    // An empty ruleset prints a document with only the metainfo; a kernel
    // without nf_tables prints nothing at all, which means no chains either.
    let input_chains = if text.trim().is_empty() {
        Vec::new()
    } else {
        parse_nft_json(&text)?
    };
    Ok(FirewallFact {
        input_chains,
        sources: vec![NFT_SOURCE.to_string()],
    })
}

/// Runs `iptables-save` (required) and `ip6tables-save` (when installed) and
/// parses their `filter` tables. Without ip6tables-save no IPv6 chain is
/// reported, so a default-deny check fails for IPv6 rather than passing.
/// The two programs run at the same time; the answer is as if they ran one
/// after the other (an IPv4 failure is reported first).
pub fn read_iptables() -> Result<FirewallFact, FirewallError> {
    let run = |program: &str| command::run(program, &[], TOOL_TIMEOUT, MAX_IPTABLES_SAVE_BYTES);
    let (v4, v6) = std::thread::scope(|scope| {
        let v6 = std::thread::Builder::new()
            .name("hardend-ip6tables".to_string())
            .spawn_scoped(scope, || run("ip6tables-save"))
            .ok();
        let v4 = run("iptables-save");
        // Without a thread, ip6tables-save runs in turn.
        let v6 = match v6.map(|handle| handle.join()) {
            Some(Ok(v6)) => v6,
            _ => run("ip6tables-save"),
        };
        (v4, v6)
    });
    let mut fact = FirewallFact::default();
    for (program, family, done) in [
        ("iptables-save", Family::Ipv4, v4),
        ("ip6tables-save", Family::Ipv6, v6),
    ] {
        let done = match done {
            Ok(done) => done,
            Err(CommandError::NotInstalled { .. }) if family == Family::Ipv6 => continue,
            Err(e) => return Err(e.into()),
        };
        if !done.status.success() {
            return Err(FirewallError::Failed {
                program: program.to_string(),
                detail: done.failure(),
            });
        }
        let text = String::from_utf8_lossy(&done.stdout);
        fact.input_chains.extend(parse_iptables_save(&text, family));
        fact.sources.push(program.to_string());
    }
    Ok(fact)
}

/// A chain object of nft's JSON schema; unknown fields are ignored.
#[derive(Debug, Deserialize)]
struct NftChain {
    family: String,
    table: String,
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    hook: Option<String>,
    policy: Option<String>,
}

/// A rule object of nft's JSON schema; only its statements matter here.
#[derive(Debug, Deserialize)]
struct NftRule {
    family: String,
    table: String,
    chain: String,
    #[serde(default)]
    expr: Vec<Value>,
}

/// The document `nft -j list ruleset` prints.
#[derive(Debug, Deserialize)]
struct NftDocument {
    nftables: Vec<Value>,
}

/// Parses `nft -j list ruleset` output into the base chains on the input hook
/// (type `filter`), in the order nft lists them.
///
/// A chain or rule entry that does not have the expected shape is an error
/// rather than skipped: skipping an accepting chain would make a host look
/// safer than it is.
pub fn parse_nft_json(text: &str) -> Result<Vec<InputChain>, FirewallError> {
    if text.len() > MAX_NFT_JSON_BYTES {
        return Err(FirewallError::TooLarge);
    }
    let document: NftDocument = serde_json::from_str(text)?;
    let mut chains: Vec<NftChain> = Vec::new();
    // The last rule seen for each (family, table, chain): nft lists the rules
    // of a chain in their order of evaluation.
    let mut last_rules: HashMap<(String, String, String), Vec<Value>> = HashMap::new();
    for (index, entry) in document.nftables.into_iter().enumerate() {
        let Value::Object(mut object) = entry else {
            return Err(FirewallError::Malformed {
                index,
                why: "not an object".to_string(),
            });
        };
        if let Some(chain) = object.remove("chain") {
            let chain: NftChain =
                serde_json::from_value(chain).map_err(|e| FirewallError::Malformed {
                    index,
                    why: format!("chain: {e}"),
                })?;
            chains.push(chain);
        } else if let Some(rule) = object.remove("rule") {
            let rule: NftRule =
                serde_json::from_value(rule).map_err(|e| FirewallError::Malformed {
                    index,
                    why: format!("rule: {e}"),
                })?;
            last_rules.insert((rule.family, rule.table, rule.chain), rule.expr);
        }
    }

    let mut out = Vec::new();
    for chain in chains {
        let on_input = chain.hook.as_deref() == Some("input");
        let filters = chain.kind.as_deref().is_none_or(|k| k == "filter");
        if !on_input || !filters {
            continue;
        }
        let policy = chain
            .policy
            .as_deref()
            .unwrap_or("accept")
            .to_ascii_lowercase();
        let key = (chain.family, chain.table, chain.name);
        let ends_in_unconditional_drop = last_rules
            .get(&key)
            .is_some_and(|expr| nft_rule_drops_everything(expr));
        let (family, table, name) = key;
        let text = format!(
            "table {family} {table} chain {name}: hook input, policy {policy}{}",
            if ends_in_unconditional_drop {
                ", last rule drops everything"
            } else {
                ""
            }
        );
        out.push(InputChain {
            family: nft_family(&family),
            name: format!("nft {family} {table} {name}"),
            policy,
            ends_in_unconditional_drop,
            evidence: Evidence::text(NFT_SOURCE, text),
        });
    }
    Ok(out)
}

fn nft_family(family: &str) -> Family {
    match family {
        "ip" => Family::Ipv4,
        "ip6" => Family::Ipv6,
        "inet" => Family::Inet,
        _ => Family::Other,
    }
}

/// True when a rule's statements are a `drop` or `reject` verdict preceded
/// only by statements that match nothing (`counter`, `log`).
fn nft_rule_drops_everything(expr: &[Value]) -> bool {
    let Some((last, before)) = expr.split_last() else {
        return false;
    };
    let is_verdict = statement_name(last).is_some_and(|n| n == "drop" || n == "reject");
    is_verdict
        && before
            .iter()
            .all(|s| statement_name(s).is_some_and(|n| n == "counter" || n == "log"))
}

/// The name of a statement object with exactly one key (`{"drop": null}`).
fn statement_name(statement: &Value) -> Option<&str> {
    let object = statement.as_object()?;
    if object.len() != 1 {
        return None;
    }
    object.keys().next().map(String::as_str)
}

/// Parses `iptables-save` (or `ip6tables-save`) output: the `INPUT` chain of
/// each `*filter` table, with its policy and whether its last rule is a bare
/// `-j DROP` or `-j REJECT` with no match.
pub fn parse_iptables_save(text: &str, family: Family) -> Vec<InputChain> {
    let tool = if family == Family::Ipv6 {
        "ip6tables"
    } else {
        "iptables"
    };
    let source = format!("{tool}-save");
    let mut out = Vec::new();
    let mut in_filter = false;
    // The policy line (number, text, policy) and the last INPUT rule.
    let mut policy: Option<(u32, String, String)> = None;
    let mut last_rule: Option<Vec<String>> = None;

    let mut finish = |policy: &mut Option<(u32, String, String)>,
                      last_rule: &mut Option<Vec<String>>| {
        if let Some((line, line_text, policy)) = policy.take() {
            let ends_in_unconditional_drop = last_rule
                .as_deref()
                .is_some_and(iptables_rule_drops_everything);
            out.push(InputChain {
                family,
                name: format!("{tool} filter INPUT"),
                policy,
                ends_in_unconditional_drop,
                evidence: Evidence::line(source.clone(), line, line_text),
            });
        }
        *last_rule = None;
    };

    for (index, raw) in text.lines().enumerate() {
        let number = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let line = raw.trim();
        if let Some(table) = line.strip_prefix('*') {
            finish(&mut policy, &mut last_rule);
            in_filter = table.trim() == "filter";
            continue;
        }
        if line == "COMMIT" {
            finish(&mut policy, &mut last_rule);
            in_filter = false;
            continue;
        }
        if !in_filter {
            continue;
        }
        if let Some(rest) = line.strip_prefix(':') {
            let mut words = rest.split_whitespace();
            if words.next() == Some("INPUT") {
                let value = words.next().unwrap_or("-").to_ascii_lowercase();
                policy = Some((number, line.to_string(), value));
            }
            continue;
        }
        let mut words: Vec<&str> = line.split_whitespace().collect();
        // `iptables-save -c` puts the counters first: `[0:0] -A INPUT ...`.
        if words.first().is_some_and(|w| w.starts_with('[')) {
            words.remove(0);
        }
        if words.len() >= 2 && words[0] == "-A" && words[1] == "INPUT" {
            last_rule = Some(words[2..].iter().map(|w| w.to_string()).collect());
        }
    }
    finish(&mut policy, &mut last_rule);
    out
}

/// `-j DROP`, `-j REJECT`, or `-j REJECT --reject-with TYPE`: no match at all.
fn iptables_rule_drops_everything(words: &[String]) -> bool {
    match words {
        [j, target] => j == "-j" && (target == "DROP" || target == "REJECT"),
        [j, target, with, _] => j == "-j" && target == "REJECT" && with == "--reject-with",
        _ => false,
    }
}

#[cfg(test)]
mod tests;
