//! The netfilter ruleset, reduced to what default-deny checks need.

use serde::{Deserialize, Serialize};

use crate::Evidence;

/// Which address families a chain filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// nft `ip`, iptables.
    Ipv4,
    /// nft `ip6`, ip6tables.
    Ipv6,
    /// nft `inet`: both.
    Inet,
    /// Any other nft family (bridge, arp, netdev): covers neither.
    Other,
}

impl Family {
    pub fn covers_ipv4(self) -> bool {
        matches!(self, Family::Ipv4 | Family::Inet)
    }
    pub fn covers_ipv6(self) -> bool {
        matches!(self, Family::Ipv6 | Family::Inet)
    }
}

/// A base chain on the input hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputChain {
    pub family: Family,
    /// `nft inet filter input`, `iptables INPUT`, ...
    pub name: String,
    /// The chain's policy, lower case (`accept`, `drop`).
    pub policy: String,
    /// The last rule drops or rejects everything, with no match expression.
    pub ends_in_unconditional_drop: bool,
    pub evidence: Evidence,
}

impl InputChain {
    /// Traffic that reaches the end of this chain is denied.
    pub fn denies_by_default(&self) -> bool {
        self.policy == "drop" || self.ends_in_unconditional_drop
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FirewallFact {
    pub input_chains: Vec<InputChain>,
    /// What was read: `nft -j list ruleset`, `iptables-save`, ...
    pub sources: Vec<String>,
}
