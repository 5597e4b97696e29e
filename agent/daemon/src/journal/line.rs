//! The stderr form of journal entries: one line per entry, every field as
//! `KEY="value"` with the value quoted and escaped, so container logs and
//! tests can read the fields back with `parse_line`.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::Entry;
use crate::{AlertSink, DriftEvent};

/// Writes entries as lines, to stderr or to any writer.
pub struct LineSink {
    out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for LineSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineSink").finish_non_exhaustive()
    }
}

impl LineSink {
    /// A sink writing to the process's stderr.
    pub fn stderr() -> LineSink {
        LineSink {
            out: Box::new(std::io::stderr()),
        }
    }

    /// A sink writing to `out`.
    pub fn new(out: Box<dyn Write + Send>) -> LineSink {
        LineSink { out }
    }

    /// A sink writing into a shared buffer, which tests read.
    pub fn buffer() -> (LineSink, Arc<Mutex<Vec<u8>>>) {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = LineSink::new(Box::new(SharedBuffer(buffer.clone())));
        (sink, buffer)
    }

    /// Writes one entry as one line. Write errors are ignored: there is
    /// nowhere left to report them.
    pub fn write(&mut self, entry: &Entry) {
        let mut line = format_line(entry);
        line.push('\n');
        let _ = self.out.write_all(line.as_bytes());
        let _ = self.out.flush();
    }

    /// Writes a plain note (not an entry) as one line starting `hardend: `.
    pub fn note(&mut self, text: &str) {
        let text: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let _ = writeln!(self.out, "hardend: {text}");
        let _ = self.out.flush();
    }
}

impl AlertSink for LineSink {
    fn drift(&mut self, event: &DriftEvent) {
        self.write(&Entry::drift(event));
    }

    fn policy_errors(&mut self, errors: &[String]) {
        for error in errors {
            self.write(&Entry::policy_rejected(error));
        }
    }
}

/// A writer appending to a shared byte buffer.
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock() {
            Ok(mut b) => b.extend_from_slice(buf),
            Err(poisoned) => poisoned.into_inner().extend_from_slice(buf),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One entry as one line: `KEY="value"` pairs separated by spaces. In values,
/// `\` and `"` are escaped with a backslash, newline, tab and carriage return
/// as `\n`, `\t`, `\r`, and other control characters as `\u{XX}`.
pub fn format_line(entry: &Entry) -> String {
    let mut line = String::new();
    for (name, value) in &entry.fields {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(name);
        line.push_str("=\"");
        for c in value.chars() {
            match c {
                '\\' => line.push_str("\\\\"),
                '"' => line.push_str("\\\""),
                '\n' => line.push_str("\\n"),
                '\t' => line.push_str("\\t"),
                '\r' => line.push_str("\\r"),
                c if c.is_control() => line.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => line.push(c),
            }
        }
        line.push('"');
    }
    line
}

/// The fields of a line written by `format_line`, or `None` when the line is
/// not one (a note, or anything else on stderr).
pub fn parse_line(line: &str) -> Option<Vec<(String, String)>> {
    let mut fields = Vec::new();
    let mut rest = line.trim_end_matches(['\n', '\r']);
    while !rest.is_empty() {
        let eq = rest.find("=\"")?;
        let name = &rest[..eq];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        {
            return None;
        }
        let mut value = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break eq + 2 + i + 1,
                '\\' => match chars.next()?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    'u' => {
                        if chars.next()?.1 != '{' {
                            return None;
                        }
                        let mut hex = String::new();
                        loop {
                            let (_, h) = chars.next()?;
                            if h == '}' {
                                break;
                            }
                            hex.push(h);
                        }
                        let code = u32::from_str_radix(&hex, 16).ok()?;
                        value.push(char::from_u32(code)?);
                    }
                    _ => return None,
                },
                c => value.push(c),
            }
        };
        fields.push((name.to_string(), value));
        rest = &rest[end..];
        if let Some(r) = rest.strip_prefix(' ') {
            rest = r;
        } else if !rest.is_empty() {
            return None;
        }
    }
    if fields.is_empty() {
        None
    } else {
        Some(fields)
    }
}
