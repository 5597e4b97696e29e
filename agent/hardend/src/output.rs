//! Rendering a report: the terminal table, the `hardend.report/v1` JSON, and
//! JUnit XML for CI systems. Pure functions of a [`Report`].

use std::fmt::Write as _;

use hardend_engine::{Report, RuleResult, Status, Summary};

/// The width the table is laid out for.
pub const TABLE_WIDTH: usize = 80;

const STATUS_WIDTH: usize = 6;
const SEVERITY_WIDTH: usize = 8;
/// Rule ids are padded to the longest one in the report, up to this width.
const MAX_ID_WIDTH: usize = 32;
/// Details (expected, actual, evidence) are indented under their rule.
const INDENT: &str = "        ";

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot serialize the report as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Error => "ERROR",
        Status::NotApplicable => "N/A",
        Status::Waived => "WAIVED",
    }
}

/// ANSI colour of a status: green pass, red fail, magenta error, dim n/a, cyan waived.
fn status_colour(s: Status) -> &'static str {
    match s {
        Status::Pass => "\x1b[32m",
        Status::Fail => "\x1b[1;31m",
        Status::Error => "\x1b[35m",
        Status::NotApplicable => "\x1b[2m",
        Status::Waived => "\x1b[36m",
    }
}

const RESET: &str = "\x1b[0m";

/// Cuts `text` to at most `width` characters, marking the cut with `…`.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// Replaces control characters (escape sequences from hostile files must not
/// reach the terminal) with `?`, and tabs with a space.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// The table for a terminal: one line per rule under a header per policy;
/// failing, erroring and waived rules get their details indented below;
/// ends with the summary line.
pub fn render_table(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "hardend check: {} (root {}) at {}",
        printable(&report.host.hostname),
        printable(&report.host.root),
        report.started_at
    );
    let id_width = report
        .results
        .iter()
        .map(|r| r.rule.chars().count())
        .max()
        .unwrap_or(0)
        .min(MAX_ID_WIDTH);
    let mut current: Option<&str> = None;
    for r in &report.results {
        if current != Some(r.policy.as_str()) {
            current = Some(r.policy.as_str());
            let version = report
                .policies
                .iter()
                .find(|p| p.id == r.policy)
                .map(|p| format!(" {}", p.version))
                .unwrap_or_default();
            let _ = writeln!(out, "\n{}{}", printable(&r.policy), printable(&version));
        }
        row(&mut out, r, colour, id_width);
    }
    let _ = writeln!(out, "\n{}", summary_line(&report.summary));
    out
}

fn row(out: &mut String, r: &RuleResult, colour: bool, id_width: usize) {
    let label = status_label(r.status);
    let status = if colour {
        format!("{}{label:<STATUS_WIDTH$}{RESET}", status_colour(r.status))
    } else {
        format!("{label:<STATUS_WIDTH$}")
    };
    let id = format!("{:<id_width$}", printable(&r.rule));
    let used = STATUS_WIDTH + 1 + SEVERITY_WIDTH + 1 + id.chars().count() + 1;
    let title = truncate(&printable(&r.title), TABLE_WIDTH.saturating_sub(used));
    let line = format!(
        "{status} {:<SEVERITY_WIDTH$} {id} {title}",
        r.severity.as_str()
    );
    let _ = writeln!(out, "{}", line.trim_end());
    let detail = |out: &mut String, label: &str, text: &str| {
        let _ = writeln!(out, "{INDENT}{label} {}", printable(text));
    };
    match r.status {
        Status::Fail => {}
        Status::Waived if r.waived_status == Some(Status::Fail) => {}
        Status::Error | Status::Waived => {
            if let Some(m) = &r.message {
                detail(out, "message: ", m);
            }
            return;
        }
        Status::Pass | Status::NotApplicable => return,
    }
    if let Some(e) = &r.expected {
        detail(out, "expected:", e);
    }
    if let Some(a) = &r.actual {
        detail(out, "actual:  ", a);
    }
    for ev in &r.evidence {
        let _ = writeln!(out, "{INDENT}{}", printable(&evidence_line(ev)));
    }
    if let Some(m) = &r.message {
        detail(out, "message: ", m);
    }
}

/// `path:line: text`, `path: text` or `path`.
pub fn evidence_line(ev: &hardend_facts::Evidence) -> String {
    match (ev.line, &ev.text) {
        (Some(n), Some(t)) => format!("{}:{n}: {t}", ev.path),
        (Some(n), None) => format!("{}:{n}", ev.path),
        (None, Some(t)) => format!("{}: {t}", ev.path),
        (None, None) => ev.path.clone(),
    }
}

