//! Splitting one sshd_config line into its keyword and arguments, the way
//! sshd's `strdelim` and `argv_split` do.

/// Characters sshd treats as whitespace between tokens.
const WHITESPACE: &[char] = &[' ', '\t', '\r', '\n'];

/// A line that carries a directive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Line {
    /// The keyword as written (not yet folded to lower case).
    pub keyword: String,
    /// The text after the keyword and its separator, as sshd keeps it for
    /// directives that take the rest of the line (`ForceCommand`).
    pub rest: String,
    /// The arguments, unquoted, stopping at a `#` that starts a token.
    pub args: Vec<String>,
}

/// Why a line cannot be split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LexError {
    /// A keyword with nothing after it.
    NoArgument(String),
    /// A quote that is never closed in the arguments.
    InvalidQuotes,
}

/// One `strdelim` step: the next token and the remaining text (`None` when
/// the text is used up). Returns `None` for the token when a quote is never
/// closed, which sshd treats as "no token".
pub(super) fn strdelim(s: &str) -> (Option<String>, Option<&str>) {
    let Some(pos) = s.find(|c: char| WHITESPACE.contains(&c) || c == '"' || c == '=') else {
        return (Some(s.to_string()), None);
    };
    let bytes = s.as_bytes();
    if bytes[pos] == b'"' {
        let after = &s[pos + 1..];
        let Some(close) = after.find('"') else {
            return (None, None);
        };
        let token = format!("{}{}", &s[..pos], &after[..close]);
        let remaining = &after[close + 1..];
        let remaining = remaining.trim_start_matches(WHITESPACE);
        return (Some(token), Some(remaining));
    }
    let token = s[..pos].to_string();
    let was_equals = bytes[pos] == b'=';
    let mut remaining = s[pos + 1..].trim_start_matches(WHITESPACE);
    if !was_equals && remaining.starts_with('=') {
        remaining = remaining[1..].trim_start_matches(WHITESPACE);
    }
    (Some(token), Some(remaining))
}

/// sshd's `argv_split` with comment termination: whitespace separates
/// tokens, single and double quotes group, backslash escapes quotes,
/// backslashes and (outside quotes) spaces, and a `#` at the start of a token
/// ends the line.
pub(super) fn argv_split(s: &str) -> Result<Vec<String>, LexError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ' ' || c == '\t' {
            i += 1;
            continue;
        }
        if c == '#' {
            break;
        }
        let mut quote: Option<char> = None;
        let mut arg = String::new();
        while i < chars.len() {
            let c = chars[i];
            if c == '\\' {
                let next = chars.get(i + 1).copied();
                match next {
                    Some(n)
                        if n == '\'' || n == '"' || n == '\\' || (quote.is_none() && n == ' ') =>
                    {
                        arg.push(n);
                        i += 1;
                    }
                    _ => arg.push(c),
                }
            } else if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            } else if quote.is_none() && (c == '"' || c == '\'') {
                quote = Some(c);
            } else if quote == Some(c) {
                quote = None;
            } else {
                arg.push(c);
            }
            i += 1;
        }
        if i >= chars.len() && quote.is_some() {
            return Err(LexError::InvalidQuotes);
        }
        out.push(arg);
    }
    Ok(out)
}

/// Splits one raw line. `Ok(None)` for blank lines and comments.
pub(super) fn split_line(raw: &str) -> Result<Option<Line>, LexError> {
    // sshd reads lines as C strings: a NUL ends the line's text.
    let raw = raw.split('\0').next().unwrap_or("");
    let line = raw.trim_start_matches([' ', '\t', '\r']);
    let line = line.trim_end_matches([' ', '\t', '\r', '\n', '\x0c']);
    if line.is_empty() {
        return Ok(None);
    }
    let (mut keyword, mut rest) = strdelim(line);
    if keyword.as_deref() == Some("") {
        match rest {
            Some(r) => {
                let (k, r2) = strdelim(r);
                keyword = k;
                rest = r2;
            }
            None => return Ok(None),
        }
    }
    let Some(keyword) = keyword else {
        return Ok(None);
    };
    if keyword.is_empty() || keyword.starts_with('#') {
        return Ok(None);
    }
    let rest = match rest {
        Some(r) if !r.is_empty() => r.to_string(),
        _ => return Err(LexError::NoArgument(keyword)),
    };
    let args = argv_split(&rest)?;
    Ok(Some(Line {
        keyword,
        rest,
        args,
    }))
}
