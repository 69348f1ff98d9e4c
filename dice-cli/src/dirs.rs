//! Directory mode: pair files by name, evaluate in parallel, keep results in name order so
//! that they are identical whatever the thread count. Nothing is dropped silently: every file
//! that is not evaluated (no namesake, a subfolder, not an image, a name clash) is listed with
//! its reason, and a failing case is reported without stopping the others.

use crate::names::ShowPath;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::eval::{self, Options};
use crate::formats;
use crate::report::{Case, Skipped};

/// The image files of a directory by name without extension, and what was skipped.
fn listing(dir: &Path, skipped: &mut Vec<Skipped>) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut clashes: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.shown()))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| format!("{}: {e}", dir.shown()))?.path());
    }
    paths.sort();
    let skip = |skipped: &mut Vec<Skipped>, p: &Path, reason: &str| {
        skipped.push(Skipped {
            path: p.shown().to_string(),
            reason: reason.into(),
        })
    };
    for path in &paths {
        // What the entry is, symlinks followed: only regular files are read (a FIFO would
        // hang the run, a device never end); a broken link or a loop is said, not followed.
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) => {
                skip(skipped, path, &format!("cannot be read ({e})"));
                continue;
            }
        };
        if meta.is_dir() {
            skip(
                skipped,
                path,
                "a subfolder (directories are not searched recursively)",
            );
            continue;
        }
        if !meta.is_file() {
            skip(
                skipped,
                path,
                &format!(
                    "{} (only regular files are read)",
                    formats::input::kind_of(&meta)
                ),
            );
            continue;
        }
        let lower = crate::names::file_name_bytes(path)
            .unwrap_or_default()
            .to_ascii_lowercase();
        match formats::classify(path) {
            Some((formats::Format::PairImage, _)) => {
                if formats::companion(path, &[".hdr", ".hdr.gz"]).is_none() {
                    skip(skipped, path, "an .img file without its .hdr header");
                }
            }
            Some((_, stem)) => {
                if let Some(previous) = out.remove(&stem) {
                    clashes.entry(stem.clone()).or_default().push(previous);
                }
                if let Some(c) = clashes.get_mut(&stem) {
                    c.push(path.clone());
                } else {
                    out.insert(stem, path.clone());
                }
            }
            None if formats::DATA_ENDINGS
                .iter()
                .any(|e| lower.ends_with(e.as_bytes())) =>
            {
                // The data file of a header beside it (.raw of .mhd/.nhdr) is read through it.
                if formats::companion(path, &[".mhd", ".nhdr"]).is_none() {
                    skip(skipped, path, "a raw data file without a header");
                }
            }
            None => skip(
                skipped,
                path,
                &format!("not an image file (known: {})", formats::KNOWN),
            ),
        }
    }
    for (stem, files) in clashes {
        for f in files {
            skip(
                skipped,
                &f,
                &format!("name clash: several files are named {stem}"),
            );
        }
    }
    Ok(out)
}

/// The pairs, and what was skipped.
pub struct Pairing {
    /// (name, prediction, reference), sorted by name.
    pub pairs: Vec<(String, PathBuf, PathBuf)>,
    /// Files not evaluated, with the reason.
    pub skipped: Vec<Skipped>,
}

/// Pairs the files of two directories by name.
pub fn pair(pred_dir: &Path, gt_dir: &Path) -> Result<Pairing, String> {
    let mut skipped = Vec::new();
    let preds = listing(pred_dir, &mut skipped)?;
    let gts = listing(gt_dir, &mut skipped)?;
    let pairs = preds
        .iter()
        .filter_map(|(k, p)| gts.get(k).map(|g| (k.clone(), p.clone(), g.clone())))
        .collect();
    for (k, p) in &preds {
        if !gts.contains_key(k) {
            skipped.push(Skipped {
                path: p.shown().to_string(),
                reason: format!(
                    "a prediction without a reference named {k} in {}",
                    gt_dir.shown()
                ),
            });
        }
    }
    for (k, g) in &gts {
        if !preds.contains_key(k) {
            skipped.push(Skipped {
                path: g.shown().to_string(),
                reason: format!(
                    "a reference without a prediction named {k} in {}",
                    pred_dir.shown()
                ),
            });
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Pairing { pairs, skipped })
}

/// Reads and evaluates one pair.
pub fn evaluate_files(name: &str, pred: &Path, gt: &Path, opts: &Options) -> Case {
    let (pn, gn) = (pred.shown().to_string(), gt.shown().to_string());
    let result =
        eval::prepare(pred, gt, opts).and_then(|pair| eval::evaluate(&pair, opts, &pn, &gn));
    Case {
        name: name.to_string(),
        prediction: pn,
        reference: gn,
        result,
    }
}

/// How many threads to use: at most the cores and the pairs (each thread holds one pair in
/// memory, so this also bounds memory at threads × pair).
pub fn thread_count(asked: Option<usize>, pairs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    asked.unwrap_or(cores).min(cores).min(pairs).max(1)
}

/// Evaluates every pair on up to `threads` threads, with a progress bar on a terminal (rate,
/// time left, the case just finished). A thread the system refuses to start is done without.
pub fn evaluate_all(pairing: &Pairing, opts: &Options, threads: usize) -> Vec<Case> {
    let n = pairing.pairs.len();
    let results: Vec<Mutex<Option<Case>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let bar = indicatif::ProgressBar::new(n as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} cases, {per_sec}, {eta} left  {wide_msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let (name, p, g) = &pairing.pairs[i];
        let case = evaluate_files(name, p, g, opts);
        *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(case);
        bar.set_message(name.clone());
        bar.inc(1);
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            // A thread that cannot be started (a memory or process limit) is not an error:
            // the others, and this one, share its work.
            if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
    bar.finish_and_clear();
    results
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_else(|| {
                    let (name, p, g) = &pairing.pairs[i];
                    Case {
                        name: name.clone(),
                        prediction: p.shown().to_string(),
                        reference: g.shown().to_string(),
                        result: Err("not evaluated (a worker thread failed)".into()),
                    }
                })
        })
        .collect()
}
