//! The daemon's persistent state in `state_dir`: the last result of every
//! rule, when each failing rule started failing, which overdue alerts were
//! sent, and the next drift sequence number. Written crash-safely (temporary
//! file, fsync, rename, fsync of the directory) so a `kill -9` at any moment
//! leaves either the old or the new file, never half of one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hardend_engine::RuleResult;
use serde::{Deserialize, Serialize};

use crate::RuleKey;

/// The state file's name inside `state_dir`.
pub const STATE_FILE: &str = "state.json";

/// The format written in the file; another value is not read.
const FORMAT: &str = "hardend.state/v1";

/// A state file larger than this is refused as corrupt: 200 rules with their
/// evidence take well under a megabyte.
const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// Problems with the state directory or file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state directory could not be created.
    #[error("{}: cannot create the state directory: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    /// The state file could not be read.
    #[error("{}: cannot read the state: {source}", .path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The state file is not a state this daemon wrote.
    #[error("{}: corrupt state: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// The state could not be written.
    #[error("{}: cannot write the state: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    /// The state could not be encoded (should not happen).
    #[error("cannot encode the state: {0}")]
    Encode(String),
}

/// What the daemon remembers about one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// The last result, which alerts are computed against.
    pub result: RuleResult,
    /// When the rule started failing without interruption; `None` unless failing.
    #[serde(default)]
    pub first_failed: Option<jiff::Timestamp>,
    /// True once the overdue alert of the current failure was sent.
    #[serde(default)]
    pub overdue_alerted: bool,
}

/// The whole persistent state.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    /// The sequence number of the next drift event (starts at 1).
    pub next_seq: u64,
    pub rules: BTreeMap<RuleKey, RuleState>,
}

impl Default for State {
    fn default() -> Self {
        State {
            next_seq: 1,
            rules: BTreeMap::new(),
        }
    }
}

/// The file's layout: rules as a list, since JSON map keys are strings.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    next_seq: u64,
    rules: Vec<StoredRule>,
}

#[derive(Serialize, Deserialize)]
struct StoredRule {
    policy: String,
    rule: String,
    #[serde(flatten)]
    state: RuleState,
}

/// The state directory and its file.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    /// Opens (creating with mode 0700 when missing) the state directory.
    pub fn open(dir: &Path) -> Result<StateStore, StateError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StateError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        Ok(StateStore {
            dir: dir.to_path_buf(),
        })
    }

    /// The state file's path.
    pub fn path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    /// Reads the state. A missing file is a fresh start (`Ok(None)`); an
    /// unreadable or corrupt one is an error, which the caller reports before
    /// starting fresh.
    pub fn load(&self) -> Result<Option<State>, StateError> {
        let path = self.path();
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(StateError::Read { path, source }),
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StateError::Read {
                path: path.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_STATE_BYTES {
            return Err(StateError::Corrupt {
                path,
                reason: format!("larger than {MAX_STATE_BYTES} bytes"),
            });
        }
        decode(&bytes)
            .map(Some)
            .map_err(|reason| StateError::Corrupt {
                path: path.clone(),
                reason,
            })
    }

    /// Moves a corrupt state file aside (to `state.json.corrupt`) so the
    /// operator can look at it; the daemon then starts fresh.
    pub fn set_aside(&self) -> Result<PathBuf, StateError> {
        let from = self.path();
        let to = self.dir.join(format!("{STATE_FILE}.corrupt"));
        fs::rename(&from, &to).map_err(|source| StateError::Write { path: from, source })?;
        Ok(to)
    }

    /// Writes the state crash-safely: a temporary file in the same directory,
    /// fsync, rename over the old file, fsync of the directory.
    pub fn save(&self, state: &State) -> Result<(), StateError> {
        let bytes = encode(state)?;
        let path = self.path();
        let tmp = self.dir.join(format!(".{STATE_FILE}.tmp"));
        let write_err = |p: &Path| {
            let p = p.to_path_buf();
            move |source| StateError::Write { path: p, source }
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(write_err(&tmp))?;
        file.write_all(&bytes).map_err(write_err(&tmp))?;
        file.sync_all().map_err(write_err(&tmp))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(write_err(&path))?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(write_err(&self.dir))?;
        Ok(())
    }
}

fn encode(state: &State) -> Result<Vec<u8>, StateError> {
    let stored = Stored {
        format: FORMAT.to_string(),
        next_seq: state.next_seq,
        rules: state
            .rules
            .iter()
            .map(|((policy, rule), s)| StoredRule {
                policy: policy.clone(),
                rule: rule.clone(),
                state: s.clone(),
            })
            .collect(),
    };
    serde_json::to_vec(&stored).map_err(|e| StateError::Encode(e.to_string()))
}

fn decode(bytes: &[u8]) -> Result<State, String> {
    let stored: Stored = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if stored.format != FORMAT {
        return Err(format!(
            "unknown format `{}` (expected {FORMAT})",
            stored.format.escape_debug()
        ));
    }
    if stored.next_seq == 0 {
        return Err("next_seq is 0".to_string());
    }
    let rules = stored
        .rules
        .into_iter()
        .map(|r| ((r.policy, r.rule), r.state))
        .collect();
    Ok(State {
        next_seq: stored.next_seq,
        rules,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hardend_engine::Status;
    use hardend_policy::Severity;

    fn rule_state(status: Status) -> RuleState {
        RuleState {
            result: RuleResult {
                policy: "p".into(),
                rule: "r".into(),
                title: "t".into(),
                severity: Severity::High,
                status,
                waived_status: None,
                expected: Some("x = 0".into()),
                actual: Some("1".into()),
                evidence: vec![],
                message: None,
            },
            first_failed: Some(jiff::Timestamp::UNIX_EPOCH),
            overdue_alerted: true,
        }
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(&dir.path().join("a/b")).expect("open");
        assert!(store.load().expect("load").is_none());
        let mut state = State {
            next_seq: 42,
            ..State::default()
        };
        state
            .rules
            .insert(("p".into(), "r".into()), rule_state(Status::Fail));
        store.save(&state).expect("save");
        assert_eq!(store.load().expect("load"), Some(state));
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("a/b"))
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(STATE_FILE)]);
    }

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = StateStore::open(dir.path()).expect("open");
        for bad in [
            &b""[..],
            b"{",
            b"\xff\xfe",
            b"[]",
            b"{\"format\":\"other\",\"next_seq\":1,\"rules\":[]}",
            b"{\"format\":\"hardend.state/v1\",\"next_seq\":0,\"rules\":[]}",
            b"{\"format\":\"hardend.state/v1\",\"next_seq\":-1,\"rules\":[]}",
        ] {
            fs::write(store.path(), bad).expect("write");
            assert!(
                matches!(store.load(), Err(StateError::Corrupt { .. })),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let aside = store.set_aside().expect("set aside");
        assert!(aside.exists());
        assert!(store.load().expect("load").is_none());
    }
}
