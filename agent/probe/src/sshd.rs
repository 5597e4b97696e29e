//! The sshd configuration under the root, parsed with Include expanded.
use crate::RootFs;
use hardend_facts::{Probed, Source, SshdFact};
pub fn probe(_fs: &RootFs) -> Probed<SshdFact> {
    unimplemented!("sshd probe")
}
pub fn sources(_fs: &RootFs) -> Vec<Source> {
    Vec::new()
}
