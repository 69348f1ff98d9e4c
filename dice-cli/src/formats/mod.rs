//! Reading segmentation files by extension: NIfTI-1 (`.nii`, `.nii.gz`), NumPy (`.npy`),
//! PNG and TIFF (2-D masks). A corrupt or truncated file is an error naming it, never a panic;
//! sizes claimed by a header are checked before anything is allocated.

pub mod nifti;
pub mod npy;
pub mod png;
pub mod tiff;

use std::io::{self, Read};
use std::path::Path;

use crate::volume::Volume;

/// The formats `dice` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NIfTI-1, optionally gzip-compressed.
    Nifti,
    /// NumPy `.npy`.
    Npy,
    /// PNG.
    Png,
    /// TIFF.
    Tiff,
}

/// The known file name endings, longest first.
pub const EXTENSIONS: [(&str, Format); 6] = [
    (".nii.gz", Format::Nifti),
    (".nii", Format::Nifti),
    (".npy", Format::Npy),
    (".png", Format::Png),
    (".tiff", Format::Tiff),
    (".tif", Format::Tiff),
];

/// The format of a path and its name without the extension (for pairing directories).
pub fn classify(path: &Path) -> Option<(Format, String)> {
    let name = path.file_name()?.to_str()?;
    let lower = name.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|(ext, _)| lower.ends_with(ext) && lower.len() > ext.len())
        .map(|&(ext, f)| (f, name[..name.len() - ext.len()].to_string()))
}

/// Reads a file, choosing the decoder by its extension.
pub fn read(path: &Path) -> Result<Volume, String> {
    let (format, _) = classify(path).ok_or_else(|| {
        format!(
            "{}: unknown file type (expected .nii, .nii.gz, .npy, .png, .tif or .tiff)",
            path.display()
        )
    })?;
    let result = match format {
        Format::Nifti => nifti::read(path),
        Format::Npy => npy::read(path),
        Format::Png => png::read(path),
        Format::Tiff => tiff::read(path),
    };
    result.map_err(|e| format!("{}: {e}", path.display()))
}

/// `n` elements of `size` bytes each from `r`, converted by `conv`; the capacity is reserved
/// fallibly (a header can claim any size) and a short file is "truncated".
pub(crate) fn read_elems<R: Read, T>(
    r: &mut R,
    n: usize,
    size: usize,
    conv: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| format!("the header claims {n} voxels: too many to hold in memory"))?;
    let mut buf = vec![0u8; (1 << 16) / size * size];
    let mut remaining = n;
    while remaining > 0 {
        let k = remaining.min(buf.len() / size);
        read_exact(r, &mut buf[..k * size])?;
        out.extend(buf[..k * size].chunks_exact(size).map(&conv));
        remaining -= k;
    }
    Ok(out)
}

/// `n` bytes read straight into their final buffer (no copy).
pub(crate) fn read_bytes<R: Read>(r: &mut R, n: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| format!("the header claims {n} voxels: too many to hold in memory"))?;
    out.resize(n, 0);
    read_exact(r, &mut out)?;
    Ok(out)
}

pub(crate) fn read_exact<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), String> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => "truncated: the file ends before its data does".to_string(),
        _ => format!("cannot read: {e}"),
    })
}

/// The product of sizes, or an error when it overflows.
pub(crate) fn product(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))
}
