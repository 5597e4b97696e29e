//! The raw phase: a YAML document read by serde-saphyr into a tree of nodes that keep their source positions.
//!
//! The raw tree mirrors the YAML exactly (mappings keep their key order and
//! every key's own position), so the validation phase can report *every*
//! problem in a file at once, each at the node that is wrong. A serde-derived
//! struct with `deny_unknown_fields` would stop at the first unknown key; the
//! validation phase instead checks each mapping against the fields its
//! context allows, which is the same rule applied to the whole file.
//!
//! Hostile input is refused here: the text is capped in size before it is
//! parsed, and serde-saphyr's budget caps nesting depth, node count and alias
//! expansion (billion laughs).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::options::AliasLimits;
use serde_saphyr::{Budget, MessageFormatter, Options, Spanned};

/// The largest YAML text (policy or configuration file) that is parsed at all.
pub const MAX_INPUT_BYTES: usize = 4 * 1024 * 1024;

/// The deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 32;

/// The stack given to the parsing thread: the deserializer recurses once per
/// nesting level, and debug builds use large frames.
const PARSE_STACK_BYTES: usize = 16 * 1024 * 1024;

/// A 1-based line and column in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    /// The start of the file, used where no better position is known.
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_saphyr(location: &serde_saphyr::Location) -> Pos {
        let line = usize::try_from(location.line()).unwrap_or(usize::MAX);
        let column = usize::try_from(location.column()).unwrap_or(usize::MAX);
        if line == 0 {
            // Serde-saphyr uses line 0 for an unknown location.
            Pos::START
        } else {
            Pos {
                line,
                column: column.max(1),
            }
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML node with the position where it is used.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// The byte range of the node's definition in the source, when known;
    /// used to recover the exact spelling of plain scalars.
    span: Option<(usize, usize)>,
    /// The text as the user wrote it, for scalars that YAML resolved to a
    /// number or a boolean (`1`, `1.0`, `0x1F`, `true`); filled by [`parse`].
    pub text: Option<String>,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Key-value pairs in source order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short description of the node's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar's text as written: strings as parsed (quotes removed),
    /// numbers and booleans in their source spelling. `None` for null,
    /// lists and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(self.text.clone().unwrap_or_else(|| b.to_string())),
            Value::Int(i) => Some(self.text.clone().unwrap_or_else(|| i.to_string())),
            Value::Float(x) => Some(self.text.clone().unwrap_or_else(|| x.to_string())),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// The string value when the node is a YAML string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Fills `text` for number and boolean scalars from the source, recursively.
    fn fill_text(&mut self, source: &str) {
        match &mut self.value {
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                if let Some((start, len)) = self.span {
                    let end = start.saturating_add(len);
                    if let Some(text) = source.get(start..end) {
                        let text = text.trim();
                        // A plain scalar never starts with a quote or an
                        // indicator; anything else means the span does not
                        // cover the scalar itself (an alias or a tagged node).
                        if !text.is_empty()
                            && !text.starts_with(['"', '\'', '*', '&', '!', '|', '>'])
                            && !text.contains(['\n', '#'])
                        {
                            self.text = Some(text.to_string());
                        }
                    }
                }
            }
            Value::Seq(items) => items.iter_mut().for_each(|n| n.fill_text(source)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.fill_text(source);
                v.fill_text(source);
            }),
            Value::Null | Value::Str(_) => {}
        }
    }

    /// The entries when the node is a mapping.
    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items when the node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        let span = spanned.defined.span();
        let span = match (span.byte_offset(), span.byte_len()) {
            (Some(offset), Some(len)) => {
                usize::try_from(offset).ok().zip(usize::try_from(len).ok())
            }
            _ => None,
        };
        Ok(Node {
            value: spanned.value,
            pos: Pos::from_saphyr(&spanned.referenced),
            span,
            text: None,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        match i128::try_from(v) {
            Ok(v) => Ok(Value::Int(v)),
            // Too large for any field; keep it as a float so it is still
            // reported as a number that is out of range.
            Err(_) => Ok(Value::Float(v as f64)),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// Why a text could not be read as YAML: a message and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawError {
    pub pos: Pos,
    pub message: String,
}

/// The parser options used for every hardend YAML file: YAML 1.2 booleans,
/// leading-zero numbers kept as strings (`0640`), and a tight budget.
fn options() -> Options {
    let mut budget = Budget::default();
    budget.max_reader_input_bytes = Some(MAX_INPUT_BYTES);
    budget.max_depth = MAX_DEPTH;
    budget.max_events = 400_000;
    budget.max_nodes = 200_000;
    budget.max_aliases = 1_000;
    budget.max_anchors = 1_000;
    budget.max_documents = 1;
    budget.max_total_scalar_bytes = MAX_INPUT_BYTES;
    budget.max_recorded_anchor_events = 20_000;
    budget.max_recorded_anchor_bytes = MAX_INPUT_BYTES;

    let mut alias_limits = AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = 1_000;

    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits = alias_limits;
    options.strict_booleans = true;
    options.leading_zero_numbers_as_strings = true;
    options.reject_unsupported_tags = true;
    options
}

/// Parses one YAML document into a node tree. An empty document (only
/// comments or whitespace) is `Ok(None)`.
pub fn parse(source: &str) -> Result<Option<Node>, RawError> {
    if source.len() > MAX_INPUT_BYTES {
        return Err(RawError {
            pos: Pos::START,
            message: format!(
                "the file is {} bytes, over the limit of {MAX_INPUT_BYTES} bytes",
                source.len()
            ),
        });
    }
    if is_blank(source) {
        return Ok(None);
    }
    // The parse runs on its own thread with a known, generous stack, so the
    // nesting budget (not the caller's stack size) decides what is refused.
    let result = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("hardend-yaml".to_string())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || {
                serde_saphyr::from_str_with_options::<Node>(source, options())
            })
            .ok()
            .map(|handle| handle.join())
    });
    let result = match result {
        Some(Ok(result)) => result,
        Some(Err(_panic)) => {
            return Err(RawError {
                pos: Pos::START,
                message: "the YAML parser failed on this input".to_string(),
            });
        }
        // The thread could not be started; parse here instead (the depth
        // budget keeps the recursion within any normal stack).
        None => serde_saphyr::from_str_with_options::<Node>(source, options()),
    };
    match result {
        Ok(mut node) => {
            if node.value == Value::Null {
                return Ok(None);
            }
            node.fill_text(source);
            Ok(Some(node))
        }
        Err(err) => Err(convert_error(&err)),
    }
}

