#![no_main]
//! See fuzz/harness/cli.rs (`detached`): detached NRRD/MetaImage headers against the data-file
//! policy.

#[path = "../harness/cli.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::detached(data));
