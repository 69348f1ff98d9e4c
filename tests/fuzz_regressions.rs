//! The fuzz harnesses (`fuzz/harness`) on stable Rust: every seed of the committed corpus and
//! every input that once crashed (`fuzz/regressions/<target>/`, each a file named after what it
//! found) must run without a panic. `cargo +nightly fuzz run <target>` explores further (the
//! README's test command does so for a bounded time where a nightly toolchain and cargo-fuzz
//! are installed).

#[path = "../fuzz/harness/cli.rs"]
mod cli;
#[path = "../fuzz/harness/ffi.rs"]
mod ffi;

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            let data = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{} panicked", p.display());
            n += 1;
        }
    }
    n
}

#[test]
fn readers_replay_corpus_and_regressions() {
    assert!(replay("read_any", cli::read_any) >= 20);
}

#[test]
fn pair_evaluation_replays_corpus_and_regressions() {
    assert!(replay("eval_pair", cli::eval_pair) >= 4);
}

#[test]
fn c_abi_replays_corpus_and_regressions() {
    assert!(replay("ffi", ffi::ffi_calls) >= 4);
}

#[test]
fn detached_headers_replay_corpus_and_regressions() {
    assert!(replay("detached", cli::detached) >= 10);
}
