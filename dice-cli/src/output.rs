//! Writing reports and pictures safely: never over an input, never half a file, never a
//! special file replaced.
//!
//! Before anything is decoded, each output path is compared (canonically) with the inputs,
//! their header/data companions, and, in directory mode, with everything inside the input
//! directories. When the output is written ([`write_atomic`]), it is compared again, by device
//! and inode, with every file the run read (`formats::input::was_read`): a hard link of an
//! input, or the data file a header named under another name, is refused too.
//!
//! A regular target is written to a temporary file in its (resolved) folder and renamed onto it
//! when complete, so an interrupted run leaves the old file or the new one, never a truncated
//! one; a symlink stays a symlink (its target is replaced), an existing file keeps its
//! permissions and a new one gets `0666` less the umask. A FIFO or character device the user
//! named (a pipe, `/dev/stdout`) is written in place; a directory, socket, block device or
//! dangling symlink is refused. Every write error is reported with the path.

use crate::names::ShowPath;
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
            p.shown(),
            parent.shown()
        )
    })?;
    let name = p
        .file_name()
        .ok_or_else(|| format!("{} is not a file name", p.shown()))?;
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
            return Err(format!("{flag} {} is a directory", out.shown()));
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
                        out.shown(),
                        input.shown()
                    ));
                }
            } else {
                for part in parts(input) {
                    if part.canonicalize().is_ok_and(|c| c == o) {
                        return Err(format!(
                            "{flag} {} is an input file ({}): refusing to overwrite it",
                            out.shown(),
                            part.shown()
                        ));
                    }
                }
            }
        }
        if seen.contains(&o) {
            return Err(format!("{flag} {} is also another output", out.shown()));
        }
        seen.push(o);
    }
    Ok(())
}

/// Writes `bytes` to `path`, the one way every output is written:
///
/// * **Never over an input.** The target, symlinks followed, is compared by device and inode
///   with every file this process read (inputs, their headers and the data files they named:
///   [`crate::formats::input::was_read`]), so a hard link, a symlink or a `.raw` an `.mhd`
///   named is refused like the input itself.
/// * **Regular files atomically.** A temporary file in the target's folder, then a rename onto
///   the target (through its symlinks: the file a link points to is replaced, never the link),
///   so an interrupted run leaves the old file or the new one. A new file gets the usual
///   permissions (`0666` less the umask); a replaced one keeps its own.
/// * **Special files in place.** A FIFO or a character device the user named on purpose
///   (`/dev/stdout`, a pipe, `/dev/null`) is written as it is, not replaced by a regular file.
///   Block devices and sockets are refused; so is a symlink to nothing (it could make a file
///   appear anywhere).
/// * **Every error said.** A failed write, flush or sync (`/dev/full`, a full disk) is an
///   error naming the path.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: cannot write: {e}", path.shown());
    let meta = match std::fs::metadata(path) {
        Ok(m) => Some(m),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::fs::symlink_metadata(path).is_ok() {
                return Err(format!(
                    "{}: is a symlink to a file that does not exist: refusing to create a file \
                     through it",
                    path.shown()
                ));
            }
            None
        }
        Err(e) => return Err(fail(e)),
    };
    if let Some(m) = &meta {
        if crate::formats::input::was_read(m) {
            return Err(format!(
                "{} is a file this run read (an input, or a header's data file): refusing to \
                 overwrite it",
                path.shown()
            ));
        }
        if m.is_dir() {
            return Err(format!("{} is a directory", path.shown()));
        }
        if !m.is_file() {
            return write_special(path, m, bytes);
        }
    }
    // The file to replace: the target of the symlinks, where it resolves to a path (a
    // `/proc/self/fd/N` link to a deleted file does not: that one is written in place).
    let target = match &meta {
        Some(_) => match path.canonicalize() {
            Ok(t) => t,
            Err(_) => return write_in_place(path, bytes),
        },
        None => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::Permissions::from_mode(0o666)
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".dice-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(mode);
    let mut tmp = builder.tempfile_in(dir).map_err(fail)?;
    if let Some(m) = &meta {
        tmp.as_file()
            .set_permissions(m.permissions())
            .map_err(fail)?;
    }
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(&target).map_err(|e| fail(e.error))?;
    Ok(())
}

/// A FIFO or character device: written in place; anything else special is refused.
#[cfg_attr(not(unix), allow(unused_variables))]
fn write_special(path: &Path, m: &std::fs::Metadata, bytes: &[u8]) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() || t.is_char_device() {
            return write_in_place(path, bytes);
        }
    }
    Err(format!(
        "{} is {}: dice writes outputs to regular files, FIFOs and character devices only",
        path.shown(),
        crate::formats::input::kind_of(m)
    ))
}

/// Writes into an existing file as it is (no temporary file), reporting every error.
fn write_in_place(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: cannot write: {e}", path.shown());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(fail)?;
    f.write_all(bytes).and_then(|_| f.flush()).map_err(fail)
}
