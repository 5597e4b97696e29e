//! Account databases: passwd, shadow, group and login.defs, parsed line by line.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Probed;

/// The four account files. Each may fail on its own (an unreadable shadow
/// makes only the rules that need shadow `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsFact {
    pub passwd: Probed<Vec<PasswdEntry>>,
    pub shadow: Probed<Vec<ShadowEntry>>,
    pub group: Probed<Vec<GroupEntry>>,
    /// `Ok(empty)` when login.defs does not exist (defaults apply).
    pub login_defs: Probed<BTreeMap<String, LoginDef>>,
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswdEntry {
    pub name: String,
    /// Field 2: `x` when the hash is in shadow.
    pub password: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    pub line: u32,
}

/// One line of `/etc/shadow`. Numeric fields are `None` when empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShadowEntry {
    pub name: String,
    pub hash: String,
    pub last_change: Option<i64>,
    pub min_days: Option<i64>,
    pub max_days: Option<i64>,
    pub warn_days: Option<i64>,
    pub inactive_days: Option<i64>,
    pub expire: Option<i64>,
    pub line: u32,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
    pub line: u32,
}

/// One setting of `/etc/login.defs` (keys are kept as written, upper case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginDef {
    pub value: String,
    pub line: u32,
}