/// `212 rules: 180 passed, 25 failed, 1 error, 6 not applicable, 0 waived; score 87.8%`.
pub fn summary_line(s: &Summary) -> String {
    let score = match s.score() {
        Some(v) => format!("{v:.1}%"),
        None => "n/a".to_string(),
    };
    format!(
        "{} rules: {} passed, {} failed, {} error{}, {} not applicable, {} waived; score {score}",
        s.total,
        s.pass,
        s.fail,
        s.error,
        if s.error == 1 { "" } else { "s" },
        s.not_applicable,
        s.waived
    )
}

/// The report as pretty-printed `hardend.report/v1` JSON.
pub fn render_json(report: &Report) -> Result<String, OutputError> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    Ok(text)
}

/// Escapes text for XML content and attribute values. Characters XML 1.0
/// cannot carry (most control characters) become `?`; line breaks and tabs
/// become character references so attributes keep them.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// Expected, actual, evidence and message of a result, one per line.
fn details(r: &RuleResult) -> String {
    let mut lines = Vec::new();
    if let Some(e) = &r.expected {
        lines.push(format!("expected: {e}"));
    }
    if let Some(a) = &r.actual {
        lines.push(format!("actual: {a}"));
    }
    for ev in &r.evidence {
        lines.push(format!("evidence: {}", evidence_line(ev)));
    }
    if let Some(m) = &r.message {
        lines.push(format!("message: {m}"));
    }
    lines.join("\n")
}

/// JUnit XML: one `testsuite` per policy, one `testcase` per rule; failures
/// carry expected, actual and evidence; errors are `<error>`; not applicable
/// and waived rules are `<skipped>`.
pub fn render_junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let s = &report.summary;
    let seconds = report.duration_ms / 1000.0;
    let _ = writeln!(
        out,
        "<testsuites name=\"hardend\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{seconds:.6}\" timestamp=\"{}\">",
        s.total,
        s.fail,
        s.error,
        s.not_applicable + s.waived,
        xml_escape(&report.started_at)
    );
    let mut order: Vec<&str> = report.policies.iter().map(|p| p.id.as_str()).collect();
    for r in &report.results {
        if !order.contains(&r.policy.as_str()) {
            order.push(&r.policy);
        }
    }
    for policy in order {
        let results: Vec<&RuleResult> = report
            .results
            .iter()
            .filter(|r| r.policy == policy)
            .collect();
        let ps = Summary::of(&results.iter().map(|r| (*r).clone()).collect::<Vec<_>>());
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"0\" timestamp=\"{}\" hostname=\"{}\">",
            xml_escape(policy),
            ps.total,
            ps.fail,
            ps.error,
            ps.not_applicable + ps.waived,
            xml_escape(&report.started_at),
            xml_escape(&report.host.hostname)
        );
        if let Some(p) = report.policies.iter().find(|p| p.id == policy) {
            let _ = writeln!(
                out,
                "    <properties><property name=\"version\" value=\"{}\"/><property name=\"root\" value=\"{}\"/></properties>",
                xml_escape(&p.version),
                xml_escape(&report.host.root)
            );
        }
        for r in results {
            testcase(&mut out, r);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn testcase(out: &mut String, r: &RuleResult) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"0\"",
        xml_escape(&r.rule),
        xml_escape(&r.policy)
    );
    let title = format!("{} [{}]", r.title, r.severity);
    let body = details(r);
    let element = match r.status {
        Status::Pass => {
            let _ = writeln!(out, "/>");
            return;
        }
        Status::Fail => "failure",
        Status::Error => "error",
        Status::NotApplicable | Status::Waived => "skipped",
    };
    out.push_str(">\n");
    let message = match r.status {
        Status::Fail => format!(
            "{title}: expected {}, actual {}",
            r.expected.as_deref().unwrap_or("?"),
            r.actual.as_deref().unwrap_or("?")
        ),
        Status::Error => format!("{title}: {}", r.message.as_deref().unwrap_or("error")),
        Status::Waived => format!(
            "waived ({}): {}",
            r.waived_status.map(|s| s.as_str()).unwrap_or("?"),
            r.message.as_deref().unwrap_or("")
        ),
        _ => format!("not applicable: {}", r.message.as_deref().unwrap_or("")),
    };
    let _ = writeln!(
        out,
        "      <{element} message=\"{}\" type=\"{}\">{}</{element}>",
        xml_escape(&message),
        r.severity,
        xml_escape(&body)
    );
    out.push_str("    </testcase>\n");
}

#[cfg(test)]
mod tests;
