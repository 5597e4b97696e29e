//! Results and the `hardend.report/v1` report that carries them.

use hardend_facts::Evidence;
use hardend_policy::Severity;
use serde::{Deserialize, Serialize};

/// The verdict of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    Error,
    NotApplicable,
    Waived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Error => "error",
            Status::NotApplicable => "not_applicable",
            Status::Waived => "waived",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule's result, as the JSON report and the API carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleResult {
    pub policy: String,
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub status: Status,
    /// For `waived`: the status the waiver covers (`fail` or `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived_status: Option<Status>,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub evidence: Vec<Evidence>,
    pub message: Option<String>,
}

/// The host a report describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInfo {
    pub hostname: String,
    pub root: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub not_applicable: usize,
    pub waived: usize,
}

impl Summary {
    pub fn of(results: &[RuleResult]) -> Summary {
        let mut s = Summary {
            total: results.len(),
            ..Summary::default()
        };
        for r in results {
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Fail => s.fail += 1,
                Status::Error => s.error += 1,
                Status::NotApplicable => s.not_applicable += 1,
                Status::Waived => s.waived += 1,
            }
        }
        s
    }

    /// passed / (passed + failed), in percent, the way CIS-CAT scores;
    /// `None` when nothing passed or failed.
    pub fn score(&self) -> Option<f64> {
        let denom = self.pass + self.fail;
        (denom > 0).then(|| 100.0 * self.pass as f64 / denom as f64)
    }
}

pub const REPORT_SCHEMA: &str = "hardend.report/v1";

/// The `hardend.report/v1` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub host: HostInfo,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub duration_ms: f64,
    pub policies: Vec<PolicyRef>,
    pub summary: Summary,
    pub results: Vec<RuleResult>,
}
