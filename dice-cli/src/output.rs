//! Writing reports and pictures safely: never over an input, never half a file.
//!
//! Every output is written to a temporary file in the target's directory and renamed onto the
//! target when complete, so an interrupted run leaves the old file or the new one, never a
//! truncated one. Before anything is decoded, each output path is compared (canonically) with
//! the inputs, their header/data companions, and, in directory mode, with everything inside
//! the input directories.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The canonical form of a path that may not exist yet (its directory must).
fn canonical(p: &Path) -> Result<PathBuf, String> {
    if let Ok(c) = p.canonicalize() {
        return Ok(c);
    }
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let dir = parent.canonicalize().map_err(|e| {
        format!(
            "{}: its directory {} cannot be used: {e}",
            p.display(),
            parent.display()
        )
    })?;
    let name = p
        .file_name()
        .ok_or_else(|| format!("{} is not a file name", p.display()))?;
    Ok(dir.join(name))
}

/// Files an input consists of: itself and its header or data companions.
fn parts(input: &Path) -> Vec<PathBuf> {
    let mut v = vec![input.to_path_buf()];
    let endings = [
        ".hdr", ".hdr.gz", ".img", ".img.gz", ".raw", ".raw.gz", ".zraw", ".nhdr", ".mhd",
    ];
    if let Some(c) = crate::formats::companion(input, &endings) {
        v.push(c);
    }
    for e in endings {
        if let Some(c) = crate::formats::companion(input, &[e]) {
            v.push(c);
        }
    }
    v
}

/// Checks that no output (`flag`, path) is an input file or lies inside an input directory,
/// and that outputs do not collide. Usage errors.
pub fn check_targets(outputs: &[(&str, &Path)], inputs: &[&Path]) -> Result<(), String> {
    let mut seen: Vec<PathBuf> = Vec::new();
    for &(flag, out) in outputs {
        let o = canonical(out)?;
        if o.is_dir() {
            return Err(format!("{flag} {} is a directory", out.display()));
        }
        for &input in inputs {
            let Ok(i) = input.canonicalize() else {
                continue;
            };
            if i.is_dir() {
                if o.starts_with(&i) {
                    return Err(format!(
                        "{flag} {} lies inside the input directory {}: it could overwrite an input \
                         or be read as one; write it elsewhere",
                        out.display(),
                        input.display()
                    ));
                }
            } else {
                for part in parts(input) {
                    if part.canonicalize().is_ok_and(|c| c == o) {
                        return Err(format!(
                            "{flag} {} is an input file ({}): refusing to overwrite it",
                            out.display(),
                            part.display()
                        ));
                    }
                }
            }
        }
        if seen.contains(&o) {
            return Err(format!("{flag} {} is also another output", out.display()));
        }
        seen.push(o);
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let fail = |e: std::io::Error| format!("{}: cannot write: {e}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".dice-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}
