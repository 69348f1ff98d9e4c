//! How file names are shown: every table, CSV, JSON and HTML output, every note and error
//! message shows a path through [`ShowPath::shown`], never through `Path::display`.
//!
//! A file name on Unix is any bytes but `/` and NUL. Uploaded files are named by whoever
//! uploaded them, so a name may hold terminal escape sequences (`ESC [ 2 J` clears the screen
//! of whoever reads the table), carriage returns that overwrite a line, bidirectional
//! overrides that reorder what is read, or bytes that are not UTF-8. Such names are opened
//! exactly as they are (the `Path` is never rebuilt from its shown form) and shown escaped:
//!
//! | in the name | shown as |
//! | --- | --- |
//! | a control character below U+0100 (C0, DEL, C1) | `\xNN` (e.g. `\x1b`) |
//! | a bidirectional control (U+200E/F, U+202A–E, U+2066–9) or another control character | `\u{NNNN}` |
//! | a byte that is not part of valid UTF-8 | `\xNN` |
//! | anything else (including `\`) | itself |
//!
//! Names without such characters are shown unchanged.

use std::fmt;
use std::path::Path;

/// A path shown with the characters above escaped (see the module's table).
pub struct Shown<'a>(&'a Path);

/// Paths shown safely.
pub trait ShowPath {
    /// The path for messages and outputs, escaped as the module's table says.
    fn shown(&self) -> Shown<'_>;
}

impl ShowPath for Path {
    fn shown(&self) -> Shown<'_> {
        Shown(self)
    }
}

impl ShowPath for std::path::PathBuf {
    fn shown(&self) -> Shown<'_> {
        Shown(self.as_path())
    }
}

/// Whether a character is escaped when shown.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes `s` (valid UTF-8) escaped.
fn write_text(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        if !needs_escape(c) {
            write!(f, "{c}")?;
        } else if (c as u32) < 0x100 {
            write!(f, "\\x{:02x}", c as u32)?;
        } else {
            write!(f, "\\u{{{:04x}}}", c as u32)?;
        }
    }
    Ok(())
}

/// Bytes of a name shown: valid UTF-8 runs as text (escaped), other bytes as `\xNN`.
pub fn escape_bytes(bytes: &[u8]) -> String {
    struct B<'a>(&'a [u8]);
    impl fmt::Display for B<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for chunk in self.0.utf8_chunks() {
                write_text(f, chunk.valid())?;
                for b in chunk.invalid() {
                    write!(f, "\\x{b:02x}")?;
                }
            }
            Ok(())
        }
    }
    B(bytes).to_string()
}

/// The bytes of a path (exact on Unix; elsewhere its lossy text).
pub fn path_bytes(p: &Path) -> std::borrow::Cow<'_, [u8]> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        std::borrow::Cow::Borrowed(p.as_os_str().as_bytes())
    }
    #[cfg(not(unix))]
    {
        match p.to_string_lossy() {
            std::borrow::Cow::Borrowed(s) => std::borrow::Cow::Borrowed(s.as_bytes()),
            std::borrow::Cow::Owned(s) => std::borrow::Cow::Owned(s.into_bytes()),
        }
    }
}

/// The bytes of a path's last component (`None` for a path without one, like `..` or `/`).
pub fn file_name_bytes(p: &Path) -> Option<Vec<u8>> {
    Some(path_bytes(Path::new(p.file_name()?)).into_owned())
}

/// A file name from its bytes: the inverse of [`path_bytes`] (exact on Unix).
pub fn os_name(bytes: Vec<u8>) -> std::ffi::OsString {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStringExt;
        std::ffi::OsString::from_vec(bytes)
    }
    #[cfg(not(unix))]
    {
        String::from_utf8_lossy(&bytes).into_owned().into()
    }
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_bytes(&path_bytes(self.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_unchanged_and_hostile_ones_escaped() {
        let show = |b: &[u8]| escape_bytes(b);
        assert_eq!(show("case_001 ü.nii.gz".as_bytes()), "case_001 ü.nii.gz");
        assert_eq!(show(b"a\x1b[2Jb\r\n.nii"), "a\\x1b[2Jb\\x0d\\x0a.nii");
        assert_eq!(show(b"x\xff\xfe.nii"), "x\\xff\\xfe.nii");
        assert_eq!(show("a\u{202e}lmth.nii".as_bytes()), "a\\u{202e}lmth.nii");
        assert_eq!(show("a\u{85}b".as_bytes()), "a\\x85b");
        assert_eq!(show(b"back\\slash"), "back\\slash");
    }
}
