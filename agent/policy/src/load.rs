//! Loading policies from text, files and directories, with duplicate-id detection across files.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::PolicyError;
use crate::model::{Location, Policy};
use crate::raw::{self, MAX_INPUT_BYTES, Pos};
use crate::validate;

fn location(file: &Path, pos: Pos) -> Location {
    Location {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
    }
}

/// Parses and validates one policy file's text. `file` is used in error
/// locations and recorded as the policy's source. Every problem is returned,
/// sorted by position.
pub fn parse_policy(source: &str, file: &Path) -> Result<Policy, Vec<PolicyError>> {
    parse_with_id_location(source, file).map(|(policy, _)| policy)
}

fn parse_with_id_location(
    source: &str,
    file: &Path,
) -> Result<(Policy, Location), Vec<PolicyError>> {
    if source.len() > MAX_INPUT_BYTES {
        return Err(vec![PolicyError::TooLarge {
            location: location(file, Pos::START),
            size: source.len() as u64,
            limit: MAX_INPUT_BYTES as u64,
        }]);
    }
    let root = raw::parse(source).map_err(|err| {
        vec![PolicyError::Syntax {
            location: location(file, err.pos),
            message: err.message,
        }]
    })?;
    match validate::validate_policy(root.as_ref(), file) {
        Ok(v) => Ok((v.policy, v.id_location)),
        Err(diags) => Err(diags
            .into_iter()
            .map(|d| PolicyError::Invalid {
                location: location(file, d.pos),
                message: raw::sanitize(&d.message),
            })
            .collect()),
    }
}

/// Why a file's text could not be had.
pub(crate) enum ReadFailure {
    Io(std::io::Error),
    TooLarge(u64),
    NotUtf8,
}

/// Reads a UTF-8 text file of at most `MAX_INPUT_BYTES`, refusing a larger
/// one before reading it (and, should it grow meanwhile, while reading it).
pub(crate) fn read_text(path: &Path) -> Result<String, ReadFailure> {
    let file = fs::File::open(path).map_err(ReadFailure::Io)?;
    let meta = file.metadata().map_err(ReadFailure::Io)?;
    if !meta.is_file() {
        return Err(ReadFailure::Io(std::io::Error::other("not a regular file")));
    }
    if meta.len() > MAX_INPUT_BYTES as u64 {
        return Err(ReadFailure::TooLarge(meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadFailure::Io)?;
    if bytes.len() > MAX_INPUT_BYTES {
        return Err(ReadFailure::TooLarge(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|_| ReadFailure::NotUtf8)
}

/// Reads and parses one policy file.
fn load_file(path: &Path) -> Result<(Policy, Location), Vec<PolicyError>> {
    let at = location(path, Pos::START);
    match read_text(path) {
        Ok(text) => parse_with_id_location(&text, path),
        Err(ReadFailure::TooLarge(size)) => Err(vec![PolicyError::TooLarge {
            location: at,
            size,
            limit: MAX_INPUT_BYTES as u64,
        }]),
        Err(ReadFailure::NotUtf8) => Err(vec![PolicyError::Read {
            location: at,
            reason: "the file is not valid UTF-8".to_string(),
        }]),
        Err(ReadFailure::Io(err)) => Err(vec![PolicyError::Read {
            location: at,
            reason: err.to_string(),
        }]),
    }
}

/// True for names a policy directory loads: `*.yaml` / `*.yml`, not hidden.
fn is_policy_file_name(name: &str) -> bool {
    !name.starts_with('.') && (name.ends_with(".yaml") || name.ends_with(".yml"))
}

/// The policy files of a directory, in name order.
fn directory_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let read = |err: std::io::Error| PolicyError::Read {
        location: location(dir, Pos::START),
        reason: err.to_string(),
    };
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(read)? {
        let entry = entry.map_err(read)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if !is_policy_file_name(name) {
            continue;
        }
        let path = entry.path();
        // Follow symlinks: a link to a policy file is a policy file.
        if fs::metadata(&path).map(|m| m.is_file()).unwrap_or(false) {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    Ok(files)
}

/// Loads policy files and directories (a directory loads every `*.yaml` /
/// `*.yml` in it in name order; hidden files are skipped). Every file is
/// read and every error of every file is returned. Two files declaring the
/// same policy id are an error naming both.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Policy>, Vec<PolicyError>> {
    let mut errors = Vec::new();
    let mut files = Vec::new();
    for path in paths {
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => match directory_files(path) {
                Ok(found) => files.extend(found),
                Err(err) => errors.push(err),
            },
            Ok(_) => files.push(path.clone()),
            Err(err) => errors.push(PolicyError::Read {
                location: location(path, Pos::START),
                reason: err.to_string(),
            }),
        }
    }
    let mut policies = Vec::new();
    let mut seen: HashMap<String, Location> = HashMap::new();
    for file in files {
        match load_file(&file) {
            Ok((policy, id_location)) => {
                if let Some(first) = seen.get(&policy.id) {
                    errors.push(PolicyError::DuplicatePolicy {
                        location: id_location,
                        id: policy.id.clone(),
                        first: first.clone(),
                    });
                } else {
                    seen.insert(policy.id.clone(), id_location);
                    policies.push(policy);
                }
            }
            Err(errs) => errors.extend(errs),
        }
    }
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(errors)
    }
}

/// Why the configured policy directories could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfiguredPoliciesError {
    /// None of the configured directories exists.
    #[error("no policy directory exists (looked in {})", show_paths(.tried))]
    NoPolicyDirectory { tried: Vec<PathBuf> },
    /// Some policy file is invalid; each error is `file:line:col: message`.
    #[error("{}", join_lines(.0))]
    Policy(Vec<PolicyError>),
}

/// Errors one per line, as every command prints a batch of them.
pub fn join_lines<E: std::fmt::Display>(errors: &[E]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths as a comma-separated list, for messages.
pub fn show_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads the configured policy directories (the agent configuration's
/// `policies`): those that exist are loaded, missing ones are skipped, and
/// none existing is an error.
pub fn load_configured(dirs: &[PathBuf]) -> Result<Vec<Policy>, ConfiguredPoliciesError> {
    let existing: Vec<PathBuf> = dirs.iter().filter(|p| p.exists()).cloned().collect();
    if existing.is_empty() {
        return Err(ConfiguredPoliciesError::NoPolicyDirectory {
            tried: dirs.to_vec(),
        });
    }
    load_paths(&existing).map_err(ConfiguredPoliciesError::Policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_file_names() {
        assert!(is_policy_file_name("a.yaml"));
        assert!(is_policy_file_name("b.yml"));
        assert!(!is_policy_file_name(".hidden.yaml"));
        assert!(!is_policy_file_name("notes.txt"));
        assert!(!is_policy_file_name("a.yaml.bak"));
    }

    #[test]
    fn missing_configured_directories_are_an_error_only_when_all_are_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope");
        let err = load_configured(std::slice::from_ref(&missing)).expect_err("none exists");
        assert!(matches!(
            err,
            ConfiguredPoliciesError::NoPolicyDirectory { .. }
        ));
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).expect("mkdir");
        let policies = load_configured(&[missing, empty]).expect("one exists");
        assert!(policies.is_empty());
    }
}
