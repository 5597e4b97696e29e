//! The error type of policy loading: every variant names the file, line and column it concerns.

use crate::model::Location;

/// One problem with a policy file. `Display` is exactly `file:line:col: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not YAML this parser accepts (syntax, or a hostile-input limit).
    #[error("{location}: {message}")]
    Syntax { location: Location, message: String },
    /// The YAML is well formed but breaks a rule of the policy format.
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    /// The file could not be read.
    #[error("{location}: cannot read: {reason}")]
    Read { location: Location, reason: String },
    /// The file is larger than any policy may be; it was not parsed.
    #[error("{location}: the file is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        location: Location,
        size: u64,
        limit: u64,
    },
    /// Two loaded files declare the same policy id.
    #[error("{location}: duplicate policy id `{id}` (also defined at {first})")]
    DuplicatePolicy {
        location: Location,
        id: String,
        first: Location,
    },
}

impl PolicyError {
    /// Where the problem is.
    pub fn location(&self) -> &Location {
        match self {
            PolicyError::Syntax { location, .. }
            | PolicyError::Invalid { location, .. }
            | PolicyError::Read { location, .. }
            | PolicyError::TooLarge { location, .. }
            | PolicyError::DuplicatePolicy { location, .. } => location,
        }
    }

    /// The message without the location prefix.
    pub fn message(&self) -> String {
        let full = self.to_string();
        let prefix = format!("{}: ", self.location());
        match full.strip_prefix(&prefix) {
            Some(rest) => rest.to_string(),
            None => full,
        }
    }
}
