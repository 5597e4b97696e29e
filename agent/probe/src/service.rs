//! systemd units: enablement from unit files and links, activity when live.
use crate::RootFs;
use hardend_facts::{Probed, ServiceFact, Source};
pub fn probe(_fs: &RootFs, _unit: &str) -> Probed<ServiceFact> {
    unimplemented!("service probe")
}
pub fn sources(_fs: &RootFs, _unit: &str) -> Vec<Source> {
    Vec::new()
}
