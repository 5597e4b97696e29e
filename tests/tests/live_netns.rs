//! The firewall and listening probes against real netfilter rulesets and real
//! sockets, each inside a throwaway network namespace.
//!
//! The test process never enters a namespace itself. Each test runs this
//! same test binary again as `unshare -n -- <this binary> <test> --exact`
//! with `HARDEND_NETNS_HELPER` set; in that child the test body sets up the
//! namespace (loads a ruleset, starts a listener), runs the real probe, and
//! prints what it saw as JSON lines. The parent reads those lines and makes
//! the assertions. Every child is bounded by `timeout`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use hardend_facts::firewall::{Family, InputChain};
use hardend_facts::listening::{Proto, Socket};
use hardend_facts::{FirewallFact, ListeningFact, Live, Probed};
use hardend_probe::listening::SocketTables;
use hardend_probe::{RootFs, firewall, listening};
use hardend_tests::{have_command, is_root, require};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Set in the child that runs inside the namespace.
const HELPER_ENV: &str = "HARDEND_NETNS_HELPER";
/// Prefix of the lines the child prints for the parent.
const MARK: &str = "HARDEND-NETNS-RESULT ";

fn inside_netns() -> bool {
    std::env::var_os(HELPER_ENV).is_some()
}

/// Prints one value for the parent (in the child). libtest may have begun
/// the line with the test's name, so the parent looks for the mark anywhere.
fn emit(value: &impl Serialize) {
    println!(
        "{MARK}{}",
        serde_json::to_string(value).expect("serializable")
    );
}

