//! Scalar comparisons (`equals`, `in`, `min`, `contains`, ...) and the
//! readable `expected` text that describes them.

use hardend_policy::Comparison;

/// How a value is compared: sshd keywords and values are case-insensitive,
/// sysctl values are exact text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Case {
    Sensitive,
    Insensitive,
}

/// Folds runs of whitespace to one space and trims both ends.
pub(crate) fn fold(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Parses a plain decimal number; `inf`, `nan` and hex are text, not numbers.
fn number(value: &str) -> Option<f64> {
    let v = value.trim();
    if v.is_empty()
        || !v
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e' | 'E'))
        || !v.chars().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    v.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Equality of two scalars: numeric when both sides are numbers, else text
/// after whitespace folding.
pub(crate) fn equal(a: &str, b: &str, case: Case) -> bool {
    if let (Some(x), Some(y)) = (number(a), number(b)) {
        return x == y;
    }
    let (a, b) = (fold(a), fold(b));
    match case {
        Case::Sensitive => a == b,
        Case::Insensitive => a.eq_ignore_ascii_case(&b),
    }
}

/// The items of a list value (`aes256-ctr,aes128-ctr`, `a b`).
pub(crate) fn items(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

/// True when every comparison that is set holds for `value`.
pub(crate) fn holds(cmp: &Comparison, value: &str, case: Case) -> bool {
    if let Some(want) = &cmp.equals
        && !equal(value, want, case)
    {
        return false;
    }
    if let Some(set) = &cmp.in_
        && !set.iter().any(|w| equal(value, w, case))
    {
        return false;
    }
    if let Some(set) = &cmp.not_in
        && set.iter().any(|w| equal(value, w, case))
    {
        return false;
    }
    if cmp.min.is_some() || cmp.max.is_some() {
        let Some(n) = number(value) else {
            return false;
        };
        if cmp.min.is_some_and(|min| n < min) || cmp.max.is_some_and(|max| n > max) {
            return false;
        }
    }
    if let Some(re) = &cmp.matches
        && !re.is_match(value)
    {
        return false;
    }
    if let Some(want) = &cmp.contains
        && !want
            .iter()
            .all(|w| items(value).any(|have| equal(have, w, case)))
    {
        return false;
    }
    if let Some(banned) = &cmp.not_contains
        && banned
            .iter()
            .any(|w| items(value).any(|have| equal(have, w, case)))
    {
        return false;
    }
    true
}

/// A number as an operator writes it: `4`, not `4.0`.
pub(crate) fn show_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn show_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// `label = no and label <= 4`: what the comparisons ask for, in one line.
pub(crate) fn expected(label: &str, cmp: &Comparison) -> String {
    let mut parts = Vec::new();
    if let Some(v) = &cmp.equals {
        parts.push(format!("{label} = {v}"));
    }
    if let Some(v) = &cmp.in_ {
        parts.push(format!("{label} in {}", show_list(v)));
    }
    if let Some(v) = &cmp.not_in {
        parts.push(format!("{label} not in {}", show_list(v)));
    }
    if let Some(n) = cmp.min {
        parts.push(format!("{label} >= {}", show_number(n)));
    }
    if let Some(n) = cmp.max {
        parts.push(format!("{label} <= {}", show_number(n)));
    }
    if let Some(re) = &cmp.matches {
        parts.push(format!("{label} matches /{}/", re.as_str()));
    }
    if let Some(v) = &cmp.contains {
        parts.push(format!("{label} contains {}", v.join(", ")));
    }
    if let Some(v) = &cmp.not_contains {
        parts.push(format!("{label} does not contain {}", v.join(", ")));
    }
    if parts.is_empty() {
        format!("{label} is set")
    } else {
        parts.join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex::Regex;

    fn cmp() -> Comparison {
        Comparison::default()
    }

    #[test]
    fn comparison_table() {
        let s = |v: &str| Some(v.to_string());
        let l = |v: &[&str]| Some(v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        #[rustfmt::skip]
        let table: Vec<(Comparison, &str, Case, bool)> = vec![
            (Comparison { equals: s("1"), ..cmp() }, "1", Case::Sensitive, true),
            (Comparison { equals: s("1"), ..cmp() }, "01", Case::Sensitive, true),
            (Comparison { equals: s("1"), ..cmp() }, "1.0", Case::Sensitive, true),
            (Comparison { equals: s("1"), ..cmp() }, "0", Case::Sensitive, false),
            (Comparison { equals: s("no"), ..cmp() }, "No", Case::Sensitive, false),
            (Comparison { equals: s("no"), ..cmp() }, "No", Case::Insensitive, true),
            (Comparison { equals: s("4096 87380 6291456"), ..cmp() }, "4096\t87380  6291456\n", Case::Sensitive, true),
            (Comparison { equals: s("inf"), ..cmp() }, "INF", Case::Sensitive, false),
            (Comparison { in_: l(&["no", "prohibit-password"]), ..cmp() }, "prohibit-password", Case::Insensitive, true),
            (Comparison { in_: l(&["no", "prohibit-password"]), ..cmp() }, "yes", Case::Insensitive, false),
            (Comparison { not_in: l(&["yes"]), ..cmp() }, "YES", Case::Insensitive, false),
            (Comparison { not_in: l(&["yes"]), ..cmp() }, "no", Case::Insensitive, true),
            (Comparison { max: Some(4.0), ..cmp() }, "4", Case::Sensitive, true),
            (Comparison { max: Some(4.0), ..cmp() }, "6", Case::Sensitive, false),
            (Comparison { max: Some(4.0), ..cmp() }, "four", Case::Sensitive, false),
            (Comparison { min: Some(2.0), max: Some(4.0), ..cmp() }, "1", Case::Sensitive, false),
            (Comparison { min: Some(2.0), max: Some(4.0), ..cmp() }, "3", Case::Sensitive, true),
            (Comparison { matches: Regex::new("^[0-9]+$").ok(), ..cmp() }, "300", Case::Sensitive, true),
            (Comparison { matches: Regex::new("^[0-9]+$").ok(), ..cmp() }, "3x", Case::Sensitive, false),
            (Comparison { contains: l(&["aes256-ctr"]), ..cmp() }, "aes128-ctr,AES256-ctr", Case::Insensitive, true),
            (Comparison { contains: l(&["aes256-ctr", "x"]), ..cmp() }, "aes128-ctr,aes256-ctr", Case::Insensitive, false),
            (Comparison { not_contains: l(&["3des-cbc", "aes128-cbc"]), ..cmp() }, "aes256-ctr,aes128-cbc", Case::Insensitive, false),
            (Comparison { not_contains: l(&["3des-cbc"]), ..cmp() }, "aes256-ctr 3des-cbc-etm", Case::Insensitive, true),
            (Comparison { equals: s("no"), not_in: l(&["no"]), ..cmp() }, "no", Case::Insensitive, false),
        ];
        for (i, (c, value, case, want)) in table.iter().enumerate() {
            assert_eq!(
                holds(c, value, *case),
                *want,
                "row {i}: {value:?} against {}",
                expected("v", c)
            );
        }
    }

    #[test]
    fn expected_text_reads_like_the_policy() {
        let c = Comparison {
            equals: Some("no".into()),
            ..cmp()
        };
        assert_eq!(
            expected("passwordauthentication", &c),
            "passwordauthentication = no"
        );
        let c = Comparison {
            max: Some(4.0),
            in_: Some(vec!["3".into(), "4".into()]),
            ..cmp()
        };
        assert_eq!(
            expected("maxauthtries", &c),
            "maxauthtries in [3, 4] and maxauthtries <= 4"
        );
        assert_eq!(show_number(0.5), "0.5");
    }
}
