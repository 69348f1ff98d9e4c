#![no_main]
//! See fuzz/harness/cli.rs.

#[path = "../harness/cli.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::read_any(data));