/// Runs the test `name` of this binary again inside a new network namespace
/// and returns the values it emitted; None when the fast subset skips it.
fn rerun_in_netns(name: &str, tools: &[&str]) -> Option<Vec<Value>> {
    let can_unshare = is_root() && have_command("unshare") && have_command("timeout");
    if !require("unshare -n (root)", can_unshare) {
        return None;
    }
    for tool in tools {
        if !require(tool, have_command(tool)) {
            return None;
        }
    }
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new("timeout")
        .args(["60", "unshare", "-n", "--"])
        .arg(exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .expect("start the namespace child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the namespace child failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let values: Vec<Value> = stdout
        .lines()
        .filter_map(|l| l.find(MARK).map(|at| &l[at + MARK.len()..]))
        .map(|l| serde_json::from_str(l).expect("the child prints JSON"))
        .collect();
    assert!(
        !values.is_empty(),
        "the child printed nothing:\n{stdout}\n{stderr}"
    );
    Some(values)
}

fn value<T: DeserializeOwned>(v: &Value) -> T {
    serde_json::from_value(v.clone()).expect("the child's value has the expected type")
}

/// Runs a program in the child and insists that it succeeds.
fn must_run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// In the child: loads `ruleset` with `nft -f`, then emits the firewall
/// probe's fact and the raw `nft -j list ruleset` text.
fn load_and_probe(ruleset: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("ruleset.nft");
    std::fs::write(&file, ruleset).expect("write ruleset");
    must_run("nft", &["-f", file.to_str().expect("utf-8 path")]);
    let fact: Probed<Live<FirewallFact>> = firewall::probe(&RootFs::new("/"));
    emit(&fact);
    emit(&must_run("nft", &["-j", "list", "ruleset"]));
}

/// In the parent: the probe's fact, checked against parsing the raw text.
fn firewall_from(values: &[Value]) -> FirewallFact {
    let fact: Probed<Live<FirewallFact>> = value(&values[0]);
    let Ok(Live::Value(fact)) = fact else {
        panic!("the probe inside the namespace failed: {fact:?}");
    };
    assert_eq!(
        fact.sources.first().map(String::as_str),
        Some("nft -j list ruleset")
    );
    let raw: String = value(&values[1]);
    let from_nft: Vec<InputChain> = fact
        .input_chains
        .iter()
        .filter(|c| c.name.starts_with("nft "))
        .cloned()
        .collect();
    assert_eq!(firewall::parse_nft_json(&raw).expect("parse"), from_nft);
    fact
}

/// The contract of `firewall: { input_default: drop }` for one family: at
/// least one input chain covers it, and every such chain denies by default.
fn default_deny(chains: &[InputChain], covers: fn(Family) -> bool) -> bool {
    let relevant: Vec<&InputChain> = chains.iter().filter(|c| covers(c.family)).collect();
    !relevant.is_empty() && relevant.iter().all(|c| c.denies_by_default())
}

const INET_DROP: &str = "
table inet filter {
    chain input {
        type filter hook input priority 0; policy drop;
        iif lo accept
        ct state established,related accept
        tcp dport 22 accept
    }
}
";

const IP_ONLY_DROP: &str = "
table ip filter {
    chain input {
        type filter hook input priority 0; policy drop;
        iif lo accept
    }
}
";

const INET_ACCEPT: &str = "
table inet filter {
    chain input {
        type filter hook input priority 0; policy accept;
        tcp dport 23 drop
    }
}
";

const INET_ACCEPT_ENDING_IN_REJECT: &str = "
table inet filter {
    chain input {
        type filter hook input priority 0; policy accept;
        iif lo accept
        counter reject with icmpx type admin-prohibited
    }
}
";

#[test]
fn nft_inet_policy_drop_denies_ipv4_and_ipv6() {
    if inside_netns() {
        return load_and_probe(INET_DROP);
    }
    let Some(values) = rerun_in_netns("nft_inet_policy_drop_denies_ipv4_and_ipv6", &["nft"]) else {
        return;
    };
    let fact = firewall_from(&values);
    assert_eq!(fact.input_chains.len(), 1, "{fact:#?}");
    let chain = &fact.input_chains[0];
    assert_eq!(chain.family, Family::Inet);
    assert_eq!(chain.name, "nft inet filter input");
    assert_eq!(chain.policy, "drop");
    assert!(default_deny(&fact.input_chains, Family::covers_ipv4));
    assert!(default_deny(&fact.input_chains, Family::covers_ipv6));
}

#[test]
fn nft_ip_only_table_leaves_ipv6_uncovered() {
    if inside_netns() {
        return load_and_probe(IP_ONLY_DROP);
    }
    let Some(values) = rerun_in_netns("nft_ip_only_table_leaves_ipv6_uncovered", &["nft"]) else {
        return;
    };
    let fact = firewall_from(&values);
    assert_eq!(fact.input_chains.len(), 1, "{fact:#?}");
    assert_eq!(fact.input_chains[0].family, Family::Ipv4);
    assert!(default_deny(&fact.input_chains, Family::covers_ipv4));
    assert!(!fact.input_chains.iter().any(|c| c.family.covers_ipv6()));
    assert!(!default_deny(&fact.input_chains, Family::covers_ipv6));
}

#[test]
fn nft_accept_policy_is_not_default_deny() {
    if inside_netns() {
        return load_and_probe(INET_ACCEPT);
    }
    let Some(values) = rerun_in_netns("nft_accept_policy_is_not_default_deny", &["nft"]) else {
        return;
    };
    let fact = firewall_from(&values);
    assert_eq!(fact.input_chains.len(), 1, "{fact:#?}");
    assert_eq!(fact.input_chains[0].policy, "accept");
    assert!(!fact.input_chains[0].ends_in_unconditional_drop);
    assert!(!default_deny(&fact.input_chains, Family::covers_ipv4));
    assert!(!default_deny(&fact.input_chains, Family::covers_ipv6));
}

#[test]
fn nft_accept_policy_ending_in_reject_is_default_deny() {
    if inside_netns() {
        return load_and_probe(INET_ACCEPT_ENDING_IN_REJECT);
    }
    let Some(values) = rerun_in_netns(
        "nft_accept_policy_ending_in_reject_is_default_deny",
        &["nft"],
    ) else {
        return;
    };
    let fact = firewall_from(&values);
    assert_eq!(fact.input_chains.len(), 1, "{fact:#?}");
    assert_eq!(fact.input_chains[0].policy, "accept");
    assert!(fact.input_chains[0].ends_in_unconditional_drop);
    assert!(default_deny(&fact.input_chains, Family::covers_ipv4));
    assert!(default_deny(&fact.input_chains, Family::covers_ipv6));
}

#[test]
fn an_empty_namespace_has_no_input_chain() {
    if inside_netns() {
        let fact: Probed<Live<FirewallFact>> = firewall::probe(&RootFs::new("/"));
        emit(&fact);
        emit(&must_run("nft", &["-j", "list", "ruleset"]));
        return;
    }
    let Some(values) = rerun_in_netns("an_empty_namespace_has_no_input_chain", &["nft"]) else {
        return;
    };
    let fact = firewall_from(&values);
    // iptables-legacy could add its own (accepting) INPUT chains here; nft
    // itself has none in a fresh namespace.
    assert!(
        !fact.input_chains.iter().any(|c| c.name.starts_with("nft ")),
        "{fact:#?}"
    );
    assert!(!default_deny(&fact.input_chains, Family::covers_ipv4));
    assert!(!default_deny(&fact.input_chains, Family::covers_ipv6));
}

#[test]
fn iptables_save_fallback_reads_policies_and_final_rejects() {
    if inside_netns() {
        must_run("iptables", &["-P", "INPUT", "DROP"]);
        must_run("iptables", &["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"]);
        must_run("ip6tables", &["-A", "INPUT", "-i", "lo", "-j", "ACCEPT"]);
        must_run("ip6tables", &["-A", "INPUT", "-j", "REJECT"]);
        let read = firewall::read_iptables().map_err(|e| e.to_string());
        emit(&read);
        emit(&must_run("iptables-save", &[]));
        emit(&must_run("ip6tables-save", &[]));
        return;
    }
    let Some(values) = rerun_in_netns(
        "iptables_save_fallback_reads_policies_and_final_rejects",
        &["iptables", "ip6tables", "iptables-save", "ip6tables-save"],
    ) else {
        return;
    };
    let read: Result<FirewallFact, String> = value(&values[0]);
    let fact = read.expect("iptables-save works inside the namespace");
    assert_eq!(fact.sources, vec!["iptables-save", "ip6tables-save"]);
    assert_eq!(fact.input_chains.len(), 2, "{fact:#?}");
    let v4 = &fact.input_chains[0];
    assert_eq!((v4.family, v4.policy.as_str()), (Family::Ipv4, "drop"));
    assert!(!v4.ends_in_unconditional_drop);
    assert_eq!(v4.evidence.path, "iptables-save");
    assert_eq!(
        v4.evidence
            .text
            .as_deref()
            .map(|t| t.starts_with(":INPUT DROP")),
        Some(true)
    );
    let v6 = &fact.input_chains[1];
    assert_eq!((v6.family, v6.policy.as_str()), (Family::Ipv6, "accept"));
    assert!(v6.ends_in_unconditional_drop, "{v6:#?}");
    assert!(default_deny(&fact.input_chains, Family::covers_ipv4));
    assert!(default_deny(&fact.input_chains, Family::covers_ipv6));

    // The pure parser agrees with what the probe read.
    let v4_text: String = value(&values[1]);
    let v6_text: String = value(&values[2]);
    assert_eq!(
        firewall::parse_iptables_save(&v4_text, Family::Ipv4),
        vec![v4.clone()]
    );
    assert_eq!(
        firewall::parse_iptables_save(&v6_text, Family::Ipv6),
        vec![v6.clone()]
    );
}

/// Binds a TCP listener on 127.0.0.1, a v6-only TCP listener on `::` and a
/// UDP socket on `::1` (ports from argv), says `ready`, and lives 20 s at most.
const LISTENER_PROGRAM: &str = "
import socket, sys, time
t4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t4.bind(('127.0.0.1', int(sys.argv[1])))
t4.listen()
t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
t6.bind(('::', int(sys.argv[2])))
t6.listen()
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.bind(('::1', int(sys.argv[3])))
print('ready', flush=True)
time.sleep(20)
";

const TCP4_PORT: u16 = 18080;
const TCP6_PORT: u16 = 18443;
const UDP6_PORT: u16 = 15353;

#[test]
fn listening_probe_sees_the_namespace_listeners_and_their_process() {
    if inside_netns() {
        must_run("ip", &["link", "set", "lo", "up"]);
        let mut child = Command::new("python3")
            .args(["-c", LISTENER_PROGRAM])
            .args([TCP4_PORT, TCP6_PORT, UDP6_PORT].map(|p| p.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read ready");
        assert_eq!(line.trim(), "ready", "the listener did not start");
        let fact = listening::probe(&RootFs::new("/"));
        let raw = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let _ = child.kill();
        let _ = child.wait();
        emit(&fact);
        emit(&raw);
        emit(&child.id());
        return;
    }
    let Some(values) = rerun_in_netns(
        "listening_probe_sees_the_namespace_listeners_and_their_process",
        &["ip", "python3"],
    ) else {
        return;
    };
    let fact: Probed<Live<ListeningFact>> = value(&values[0]);
    let Ok(Live::Value(fact)) = fact else {
        panic!("the probe inside the namespace failed: {fact:?}");
    };
    let pid: u32 = value(&values[2]);
    // A fresh namespace has nothing else listening.
    assert_eq!(fact.sockets.len(), 3, "{:#?}", fact.sockets);
    let find = |proto: Proto, port: u16| -> &Socket {
        fact.sockets
            .iter()
            .find(|s| s.proto == proto && s.port == port)
            .unwrap_or_else(|| panic!("{proto:?}/{port} missing: {:#?}", fact.sockets))
    };
    let t4 = find(Proto::Tcp, TCP4_PORT);
    assert_eq!(t4.address.to_string(), "127.0.0.1");
    assert!(t4.is_loopback());
    let t6 = find(Proto::Tcp, TCP6_PORT);
    assert_eq!(t6.address.to_string(), "::");
    assert!(!t6.is_loopback());
    let u6 = find(Proto::Udp, UDP6_PORT);
    assert_eq!(u6.address.to_string(), "::1");
    assert!(u6.is_loopback());
    for socket in [t4, t6, u6] {
        let (owner, comm) = socket.process.clone().expect("the owner is found");
        assert_eq!(owner, pid);
        assert!(comm.starts_with("python"), "{comm}");
    }

    // /proc/net/tcp as read inside the namespace, through the pure parser.
    let raw: String = value(&values[1]);
    let parsed = listening::parse_proc_net(&raw, Proto::Tcp, false);
    assert_eq!(parsed.len(), 1, "{parsed:#?}");
    assert_eq!(parsed[0].port, TCP4_PORT);
    assert!(parsed[0].is_loopback());
}

/// Binds a TCP listener on 127.0.0.1, a dual-stack TCP listener on `::`, a
/// UDP socket on 0.0.0.0 and one on `::1`, plus sockets that do not listen:
/// an accepted TCP connection (both ends) and a connected UDP socket. Ports
/// from argv; says `ready` and lives 20 s at most.
const MIXED_SOCKETS_PROGRAM: &str = "
import socket, sys, time
p = [int(a) for a in sys.argv[1:5]]
t4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
t4.bind(('127.0.0.1', p[0]))
t4.listen()
t6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
t6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
t6.bind(('::', p[1]))
t6.listen()
u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u4.bind(('0.0.0.0', p[2]))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u6.bind(('::1', p[3]))
client = socket.create_connection(('127.0.0.1', p[0]))
server, _ = t4.accept()
uc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
uc.connect(('127.0.0.1', p[2]))
print('ready', flush=True)
time.sleep(20)
";

const MIXED_PORTS: [u16; 4] = [18081, 18444, 10053, 15354];

#[test]
fn netlink_and_proc_net_agree_inside_a_namespace() {
    if inside_netns() {
        must_run("ip", &["link", "set", "lo", "up"]);
        let mut child = Command::new("python3")
            .args(["-c", MIXED_SOCKETS_PROGRAM])
            .args(MIXED_PORTS.map(|p| p.to_string()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read ready");
        assert_eq!(line.trim(), "ready", "the listener did not start");
        let fs = RootFs::new("/");
        let netlink =
            listening::read_sockets(&fs, SocketTables::SockDiag).map_err(|e| e.to_string());
        let proc = listening::read_sockets(&fs, SocketTables::ProcNet).map_err(|e| e.to_string());
        let fact = listening::probe(&fs);
        let _ = child.kill();
        let _ = child.wait();
        emit(&netlink);
        emit(&proc);
        emit(&fact);
        emit(&child.id());
        return;
    }
    let Some(values) = rerun_in_netns(
        "netlink_and_proc_net_agree_inside_a_namespace",
        &["ip", "python3"],
    ) else {
        return;
    };
    let netlink: Result<Vec<Socket>, String> = value(&values[0]);
    let proc: Result<Vec<Socket>, String> = value(&values[1]);
    let fact: Probed<Live<ListeningFact>> = value(&values[2]);
    let pid: u32 = value(&values[3]);
    let netlink = netlink.expect("sock_diag netlink works inside the namespace");
    let proc = proc.expect("/proc/net is readable inside the namespace");
    assert_eq!(netlink, proc, "the two sources differ");
    let Ok(Live::Value(fact)) = fact else {
        panic!("the probe inside the namespace failed: {fact:?}");
    };
    assert_eq!(fact.sockets, netlink, "the probe reports the netlink list");

    // Exactly the four bound sockets, sorted, all owned by the program; the
    // connection and the connected UDP socket are left out.
    let seen: Vec<(Proto, String, u16)> = netlink
        .iter()
        .map(|s| (s.proto, s.address.to_string(), s.port))
        .collect();
    assert_eq!(
        seen,
        vec![
            (Proto::Tcp, "127.0.0.1".to_string(), MIXED_PORTS[0]),
            (Proto::Tcp, "::".to_string(), MIXED_PORTS[1]),
            (Proto::Udp, "0.0.0.0".to_string(), MIXED_PORTS[2]),
            (Proto::Udp, "::1".to_string(), MIXED_PORTS[3]),
        ]
    );
    for socket in &netlink {
        assert_ne!(socket.inode, 0, "{socket:?}");
        let (owner, comm) = socket.process.clone().expect("the owner is found");
        assert_eq!(owner, pid);
        assert!(comm.starts_with("python"), "{comm}");
    }
}

#[test]
fn legacy_tables_are_seen_only_once_loaded() {
    if inside_netns() {
        let fs = RootFs::new("/");
        emit(&firewall::legacy_tables_loaded(&fs));
        must_run("ip6tables-legacy", &["-P", "INPUT", "DROP"]);
        emit(&firewall::legacy_tables_loaded(&fs));
        emit(&std::fs::read_to_string("/proc/net/ip6_tables_names").expect("ip6_tables_names"));
        return;
    }
    let Some(values) = rerun_in_netns(
        "legacy_tables_are_seen_only_once_loaded",
        &["ip6tables-legacy"],
    ) else {
        return;
    };
    let before: bool = value(&values[0]);
    let after: bool = value(&values[1]);
    let names: String = value(&values[2]);
    assert!(!before, "a fresh namespace has no legacy table");
    assert!(after, "the filter table is loaded: {names:?}");
    assert!(names.lines().any(|l| l == "filter"), "{names:?}");
}

/// In the child: one firewall probe, with how many times nft ran for it and
/// the generation read just after.
fn probe_counting_nft() -> (Probed<Live<FirewallFact>>, u64, u32) {
    let before = firewall::nft_runs();
    let fact = firewall::probe(&RootFs::new("/"));
    let runs = firewall::nft_runs() - before;
    let generation = firewall::generation::ruleset_generation().expect("the nf_tables generation");
    (fact, runs, generation)
}

#[test]
fn an_unchanged_generation_reuses_the_fact_and_a_new_ruleset_does_not() {
    if inside_netns() {
        let load = |ruleset: &str| {
            let dir = tempfile::tempdir().expect("tempdir");
            let file = dir.path().join("ruleset.nft");
            std::fs::write(&file, ruleset).expect("write ruleset");
            must_run("nft", &["-f", file.to_str().expect("utf-8 path")]);
        };
        load(INET_DROP);
        emit(&probe_counting_nft());
        emit(&probe_counting_nft());
        must_run("nft", &["flush", "ruleset"]);
        load(INET_ACCEPT);
        emit(&probe_counting_nft());
        emit(&probe_counting_nft());
        // With no input chain in nf_tables and a legacy table loaded, the
        // fact comes from iptables-save too, whose rules bump no
        // generation: it is read afresh every time.
        must_run("nft", &["flush", "ruleset"]);
        must_run("ip6tables-legacy", &["-P", "INPUT", "DROP"]);
        emit(&probe_counting_nft());
        emit(&probe_counting_nft());
        return;
    }
    let Some(values) = rerun_in_netns(
        "an_unchanged_generation_reuses_the_fact_and_a_new_ruleset_does_not",
        &["nft", "ip6tables-legacy", "ip6tables-save", "iptables-save"],
    ) else {
        return;
    };
    let probes: Vec<(Probed<Live<FirewallFact>>, u64, u32)> = values.iter().map(value).collect();
    assert_eq!(probes.len(), 6, "{probes:?}");
    let fact = |i: usize| match &probes[i].0 {
        Ok(Live::Value(fact)) => fact.clone(),
        other => panic!("probe {i} failed: {other:?}"),
    };
    let runs = |i: usize| probes[i].1;
    let generation = |i: usize| probes[i].2;
    // The first probe runs nft; the second, with the same generation, does
    // not and gives the same fact.
    assert_eq!(runs(0), 1);
    assert_eq!(generation(1), generation(0));
    assert_eq!(runs(1), 0, "nft ran although the generation was unchanged");
    assert_eq!(fact(1), fact(0));
    assert_eq!(fact(0).input_chains[0].policy, "drop");
    // A new ruleset is a new generation, and its fact is read.
    assert_ne!(generation(2), generation(1));
    assert_eq!(runs(2), 1, "nft did not run after the ruleset changed");
    assert_eq!(fact(2).input_chains.len(), 1, "{:?}", fact(2));
    assert_eq!(fact(2).input_chains[0].policy, "accept");
    assert_ne!(fact(2), fact(1));
    assert_eq!(runs(3), 0);
    assert_eq!(fact(3), fact(2));
    // With a legacy table loaded (which iptables-save reads when it is the
    // legacy variant), nft runs on every probe again.
    for i in [4, 5] {
        assert_eq!(runs(i), 1, "probe {i} reused a fact that iptables-save fed");
        assert!(fact(i).input_chains.iter().all(|c| c.policy != "accept"));
    }
}
