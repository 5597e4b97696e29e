//! Tests of the nft JSON and iptables-save parsers on realistic output.

use super::*;
use proptest::prelude::*;

/// What nft 1.0.6 prints for a typical host: an inet default-drop input
/// chain ending in a counted reject, a forward chain, and an `ip` table whose
/// input chain accepts but ends in a logged drop.
const NFT_TYPICAL: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "filter", "handle": 1}}, {"chain": {"family": "inet", "table": "filter", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}, {"chain": {"family": "inet", "table": "filter", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 3, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 4, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"counter": {"packets": 0, "bytes": 0}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "filter", "chain": "input", "handle": 6, "expr": [{"counter": {"packets": 0, "bytes": 0}}, {"reject": {"type": "icmpx", "expr": "port-unreachable"}}]}}, {"table": {"family": "ip", "name": "t4", "handle": 2}}, {"chain": {"family": "ip", "table": "t4", "name": "inp", "handle": 1, "type": "filter", "hook": "input", "prio": 10, "policy": "accept"}}, {"rule": {"family": "ip", "table": "t4", "chain": "inp", "handle": 2, "expr": [{"log": {"prefix": "x"}}, {"drop": null}]}}]}"#;

#[test]
fn nft_input_chains_with_policy_and_final_verdict() {
    let chains = parse_nft_json(NFT_TYPICAL).unwrap();
    assert_eq!(chains.len(), 2, "{chains:#?}");

    let inet = &chains[0];
    assert_eq!(inet.family, Family::Inet);
    assert_eq!(inet.name, "nft inet filter input");
    assert_eq!(inet.policy, "drop");
    assert!(inet.ends_in_unconditional_drop);
    assert_eq!(inet.evidence.path, "nft -j list ruleset");
    assert!(
        inet.evidence
            .text
            .as_deref()
            .is_some_and(|t| t.contains("policy drop")),
        "{:?}",
        inet.evidence
    );

    let ip = &chains[1];
    assert_eq!(ip.family, Family::Ipv4);
    assert_eq!(ip.policy, "accept");
    assert!(ip.ends_in_unconditional_drop, "log + drop is unconditional");
    assert!(ip.denies_by_default());
}

#[test]
fn nft_accepting_chain_with_conditional_drop_does_not_deny() {
    let text = r#"{"nftables": [{"metainfo": {"json_schema_version": 1}},
        {"chain": {"family": "ip6", "table": "f", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "ip6", "table": "f", "chain": "in", "expr": [{"drop": null}]}},
        {"rule": {"family": "ip6", "table": "f", "chain": "in", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 23}}, {"drop": null}]}}]}"#;
    let chains = parse_nft_json(text).unwrap();
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0].family, Family::Ipv6);
    assert!(
        !chains[0].ends_in_unconditional_drop,
        "the last rule has a match"
    );
    assert!(!chains[0].denies_by_default());
}

#[test]
fn nft_missing_policy_means_accept_and_other_hooks_and_types_are_ignored() {
    let text = r#"{"nftables": [
        {"chain": {"family": "inet", "table": "f", "name": "in", "type": "filter", "hook": "input", "prio": 0}},
        {"chain": {"family": "ip", "table": "nat", "name": "in", "type": "nat", "hook": "input", "prio": 100, "policy": "accept"}},
        {"chain": {"family": "ip", "table": "f", "name": "out", "type": "filter", "hook": "output", "prio": 0, "policy": "drop"}},
        {"chain": {"family": "inet", "table": "f", "name": "regular", "handle": 9}},
        {"chain": {"family": "bridge", "table": "b", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "DROP"}}]}"#;
    let chains = parse_nft_json(text).unwrap();
    assert_eq!(chains.len(), 2, "{chains:#?}");
    assert_eq!(chains[0].policy, "accept");
    assert!(!chains[0].denies_by_default());
    assert_eq!(chains[1].family, Family::Other);
    assert_eq!(chains[1].policy, "drop");
}

#[test]
fn nft_reject_after_a_limit_is_conditional() {
    let text = r#"{"nftables": [
        {"chain": {"family": "inet", "table": "f", "name": "in", "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
        {"rule": {"family": "inet", "table": "f", "chain": "in", "expr": [{"limit": {"rate": 5, "per": "second"}}, {"reject": null}]}}]}"#;
    let chains = parse_nft_json(text).unwrap();
    assert!(!chains[0].ends_in_unconditional_drop);
}

#[test]
fn nft_empty_ruleset_has_no_chains() {
    let text = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}]}"#;
    assert!(parse_nft_json(text).unwrap().is_empty());
}

