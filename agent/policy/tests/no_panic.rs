//! Property tests: no input, however malformed, makes the policy or configuration parser panic, and every refusal is well-formed.

use std::path::Path;

use hardend_policy::config::parse_config;
use hardend_policy::parse_policy;
use proptest::prelude::*;

/// Pieces of YAML and of the policy vocabulary, so generated texts reach
/// deep into validation rather than failing at the first byte.
const TOKENS: &[&str] = &[
    "policy:",
    "rules:",
    "id:",
    "title:",
    "version:",
    "severity:",
    "check:",
    "when:",
    "references:",
    "sysctl:",
    "sshd_config:",
    "file:",
    "accounts:",
    "package:",
    "service:",
    "listening:",
    "firewall:",
    "all:",
    "any:",
    "not:",
    "file_exists:",
    "package_installed:",
    "key:",
    "equals:",
    "in:",
    "not_in:",
    "min:",
    "max:",
    "matches:",
    "contains:",
    "not_contains:",
    "match:",
    "path:",
    "mode_max:",
    "owner:",
    "group:",
    "require:",
    "allow:",
    "name:",
    "installed:",
    "unit:",
    "enabled:",
    "active:",
    "allowed:",
    "input_default:",
    "root:",
    "policies:",
    "watch:",
    "deadlines:",
    "collector:",
    "waivers:",
    "journald:",
    "expires:",
    "reason:",
    "rule:",
    "poll_interval:",
    "debounce_ms:",
    "url:",
    "critical",
    "low",
    "drop",
    "no",
    "yes",
    "true",
    "~",
    "null",
    "1",
    "-1",
    "0640",
    "1.5",
    "1e999",
    "0x1F",
    "22/tcp",
    "/etc/shadow",
    "relative",
    "p/r",
    "2027-01-31",
    "5s",
    "(",
    "[a-",
    "\\",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "- ",
    "  ",
    "    ",
    "\n",
    "\n  ",
    "\n  - ",
    "&a ",
    "*a",
    "<<: *a",
    "!!str ",
    "!tag ",
    "|\n  ",
    ">\n  ",
    "\"",
    "'",
    "# c",
    "---",
    "...",
    "?",
    "\t",
    "%YAML 1.2",
    "\u{0}",
    "\u{feff}",
    "é",
];

const VALID: &str = "policy:\n  id: p\n  title: T\n  version: \"1\"\nrules:\n  - id: r\n    title: T\n    severity: low\n    when: { file_exists: /usr/sbin/sshd }\n    check: { all: [ { sysctl: { key: a.b, equals: 1 } }, { file: { path: /etc/x, mode_max: \"0640\" } } ] }\n";

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..120).prop_map(|parts| {
        let mut text = String::new();
        for (i, part) in parts.iter().enumerate() {
            text.push_str(part);
            if i % 3 == 2 {
                text.push(' ');
            }
        }
        text
    })
}

/// The valid policy with a few byte-level edits (kept on char boundaries).
fn mutated() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (0..VALID.len(), prop::sample::select(TOKENS), any::<bool>()),
        1..6,
    )
    .prop_map(|edits| {
        let mut text = VALID.to_string();
        for (at, token, delete) in edits {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            if delete {
                let mut end = (at + token.len()).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(at..end, "");
            } else {
                text.insert_str(at, token);
            }
        }
        text
    })
}

fn check_both(text: &str) {
    if let Err(errors) = parse_policy(text, Path::new("f.yaml")) {
        assert!(!errors.is_empty(), "an error result is never empty");
        for e in &errors {
            let line = e.to_string();
            assert!(line.starts_with("f.yaml:"), "{line:?}");
            assert!(!line.contains('\n'), "{line:?}");
            assert!(
                e.location().line >= 1 && e.location().column >= 1,
                "{line:?}"
            );
        }
    }
    if let Err(errors) = parse_config(text, Path::new("c.yaml")) {
        assert!(!errors.is_empty(), "an error result is never empty");
        for e in &errors {
            let line = e.to_string();
            assert!(line.starts_with("c.yaml:"), "{line:?}");
            assert!(!line.contains('\n'), "{line:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_both(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in yamlish()) {
        check_both(&text);
    }

    #[test]
    fn edited_valid_policies_never_panic(text in mutated()) {
        check_both(&text);
    }
}

#[test]
fn the_unedited_policy_is_valid() {
    // The mutation strategy starts from a valid text; keep it valid.
    parse_policy(VALID, Path::new("f.yaml")).expect("valid");
}
