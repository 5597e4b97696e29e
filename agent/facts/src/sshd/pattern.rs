//! The pattern languages of sshd_config: wildcard pattern lists (`User`,
//! `Host`), address lists with CIDR (`Address`), and the glob(3) patterns of
//! `Include`.

use std::net::IpAddr;

/// sshd's `match_pattern`: `*` matches any run of characters, `?` one
/// character, everything else itself.
pub fn match_pattern(s: &str, pattern: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    wildcard(&s, &p)
}

fn wildcard(s: &[char], p: &[char]) -> bool {
    // Iterative matcher with one backtracking point for the last `*`.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// sshd's `match_pattern_list`: 1 when a positive pattern matches and no
/// negated one does, -1 when a negated pattern (`!pat`) matches, 0 otherwise.
/// With `dolower` the patterns are folded to lower case first.
pub fn match_pattern_list(s: &str, list: &str, dolower: bool) -> i32 {
    let mut positive = false;
    for item in list.split(',') {
        let (negated, pat) = match item.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, item),
        };
        // sshd copies each sub-pattern into a 1024-byte buffer and gives up
        // on longer ones.
        if pat.len() >= 1023 {
            return 0;
        }
        let pat = if dolower {
            pat.to_ascii_lowercase()
        } else {
            pat.to_string()
        };
        if match_pattern(s, &pat) {
            if negated {
                return -1;
            }
            positive = true;
        }
    }
    i32::from(positive)
}

/// An address with a prefix length, as `addr_pton_cidr` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    pub addr: IpAddr,
    pub len: u8,
}

/// Result of reading one address-list entry as CIDR.
enum CidrParse {
    Ok(Cidr),
    /// Not an address: the entry is a wildcard pattern.
    NotAddress,
    /// An address with an impossible mask or host bits set: an error.
    Bad,
}

fn parse_cidr(entry: &str) -> CidrParse {
    if entry.len() >= 64 {
        return CidrParse::NotAddress;
    }
    let (addr_text, mask) = match entry.split_once('/') {
        Some((a, m)) => {
            if !m.starts_with(|c: char| c.is_ascii_digit())
                || !m.chars().all(|c| c.is_ascii_digit())
            {
                return CidrParse::NotAddress;
            }
            match m.parse::<u32>() {
                Ok(v) if v <= 128 => (a, Some(v)),
                _ => return CidrParse::NotAddress,
            }
        }
        None => (entry, None),
    };
    let Ok(addr) = addr_text.parse::<IpAddr>() else {
        return CidrParse::NotAddress;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = mask.unwrap_or(max);
    if len > max {
        return CidrParse::Bad;
    }
    let cidr = Cidr {
        addr,
        len: len as u8,
    };
    if host_bits(&cidr) {
        return CidrParse::Bad;
    }
    CidrParse::Ok(cidr)
}

fn to_bits(addr: &IpAddr) -> (u128, u32) {
    match addr {
        IpAddr::V4(a) => (u128::from(u32::from(*a)), 32),
        IpAddr::V6(a) => (u128::from(*a), 128),
    }
}

fn host_bits(c: &Cidr) -> bool {
    let (bits, width) = to_bits(&c.addr);
    let len = u32::from(c.len);
    if len >= width {
        return false;
    }
    let host_mask: u128 = (1u128 << (width - len)) - 1;
    bits & host_mask != 0
}

fn in_network(addr: &IpAddr, net: &Cidr) -> bool {
    if addr.is_ipv4() != net.addr.is_ipv4() {
        return false;
    }
    let (a, width) = to_bits(addr);
    let (n, _) = to_bits(&net.addr);
    let len = u32::from(net.len);
    if len == 0 {
        return true;
    }
    let shift = width - len;
    (a >> shift) == (n >> shift)
}

/// sshd's `addr_match_list`: 1 match, 0 no match, -1 a negated entry
/// matched, -2 the list is malformed. With `addr` `None` only the list is
/// checked (0 or -2).
pub fn addr_match_list(addr: Option<&str>, list: &str) -> i32 {
    let parsed = match addr {
        Some(a) => match a.parse::<IpAddr>() {
            Ok(ip) => Some((a, ip)),
            Err(_) => return 0,
        },
        None => None,
    };
    let mut ret = 0;
    for entry in list.split(',') {
        let (neg, e) = match entry.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        if e.is_empty() {
            return -2;
        }
        let hit = match parse_cidr(e) {
            CidrParse::Bad => return -2,
            CidrParse::Ok(net) => parsed.is_some_and(|(_, ip)| in_network(&ip, &net)),
            CidrParse::NotAddress => parsed.is_some_and(|(text, _)| match_pattern(text, e)),
        };
        if hit {
            if neg {
                return -1;
            }
            ret = 1;
        }
    }
    ret
}

/// True when `name` (one path component) matches the glob(3) pattern
/// component `pattern`: `*`, `?`, bracket expressions, backslash escapes, and
/// a leading `.` that only a literal `.` matches.
pub fn glob_component(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    fnmatch(&p, &n)
}

fn fnmatch(p: &[char], n: &[char]) -> bool {
    let mut pi = 0usize;
    let mut ni = 0usize;
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    if let Some((matched, next)) = bracket(p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else if n[ni] == '[' {
                        pi += 1;
                        ni += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '?' && c != '[' && c != '\\' && ni < n.len() && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return true;
        }
        match star {
            Some((sp, sn)) if sn < n.len() => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

/// Evaluates the bracket expression starting at `p[start] == '['` against
/// `c`. Returns whether it matched and the index after `]`, or `None` when the
/// bracket is not closed (then `[` is literal).
fn bracket(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&h| h != ']') {
            let hi = *p.get(i + 2)?;
            if lo <= c && c <= hi {
                matched = true;
            }
            i += 3;
        } else {
            if lo == c {
                matched = true;
            }
            i += 1;
        }
    }
}

/// True when the pattern has glob(3) metacharacters.
pub fn has_glob_meta(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Whether `path` matches the absolute glob `pattern`, component by component
/// (wildcards never match `/`).
pub fn glob_path(pattern: &str, path: &str) -> bool {
    let pc: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let nc: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    pc.len() == nc.len()
        && pc.iter().zip(nc.iter()).all(|(p, n)| {
            if has_glob_meta(p) || p.contains('\\') {
                glob_component(p, n)
            } else {
                p == n
            }
        })
}
