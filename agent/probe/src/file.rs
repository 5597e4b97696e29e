//! Metadata and content of single paths.
use crate::RootFs;
use hardend_facts::{FileFact, Probed, Source};
pub fn probe(_fs: &RootFs, _path: &str, _content: bool) -> Probed<FileFact> {
    unimplemented!("file probe")
}
pub fn sources(_fs: &RootFs, _path: &str) -> Vec<Source> {
    Vec::new()
}
