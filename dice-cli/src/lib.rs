//! The library behind the `dice` command: file formats and their geometry, what values mean,
//! evaluation, reports, directories and overlays. The math is dice-core's; this crate reads
//! files, checks they can be compared, and presents results.

pub mod cli;
pub mod dirs;
pub mod eval;
pub mod formats;
pub mod geometry;
pub mod html;
pub mod lesionwise;
pub mod names;
pub mod output;
pub mod overlay;
pub mod report;
pub mod sample;
pub mod semantics;
pub mod surfaces;
pub mod volume;

pub use volume::{Data, Volume};

/// Peak resident memory of this process in bytes (Linux), for `--peak-memory`.
pub fn peak_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = s
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}
