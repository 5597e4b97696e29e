//! Kernel parameters: live `/proc/sys` and the sysctl.d boot configuration.
use crate::RootFs;
use hardend_facts::{Source, SysctlFact};
pub fn probe(_fs: &RootFs, _key: &str) -> SysctlFact {
    unimplemented!("sysctl probe")
}
pub fn sources(_fs: &RootFs, _key: &str) -> Vec<Source> {
    Vec::new()
}
