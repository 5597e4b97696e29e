//! Loading policy files and directories: name order, hidden files, duplicate ids across files, size limits, and hostile YAML.

use std::fs;
use std::path::{Path, PathBuf};

use hardend_policy::{PolicyError, load_paths, parse_policy};

fn policy(id: &str) -> String {
    format!(
        "policy: {{ id: {id}, title: T, version: \"1\" }}\nrules:\n  - {{ id: r, title: T, severity: low, check: {{ package_installed: x }} }}\n"
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write fixture");
    path
}

fn lines(errors: &[PolicyError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn a_directory_loads_yaml_and_yml_files_in_name_order_skipping_hidden_and_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "20-b.yml", &policy("b"));
    write(dir.path(), "10-c.yaml", &policy("c"));
    write(dir.path(), "30-a.yaml", &policy("a"));
    write(dir.path(), ".hidden.yaml", "not: [valid");
    write(dir.path(), "notes.txt", "not: [valid");
    write(dir.path(), "40-d.yaml.bak", "not: [valid");
    fs::create_dir(dir.path().join("sub.yaml")).expect("mkdir");

    let policies = load_paths(&[dir.path().to_path_buf()]).expect("loads");
    let ids: Vec<_> = policies.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["c", "b", "a"]);
    assert_eq!(policies[0].source, dir.path().join("10-c.yaml"));
}

#[test]
fn files_and_directories_mix_in_the_order_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("d");
    fs::create_dir(&sub).expect("mkdir");
    write(&sub, "a.yaml", &policy("in-dir"));
    let single = write(dir.path(), "single.yaml", &policy("single"));
    let policies = load_paths(&[single, sub]).expect("loads");
    let ids: Vec<_> = policies.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["single", "in-dir"]);
}

#[test]
fn duplicate_policy_ids_across_files_name_both_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = write(dir.path(), "a.yaml", &policy("same"));
    let second = write(dir.path(), "b.yaml", &policy("same"));
    let errors = load_paths(&[dir.path().to_path_buf()]).expect_err("duplicate ids");
    assert_eq!(
        lines(&errors),
        [format!(
            "{}:1:15: duplicate policy id `same` (also defined at {}:1:15)",
            second.display(),
            first.display()
        )]
    );
}

#[test]
fn errors_of_every_file_are_reported_together() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = write(
        dir.path(),
        "a.yaml",
        "policy: { id: a, title: T, version: \"1\" }\nrules: 5\n",
    );
    let b = write(
        dir.path(),
        "b.yaml",
        "policy: { id: B, title: T, version: \"1\" }\nrules: []\n",
    );
    let missing = dir.path().join("missing.yaml");
    let errors = load_paths(&[dir.path().to_path_buf(), missing.clone()]).expect_err("invalid");
    let lines = lines(&errors);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with(&format!("{}:1:1: cannot read: ", missing.display())),
        "{lines:#?}"
    );
    assert_eq!(
        lines[1],
        format!(
            "{}:2:8: `rules` must be a list of rules, found an integer",
            a.display()
        )
    );
    assert_eq!(
        lines[2],
        format!(
            "{}:1:15: invalid policy id `B`: ids must match [a-z0-9][a-z0-9._-]*",
            b.display()
        )
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_before_parsing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let big = dir.path().join("big.yaml");
    // Not YAML at all: a parse would report a syntax error instead.
    fs::write(&big, vec![b'['; 5 * 1024 * 1024]).expect("write");
    let errors = load_paths(std::slice::from_ref(&big)).expect_err("too large");
    assert_eq!(
        lines(&errors),
        [format!(
            "{}:1:1: the file is 5242880 bytes, over the limit of 4194304 bytes",
            big.display()
        )]
    );
}

#[test]
fn a_file_that_is_not_utf8_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("latin1.yaml");
    fs::write(&path, b"policy: { id: p, title: \xe9t\xe9 }\n").expect("write");
    let errors = load_paths(std::slice::from_ref(&path)).expect_err("not utf-8");
    assert_eq!(
        lines(&errors),
        [format!(
            "{}:1:1: cannot read: the file is not valid UTF-8",
            path.display()
        )]
    );
}

fn parse_error(source: &str) -> Vec<String> {
    match parse_policy(source, Path::new("h.yaml")) {
        Ok(_) => panic!("hostile input was accepted"),
        Err(errors) => lines(&errors),
    }
}

#[test]
fn hostile_billion_laughs_is_refused() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..=12 {
        let p = i - 1;
        text.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    text.push_str("policy: *a12\nrules: []\n");
    let errors = parse_error(&text);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].contains("anchors or aliases"), "{errors:#?}");
}

#[test]
fn hostile_huge_string_is_refused() {
    let text = format!(
        "policy:\n  id: p\n  title: \"{}\"\n",
        "x".repeat(100 * 1024 * 1024)
    );
    let errors = parse_error(&text);
    assert_eq!(
        errors,
        [format!(
            "h.yaml:1:1: the file is {} bytes, over the limit of 4194304 bytes",
            text.len()
        )]
    );
}

#[test]
fn hostile_deep_nesting_is_refused() {
    let flow = format!("policy: {}{}", "[".repeat(10_000), "]".repeat(10_000));
    let errors = parse_error(&flow);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("h.yaml:1:"), "{errors:#?}");

    let block = format!("policy:\n  {}x\n", "- ".repeat(10_000));
    let errors = parse_error(&block);
    assert_eq!(
        errors,
        ["h.yaml:2:65: the YAML is nested too deeply (at most 32 levels)"]
    );

    let maps = format!("policy: {}1{}", "{a: ".repeat(10_000), "}".repeat(10_000));
    let errors = parse_error(&maps);
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn combinators_nest_within_the_depth_limit() {
    // Ten levels of `not` are far deeper than any real policy and still fine.
    let mut check = String::from("{ package_installed: x }");
    for _ in 0..10 {
        check = format!("{{ not: {check} }}");
    }
    let source = format!(
        "policy: {{ id: p, title: T, version: \"1\" }}\nrules:\n  - {{ id: r, title: T, severity: low, check: {check} }}\n"
    );
    parse_policy(&source, Path::new("p.yaml")).expect("ten nested combinators are valid");
}