#[test]
fn nft_malformed_documents_are_errors() {
    assert!(matches!(
        parse_nft_json("not json"),
        Err(FirewallError::Json(_))
    ));
    assert!(matches!(
        parse_nft_json(r#"{"other": []}"#),
        Err(FirewallError::Json(_))
    ));
    assert!(matches!(
        parse_nft_json(r#"{"nftables": [{"chain": {"family": "inet"}}]}"#),
        Err(FirewallError::Malformed { index: 0, .. })
    ));
    assert!(matches!(
        parse_nft_json(r#"{"nftables": [1]}"#),
        Err(FirewallError::Malformed { .. })
    ));
    // Deep nesting hits serde_json's recursion limit instead of the stack.
    let deep = format!(
        r#"{{"nftables": [{}{}]}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert!(parse_nft_json(&deep).is_err());
}

const IPTABLES_SAVE: &str = "\
# Generated by iptables-save v1.8.9 (nf_tables) on Sun Nov 22 10:45:13 2026
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
-A INPUT -j DROP
COMMIT
*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
COMMIT
# Completed on Sun Nov 22 10:45:13 2026
";

#[test]
fn iptables_filter_input_policy_is_read_and_nat_is_ignored() {
    let chains = parse_iptables_save(IPTABLES_SAVE, Family::Ipv4);
    assert_eq!(chains.len(), 1, "{chains:#?}");
    let chain = &chains[0];
    assert_eq!(chain.family, Family::Ipv4);
    assert_eq!(chain.name, "iptables filter INPUT");
    assert_eq!(chain.policy, "drop");
    assert!(!chain.ends_in_unconditional_drop);
    assert_eq!(chain.evidence.path, "iptables-save");
    assert_eq!(chain.evidence.line, Some(8));
    assert_eq!(chain.evidence.text.as_deref(), Some(":INPUT DROP [0:0]"));
}

#[test]
fn ip6tables_accept_policy_ending_in_bare_reject_denies() {
    let text = "\
*filter
:INPUT ACCEPT [12:900]
:FORWARD ACCEPT [0:0]
[3:180] -A INPUT -i lo -j ACCEPT
[0:0] -A INPUT -j REJECT --reject-with icmp6-port-unreachable
-A FORWARD -j ACCEPT
COMMIT
";
    let chains = parse_iptables_save(text, Family::Ipv6);
    assert_eq!(chains.len(), 1);
    assert_eq!(chains[0].name, "ip6tables filter INPUT");
    assert_eq!(chains[0].evidence.path, "ip6tables-save");
    assert_eq!(chains[0].policy, "accept");
    assert!(chains[0].ends_in_unconditional_drop);
    assert!(chains[0].denies_by_default());
}

#[test]
fn iptables_drop_with_a_match_or_followed_by_accept_is_not_unconditional() {
    let with_match = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.0.0.0/8 -j DROP\nCOMMIT\n";
    assert!(!parse_iptables_save(with_match, Family::Ipv4)[0].ends_in_unconditional_drop);
    let then_accept =
        "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n";
    assert!(!parse_iptables_save(then_accept, Family::Ipv4)[0].ends_in_unconditional_drop);
}

#[test]
fn iptables_without_filter_table_has_no_chain() {
    assert!(parse_iptables_save("", Family::Ipv4).is_empty());
    assert!(parse_iptables_save("*mangle\n:INPUT ACCEPT [0:0]\nCOMMIT\n", Family::Ipv4).is_empty());
}

#[test]
fn offline_roots_are_not_applicable() {
    let dir = tempfile::tempdir().unwrap();
    let fact = probe(&RootFs::new(dir.path())).unwrap();
    assert!(matches!(fact, Live::NotApplicable(_)), "{fact:?}");
}

proptest! {
    #[test]
    fn nft_parser_never_panics(text in ".{0,400}") {
        let _ = parse_nft_json(&text);
    }

    #[test]
    fn nft_parser_never_panics_on_mutated_documents(cut in 0usize..NFT_TYPICAL.len(), junk in "[\\[\\]{}\",:a-z0-9 ]{0,20}") {
        let mut text = NFT_TYPICAL.to_string();
        if text.is_char_boundary(cut) {
            text.insert_str(cut, &junk);
        }
        let _ = parse_nft_json(&text);
    }

    #[test]
    fn iptables_parser_never_panics(text in "(\\*filter|:INPUT [A-Z]{0,6}|-A INPUT( -j)?( [A-Z-]{0,8})*|\\[0:0\\]|COMMIT|.{0,30})(\n(\\*filter|:INPUT DROP|-A INPUT -j DROP|COMMIT|.{0,30})){0,12}") {
        let _ = parse_iptables_save(&text, Family::Ipv4);
    }
}

#[test]
fn legacy_tables_count_only_when_listed() {
    let dir = tempfile::tempdir().unwrap();
    let fs = RootFs::new(dir.path());
    // No x_tables support at all: nothing to ask iptables-save about.
    assert!(!legacy_tables_loaded(&fs));
    let net = dir.path().join("proc/net");
    std::fs::create_dir_all(&net).unwrap();
    std::fs::write(net.join("ip_tables_names"), "").unwrap();
    std::fs::write(net.join("ip6_tables_names"), "\n").unwrap();
    assert!(!legacy_tables_loaded(&fs), "empty lists");
    std::fs::write(net.join("ip6_tables_names"), "filter\n").unwrap();
    assert!(legacy_tables_loaded(&fs), "an IPv6 table");
    std::fs::write(net.join("ip6_tables_names"), "").unwrap();
    std::fs::write(net.join("ip_tables_names"), "nat\nfilter\n").unwrap();
    assert!(legacy_tables_loaded(&fs), "IPv4 tables");
    // A list that cannot be read: the programs are asked.
    std::fs::remove_file(net.join("ip_tables_names")).unwrap();
    std::fs::create_dir(net.join("ip_tables_names")).unwrap();
    assert!(legacy_tables_loaded(&fs), "unreadable list");
}