/// True when the text holds no YAML content: only whitespace, comments and
/// document markers.
fn is_blank(source: &str) -> bool {
    source.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#') || line == "---" || line == "..."
    })
}

fn convert_error(err: &serde_saphyr::Error) -> RawError {
    let pos = err
        .location()
        .map(|l| Pos::from_saphyr(&l))
        .unwrap_or(Pos::START);
    let mut inner = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = inner
    {
        inner = error;
    }
    let message = match inner {
        serde_saphyr::Error::Budget { breach, .. } => budget_message(breach).to_string(),
        other => sanitize(&serde_saphyr::UserMessageFormatter.format_message(other)),
    };
    RawError { pos, message }
}

/// Says in plain words which limit hostile-looking YAML ran into.
fn budget_message(breach: &BudgetBreach) -> &'static str {
    match breach {
        BudgetBreach::Depth { .. } => "the YAML is nested too deeply (at most 32 levels)",
        BudgetBreach::Documents { .. } => "a file must hold a single YAML document",
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => {
            "the YAML uses too many anchors or aliases (alias expansion is limited)"
        }
        _ => "the YAML document is too large or too complex",
    }
}

/// Makes a message safe for one terminal line: control characters become
/// spaces, runs of whitespace collapse, and very long texts are cut.
pub fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut last_space = false;
    for c in message.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' {
            if last_space {
                continue;
            }
            last_space = true;
        } else {
            last_space = false;
        }
        out.push(c);
        if out.len() > 400 {
            out.push('…');
            break;
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_point_at_keys_and_values() {
        let node = parse("a: 1\nb:\n  - x\n  - {c: d}\n")
            .expect("valid yaml")
            .expect("not empty");
        let map = node.as_map().expect("a mapping");
        assert_eq!(map[0].0.pos, Pos { line: 1, column: 1 });
        assert_eq!(map[0].1.pos, Pos { line: 1, column: 4 });
        let items = map[1].1.as_seq().expect("a list");
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
        let inner = items[1].as_map().expect("a mapping");
        assert_eq!(inner[0].0.pos, Pos { line: 4, column: 6 });
        assert_eq!(inner[0].1.pos, Pos { line: 4, column: 9 });
    }

    #[test]
    fn scalars_keep_their_spelling() {
        let node = parse("a: 1\nb: no\nc: 1.0\nd: 0640\ne: true\nf: \"1\"\ng: 0x1F\n")
            .expect("valid yaml")
            .expect("not empty");
        let texts: Vec<_> = node
            .as_map()
            .expect("a mapping")
            .iter()
            .map(|(_, v)| (v.kind(), v.scalar_text().unwrap_or_default()))
            .collect();
        assert_eq!(
            texts,
            vec![
                ("an integer", "1".to_string()),
                ("a string", "no".to_string()),
                ("a number", "1.0".to_string()),
                ("a string", "0640".to_string()),
                ("a boolean", "true".to_string()),
                ("a string", "1".to_string()),
                ("an integer", "0x1F".to_string()),
            ]
        );
    }

    #[test]
    fn blank_documents_are_empty() {
        assert_eq!(parse("").expect("ok"), None);
        assert_eq!(parse("# only a comment\n---\n").expect("ok"), None);
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let err = parse("a: [1, 2\nb: c\n").expect_err("unclosed flow list");
        assert!(err.pos.line >= 1);
        assert!(!err.message.contains('\n'));
    }
}
