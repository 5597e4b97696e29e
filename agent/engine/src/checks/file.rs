//! `file` checks: existence, permission bits, ownership and line content.

use hardend_facts::{Evidence, Facts, FileFact, FileKind, FileStat};
use hardend_policy::FileCheck;

use crate::Outcome;

/// Evaluates a file check.
///
/// A missing path fails `exists: true` and `contains`, and passes
/// `exists: false`. When `exists` is not given, a missing path holds
/// `mode_max`, `owner`, `group` and `not_contains` vacuously (there are no
/// permissions to be too wide and no line to match); write `exists: true`
/// to require the file.
pub(crate) fn eval(check: &FileCheck, facts: &Facts) -> Outcome {
    let expected = expected(check);
    let fact = match facts.files.get(&check.path) {
        None => return Outcome::not_collected(Some(expected)),
        Some(Err(e)) => return Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(f)) => f,
    };
    let Some(stat) = &fact.stat else {
        return missing(check, expected);
    };
    if check.exists == Some(false) {
        return Outcome::verdict(
            false,
            expected,
            "exists".to_string(),
            vec![Evidence::text(check.path.clone(), describe(stat))],
        );
    }
    let mut wrong: Vec<String> = Vec::new();
    if let Some(mask) = check.mode_max
        && stat.mode & !mask != 0
    {
        wrong.push(format!("mode {:04o}", stat.mode));
    }
    if let Some(owners) = &check.owner
        && !name_matches(owners, stat.owner.as_deref(), stat.uid)
    {
        wrong.push(format!(
            "owner {}",
            show_id(stat.owner.as_deref(), stat.uid)
        ));
    }
    if let Some(groups) = &check.group
        && !name_matches(groups, stat.group.as_deref(), stat.gid)
    {
        wrong.push(format!(
            "group {}",
            show_id(stat.group.as_deref(), stat.gid)
        ));
    }
    let mut evidence = vec![Evidence::text(check.path.clone(), describe(stat))];
    if check.contains.is_some() || check.not_contains.is_some() {
        match content(check, fact, stat) {
            Ok((mut problems, mut lines)) => {
                wrong.append(&mut problems);
                evidence.append(&mut lines);
            }
            Err(why) => return Outcome::error(Some(expected), why),
        }
    }
    if wrong.is_empty() {
        Outcome::verdict(true, expected, describe(stat), evidence)
    } else {
        Outcome::verdict(false, expected, wrong.join(", "), evidence)
    }
}

/// `file_exists: PATH` (the `when` shorthand).
pub(crate) fn eval_exists(path: &str, facts: &Facts) -> Outcome {
    let expected = format!("{path} exists");
    match facts.files.get(path) {
        None => Outcome::not_collected(Some(expected)),
        Some(Err(e)) => Outcome::error(Some(expected), e.message.clone()),
        Some(Ok(f)) => match &f.stat {
            Some(stat) => Outcome::verdict(
                true,
                expected,
                "exists".to_string(),
                vec![Evidence::text(path, describe(stat))],
            ),
            None => Outcome::verdict(
                false,
                expected,
                "missing".to_string(),
                vec![Evidence::text(path, "missing")],
            ),
        },
    }
}

fn missing(check: &FileCheck, expected: String) -> Outcome {
    let ok = check.exists != Some(true) && check.contains.is_none();
    Outcome::verdict(
        ok,
        expected,
        "missing".to_string(),
        vec![Evidence::text(check.path.clone(), "missing")],
    )
}

/// The per-line regex checks. Returns what is wrong and the evidence lines.
fn content(
    check: &FileCheck,
    fact: &FileFact,
    stat: &FileStat,
) -> Result<(Vec<String>, Vec<Evidence>), String> {
    let lines = match (&fact.lines, stat.kind) {
        (_, FileKind::Directory) => {
            return Err(format!(
                "{} is a directory, not a file with lines",
                check.path
            ));
        }
        (Some(Ok(lines)), _) => lines,
        (Some(Err(e)), _) => return Err(e.message.clone()),
        (None, FileKind::File) => return Err(crate::NOT_COLLECTED.to_string()),
        (None, _) => return Err(format!("{} is not a regular file", check.path)),
    };
    let numbered = || {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| (u32::try_from(i + 1).unwrap_or(u32::MAX), l))
    };
    let mut wrong = Vec::new();
    let mut evidence = Vec::new();
    if let Some(re) = &check.contains {
        match numbered().find(|(_, l)| re.is_match(l)) {
            Some((n, l)) => evidence.push(Evidence::line(check.path.clone(), n, l.clone())),
            None => wrong.push("no matching line".to_string()),
        }
    }
    if let Some(re) = &check.not_contains {
        let hits: Vec<(u32, &String)> = numbered().filter(|(_, l)| re.is_match(l)).collect();
        if let Some((first, _)) = hits.first() {
            let more = if hits.len() > 1 {
                format!(" and {} more", hits.len() - 1)
            } else {
                String::new()
            };
            wrong.push(format!("line {first} matches /{}/{more}", re.as_str()));
        }
        evidence.extend(
            hits.into_iter()
                .map(|(n, l)| Evidence::line(check.path.clone(), n, l.clone())),
        );
    }
    Ok((wrong, evidence))
}

fn name_matches(allowed: &[String], name: Option<&str>, id: u32) -> bool {
    allowed
        .iter()
        .any(|a| Some(a.as_str()) == name || a.parse::<u32>().is_ok_and(|n| n == id))
}

/// The name when the root's own database knows it, else the numeric id.
fn show_id(name: Option<&str>, id: u32) -> String {
    name.map(str::to_string).unwrap_or_else(|| id.to_string())
}

fn describe(stat: &FileStat) -> String {
    let kind = match stat.kind {
        FileKind::File => "file",
        FileKind::Directory => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "special file",
    };
    format!(
        "{kind} mode {:04o} owner {} group {}",
        stat.mode,
        show_id(stat.owner.as_deref(), stat.uid),
        show_id(stat.group.as_deref(), stat.gid)
    )
}

fn one_of(label: &str, names: &[String]) -> String {
    match names {
        [one] => format!("{label} {one}"),
        many => format!("{label} in [{}]", many.join(", ")),
    }
}

fn expected(check: &FileCheck) -> String {
    let mut parts = Vec::new();
    match check.exists {
        Some(true) => parts.push(format!("{} exists", check.path)),
        Some(false) => parts.push(format!("{} does not exist", check.path)),
        None => {}
    }
    if let Some(mask) = check.mode_max {
        parts.push(format!("mode <= {mask:04o}"));
    }
    if let Some(o) = &check.owner {
        parts.push(one_of("owner", o));
    }
    if let Some(g) = &check.group {
        parts.push(one_of("group", g));
    }
    if let Some(re) = &check.contains {
        parts.push(format!("a line matches /{}/", re.as_str()));
    }
    if let Some(re) = &check.not_contains {
        parts.push(format!("no line matches /{}/", re.as_str()));
    }
    if parts.is_empty() {
        format!("{} is checked", check.path)
    } else {
        parts.join(" and ")
    }
}
