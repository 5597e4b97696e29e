//! Field-by-field reading of the raw node tree, collecting every problem with the position of the node at fault.
//!
//! Both the policy validator and the agent configuration use these helpers,
//! so unknown keys, wrong types and missing fields are worded the same way
//! everywhere.

use crate::raw::{Node, Pos, Value};

/// One problem found while reading: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Diag {
    pub pos: Pos,
    pub message: String,
}

/// Collects problems while the tree is read.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    pub diags: Vec<Diag>,
}

/// The entries of a mapping whose keys were checked against an allowed list.
pub(crate) struct Fields<'n> {
    pub node: &'n Node,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    /// The key node itself, for errors that concern the key.
    pub fn key(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, _)| *k)
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| *k == key)
    }

    /// The keys in source order, with their key nodes and values.
    pub fn entries(&self) -> &[(&'n str, &'n Node, &'n Node)] {
        &self.entries
    }
}

/// User text made safe and short for a message: one line, at most 64 characters.
pub(crate) fn quote(text: &str) -> String {
    let clean = crate::raw::sanitize(text);
    if clean.chars().count() > 64 {
        let cut: String = clean.chars().take(61).collect();
        format!("{cut}...")
    } else {
        clean
    }
}

/// Quotes a list of names for a message: `a, b, c`.
pub(crate) fn one_of(names: &[&str]) -> String {
    names.join(", ")
}

impl Reader {
    pub fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diag {
            pos,
            message: message.into(),
        });
    }

    /// Reads a mapping whose keys must all be in `allowed`. `what` names the
    /// mapping in messages (`rule`, "`sysctl` check"). Unknown and non-string
    /// keys are reported at the key; the known entries are still returned so
    /// the rest of the mapping is checked too.
    pub fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        allowed: &[&str],
    ) -> Option<Fields<'n>> {
        let Some(map) = node.as_map() else {
            self.error(
                node.pos,
                format!("{what} must be a mapping, found {}", node.kind()),
            );
            return None;
        };
        let mut entries = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(name) = key_name(key) else {
                self.error(
                    key.pos,
                    format!("keys of {what} must be strings, found {}", key.kind()),
                );
                continue;
            };
            if allowed.contains(&name) {
                entries.push((name, key, value));
            } else {
                self.error(
                    key.pos,
                    format!(
                        "unknown field `{}` in {what}; expected one of: {}",
                        quote(name),
                        one_of(allowed)
                    ),
                );
            }
        }
        Some(Fields { node, entries })
    }

    /// The value of a field that must be present; reports it missing at the
    /// mapping's position.
    pub fn required<'n>(&mut self, fields: &Fields<'n>, key: &str, what: &str) -> Option<&'n Node> {
        let value = fields.get(key);
        if value.is_none() {
            self.error(
                fields.node.pos,
                format!("missing required field `{key}` in {what}"),
            );
        }
        value
    }

    /// A scalar read as text (numbers and booleans in their written form).
    pub fn text(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.scalar_text() {
            Some(text) => Some(text),
            None => {
                self.error(
                    node.pos,
                    format!("`{key}` must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A scalar read as text that must not be empty.
    pub fn nonempty_text(&mut self, node: &Node, key: &str) -> Option<String> {
        let text = self.text(node, key)?;
        if text.trim().is_empty() {
            self.error(node.pos, format!("`{key}` must not be empty"));
            return None;
        }
        Some(text)
    }

    pub fn boolean(&mut self, node: &Node, key: &str) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(
                    node.pos,
                    format!("`{key}` must be true or false, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A YAML number (integer or decimal).
    pub fn number(&mut self, node: &Node, key: &str) -> Option<f64> {
        match node.value {
            Value::Int(i) => Some(i as f64),
            Value::Float(x) if x.is_finite() => Some(x),
            _ => {
                self.error(
                    node.pos,
                    format!("`{key}` must be a number, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A YAML integer that fits in `i64`.
    pub fn integer(&mut self, node: &Node, key: &str) -> Option<i64> {
        match node.value {
            Value::Int(i) => match i64::try_from(i) {
                Ok(i) => Some(i),
                Err(_) => {
                    self.error(node.pos, format!("`{key}` is out of range"));
                    None
                }
            },
            _ => {
                self.error(
                    node.pos,
                    format!("`{key}` must be an integer, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// One string or a list of strings (`owner: root`, `owner: [root, adm]`);
    /// neither the list nor any item may be empty.
    pub fn one_or_many(&mut self, node: &Node, key: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Seq(items) => {
                if items.is_empty() {
                    self.error(node.pos, format!("`{key}` must not be an empty list"));
                    return None;
                }
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for item in items {
                    match self.item_text(item, key) {
                        Some(text) => out.push(text),
                        None => ok = false,
                    }
                }
                ok.then_some(out)
            }
            Value::Map(_) | Value::Null => {
                self.error(
                    node.pos,
                    format!(
                        "`{key}` must be a string or a list of strings, found {}",
                        node.kind()
                    ),
                );
                None
            }
            _ => self.item_text(node, key).map(|text| vec![text]),
        }
    }

    /// A list of scalars (`in: [..]`); must not be empty.
    pub fn list(&mut self, node: &Node, key: &str) -> Option<Vec<String>> {
        let Some(items) = node.as_seq() else {
            self.error(
                node.pos,
                format!("`{key}` must be a list, found {}", node.kind()),
            );
            return None;
        };
        if items.is_empty() {
            self.error(node.pos, format!("`{key}` must not be an empty list"));
            return None;
        }
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.item_text(item, key) {
                Some(text) => out.push(text),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// One item of a list of scalars: non-empty text.
    fn item_text(&mut self, node: &Node, key: &str) -> Option<String> {
        match node.scalar_text() {
            Some(text) if !text.trim().is_empty() => Some(text),
            Some(_) => {
                self.error(node.pos, format!("items of `{key}` must not be empty"));
                None
            }
            None => {
                self.error(
                    node.pos,
                    format!(
                        "items of `{key}` must be strings, numbers or booleans, found {}",
                        node.kind()
                    ),
                );
                None
            }
        }
    }
}

/// The text of a mapping key when it is a scalar (keys such as `22` or `true`
/// are still names to us).
fn key_name(key: &Node) -> Option<&str> {
    match &key.value {
        Value::Str(s) => Some(s),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => key.text.as_deref(),
        _ => None,
    }
}
