//! Temporary stand-in for the sshd model's effective-value API until it lands
//! in `hardend_facts::sshd`; removed once it does.

use hardend_facts::sshd::{Connection, EffectiveValue, SshdConfig};

#[derive(Debug, Clone)]
pub struct Variant {
    pub block: Option<usize>,
    pub value: EffectiveValue,
}

pub fn canonical_keyword(k: &str) -> Option<&'static str> {
    let _ = k;
    None
}

fn default(keyword: &str) -> &'static str {
    match keyword {
        "passwordauthentication" => "yes",
        "permitrootlogin" => "prohibit-password",
        "x11forwarding" => "no",
        "maxauthtries" => "6",
        _ => "",
    }
}

pub trait ShimModel {
    fn effective(&self, keyword: &str, conn: &Connection) -> EffectiveValue;
    fn global(&self, keyword: &str) -> EffectiveValue;
    fn variants(&self, keyword: &str) -> Vec<Variant>;
}

fn first(
    config: &SshdConfig,
    keyword: &str,
    applies: impl Fn(Option<usize>) -> bool,
) -> EffectiveValue {
    config
        .directives
        .iter()
        .find(|d| d.keyword == keyword && applies(d.block))
        .map(|d| EffectiveValue {
            value: d.args.join(" ").to_ascii_lowercase(),
            evidence: Some(d.evidence.clone()),
        })
        .unwrap_or(EffectiveValue {
            value: default(keyword).to_string(),
            evidence: None,
        })
}

impl ShimModel for SshdConfig {
    fn effective(&self, keyword: &str, conn: &Connection) -> EffectiveValue {
        first(self, keyword, |b| match b {
            None => true,
            Some(i) => self.blocks.get(i).is_some_and(|blk| {
                blk.criteria.iter().all(|c| match c.name.as_str() {
                    "all" => true,
                    "user" => conn
                        .user
                        .as_deref()
                        .is_some_and(|u| c.patterns.split(',').any(|p| p == u || p == "*")),
                    "group" => conn
                        .groups
                        .iter()
                        .any(|g| c.patterns.split(',').any(|p| p == g)),
                    "address" => conn
                        .addr
                        .as_deref()
                        .is_some_and(|a| c.patterns.split(',').any(|p| p == a)),
                    "host" => conn
                        .host
                        .as_deref()
                        .is_some_and(|a| c.patterns.split(',').any(|p| p == a)),
                    _ => false,
                })
            }),
        })
    }
    fn global(&self, keyword: &str) -> EffectiveValue {
        first(self, keyword, |b| b.is_none())
    }
    fn variants(&self, keyword: &str) -> Vec<Variant> {
        let mut out = vec![Variant {
            block: None,
            value: self.global(keyword),
        }];
        for i in 0..self.blocks.len() {
            if self
                .directives
                .iter()
                .any(|d| d.keyword == keyword && d.block == Some(i))
            {
                out.push(Variant {
                    block: Some(i),
                    value: first(self, keyword, |b| b.is_none() || b == Some(i)),
                });
            }
        }
        out
    }
}
