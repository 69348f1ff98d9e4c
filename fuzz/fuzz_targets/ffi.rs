#![no_main]
//! See fuzz/harness/ffi.rs.

#[path = "../harness/ffi.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::ffi_calls(data));
