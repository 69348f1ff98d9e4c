//! Directory mode: pair files by name, evaluate in parallel, keep results in name order so
//! that they are identical whatever the thread count.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::eval::{self, Options};
use crate::formats;
use crate::report::Case;

/// Files of a directory by name without extension.
fn listing(dir: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    let mut out = BTreeMap::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{}: cannot list: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("{}: {e}", dir.display()))?.path();
        if path.is_file() {
            if let Some((_, stem)) = formats::classify(&path) {
                if let Some(previous) = out.insert(stem.clone(), path.clone()) {
                    return Err(format!(
                        "{} and {} have the same name {stem}",
                        previous.display(),
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// The pairs, and the names present on one side only.
pub struct Pairing {
    /// (name, prediction, reference), sorted by name.
    pub pairs: Vec<(String, PathBuf, PathBuf)>,
    /// Names with a prediction only.
    pub only_pred: Vec<String>,
    /// Names with a reference only.
    pub only_gt: Vec<String>,
}

/// Pairs the files of two directories by name.
pub fn pair(pred_dir: &Path, gt_dir: &Path) -> Result<Pairing, String> {
    let preds = listing(pred_dir)?;
    let gts = listing(gt_dir)?;
    let pairs = preds
        .iter()
        .filter_map(|(k, p)| gts.get(k).map(|g| (k.clone(), p.clone(), g.clone())))
        .collect();
    let only_pred = preds
        .keys()
        .filter(|k| !gts.contains_key(*k))
        .cloned()
        .collect();
    let only_gt = gts
        .keys()
        .filter(|k| !preds.contains_key(*k))
        .cloned()
        .collect();
    Ok(Pairing {
        pairs,
        only_pred,
        only_gt,
    })
}

/// Reads and evaluates one pair.
pub fn evaluate_files(pred: &Path, gt: &Path, opts: &Options) -> Result<Vec<eval::Row>, String> {
    let p = formats::read(pred)?;
    let g = formats::read(gt)?;
    eval::check_pair(
        &p,
        &g,
        &pred.display().to_string(),
        &gt.display().to_string(),
    )?;
    eval::evaluate(&p, &g, opts).map_err(|e| format!("{} vs {}: {e}", pred.display(), gt.display()))
}

/// Evaluates every pair on `threads` threads, showing progress on a terminal.
pub fn evaluate_all(pairing: &Pairing, opts: &Options, threads: usize) -> Vec<Case> {
    let n = pairing.pairs.len();
    let results: Vec<Mutex<Option<Case>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let progress = std::io::stderr().is_terminal();
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let (name, p, g) = &pairing.pairs[i];
                let result = evaluate_files(p, g, opts);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(Case {
                    name: name.clone(),
                    result,
                });
                let k = done.fetch_add(1, Ordering::Relaxed) + 1;
                if progress {
                    let width = 30;
                    let filled = k * width / n;
                    let _ = write!(
                        std::io::stderr(),
                        "\r[{}{}] {k}/{n} {name:<30.30}",
                        "#".repeat(filled),
                        ".".repeat(width - filled)
                    );
                }
            });
        }
    });
    if progress && n > 0 {
        let _ = writeln!(std::io::stderr());
    }
    results
        .into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}
