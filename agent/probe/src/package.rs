//! Installed packages from the dpkg (and rpm) databases.
use crate::RootFs;
use hardend_facts::{PackagesFact, Probed, Source};
pub fn probe(_fs: &RootFs) -> Probed<PackagesFact> {
    unimplemented!("package probe")
}
pub fn sources(_fs: &RootFs) -> Vec<Source> {
    Vec::new()
}
