//! One module per check kind: each turns a check and the facts it needs into
//! an `Outcome`.

pub(crate) mod accounts;
pub(crate) mod file;
pub(crate) mod posture;
pub(crate) mod sshd;
pub(crate) mod sysctl;
pub(crate) mod system;
