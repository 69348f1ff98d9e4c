//! Opening what `dice eval` reads. Files come from untrusted places (challenge uploads, CI
//! bots evaluating pull requests), so this is a security boundary:
//!
//! * **Regular files only.** Every file is opened without blocking (`O_NONBLOCK`, so that a
//!   FIFO with no writer cannot hang the open; `O_NOCTTY`) and checked with `fstat` on the
//!   open descriptor: a FIFO, socket, character or block device (`/dev/zero` never ends, a
//!   FIFO waits forever) is an error naming the file. Directory entries go through the same
//!   open.
//! * **Detached data stays beside its header.** A header that names its data file (NRRD
//!   `data file`, MetaImage `ElementDataFile`, the `.img` of a `.hdr`) may only name a regular
//!   file that resolves, after every symlink, inside the header's own folder (the folder of
//!   the path the header was opened by, itself resolved): an absolute path, `..`, or a symlink
//!   leading out is an error naming the header and the field, unless the user passed
//!   `--allow-data-outside` ([`Access::allow_data_outside`]). Otherwise a submission's header
//!   saying `data file: /proc/self/environ` would make the evaluator read, and quote, the
//!   secrets of whoever runs it.
//! * **Every file read is remembered** by device and inode ([`was_read`]), so that no output
//!   is ever written over an input or over a data file an input named.
//!
//! Error messages never quote bytes of a data file (see the readers).

use std::fs::{File, Metadata};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::names::ShowPath;

/// How far a header may reach for its data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Allow a detached data file outside the header's folder (`--allow-data-outside`).
    pub allow_data_outside: bool,
}

/// (device, inode) of every file opened for reading in this process.
static READ: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

#[cfg(unix)]
fn identity(m: &Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<(u64, u64)> {
    None
}

fn remember(m: &Metadata) {
    if let Some(id) = identity(m) {
        let mut v = READ.lock().unwrap_or_else(|e| e.into_inner());
        if !v.contains(&id) {
            v.push(id);
        }
    }
}

/// Whether the file `m` describes was opened for reading by this process (an input, or a
/// data or header file an input led to).
pub fn was_read(m: &Metadata) -> bool {
    identity(m).is_some_and(|id| READ.lock().unwrap_or_else(|e| e.into_inner()).contains(&id))
}

/// What kind of file a non-regular file is, in words.
pub fn kind_of(m: &Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = m.file_type();
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_socket() {
            return "a socket";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
    }
    if m.is_dir() {
        "a directory"
    } else if m.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed), without blocking on
/// FIFOs; returns the file and its length. Errors name the path.
pub fn open_regular(path: &Path) -> Result<(File, u64), String> {
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = o
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.shown()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.shown()))?;
    if !meta.is_file() {
        return Err(format!(
            "{} is {}, not a regular file: dice reads only regular files",
            path.shown(),
            kind_of(&meta)
        ));
    }
    #[cfg(unix)]
    {
        // Reads of a regular file never block; clear the flag all the same, so that the
        // descriptor behaves as an ordinary one.
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns, with flags it just read.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    remember(&meta);
    Ok((file, meta.len()))
}

/// The folder a header was opened from, resolved (`.` for a bare name).
fn header_folder(header: &Path) -> Result<PathBuf, String> {
    let parent = match header.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    parent
        .canonicalize()
        .map_err(|e| format!("{}: its folder cannot be resolved: {e}", header.shown()))
}

/// The data file a header names in `field` (`name` as written there), checked against the
/// data-file policy of this module: resolved after symlinks, it must lie inside the header's
/// folder unless `access` allows data outside. Returns the path to open (the resolved one,
/// so that what was checked is what is read).
pub fn data_file(
    header: &Path,
    field: &str,
    name: &(impl AsRef<std::ffi::OsStr> + ?Sized),
    access: Access,
) -> Result<PathBuf, String> {
    let name = name.as_ref();
    if name.is_empty() {
        return Err(format!(
            "{}: {field} is empty or not a file name",
            header.shown()
        ));
    }
    let candidate = match header.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.join(name),
        _ => PathBuf::from(name),
    };
    let resolved = candidate.canonicalize().map_err(|e| {
        format!(
            "{}: the data file its {field} names ({}) cannot be opened: {e}",
            header.shown(),
            candidate.shown()
        )
    })?;
    if !access.allow_data_outside {
        let folder = header_folder(header)?;
        if !resolved.starts_with(&folder) {
            return Err(format!(
                "{}: its {field} names a file outside the header's folder ({}): refused, as a \
                 header is not trusted to reach other files (pass --allow-data-outside if this \
                 header is yours)",
                header.shown(),
                candidate.shown()
            ));
        }
    }
    Ok(resolved)
}

/// Opens a header's data file: [`data_file`]'s check, then [`open_regular`]. Errors name the
/// header, the field and the data file.
pub fn open_data(
    header: &Path,
    field: &str,
    name: &str,
    access: Access,
) -> Result<(File, u64, PathBuf), String> {
    let path = data_file(header, field, name, access)?;
    let (f, len) =
        open_regular(&path).map_err(|e| format!("{}: its {field}: {e}", header.shown()))?;
    Ok((f, len, path))
}
