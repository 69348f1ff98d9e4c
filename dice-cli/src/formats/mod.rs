//! Reading segmentation files by extension: NIfTI-1 (`.nii`, `.nii.gz`), NumPy (`.npy`),
//! PNG and TIFF (2-D masks). A corrupt or truncated file is an error naming it, never a panic;
//! sizes claimed by a header are checked before anything is allocated.

pub mod nifti;
pub mod npy;
pub mod png;
pub mod tiff;

use std::io::{self, Read};
use std::path::Path;

use crate::volume::{Data, Volume};

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

/// A stored element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Elem {
    U8,
    I8,
    I16,
    U16,
    I32,
    U32,
    I64,
    U64,
    F32,
    F64,
}

/// `n` voxels of type `elem` in the given byte order, into the matching [`Data`] (`u8` read
/// straight into its buffer; narrow signed types widened to `i32`; `u64` checked to fit `i64`).
pub(crate) fn read_data<R: Read>(
    r: &mut R,
    n: usize,
    elem: Elem,
    le: bool,
) -> Result<Data, String> {
    macro_rules! elems {
        ($t:ty, $size:expr) => {
            read_elems(r, n, $size, |b| {
                let a: [u8; $size] = b.try_into().unwrap_or([0; $size]);
                if le {
                    <$t>::from_le_bytes(a)
                } else {
                    <$t>::from_be_bytes(a)
                }
            })?
        };
    }
    Ok(match elem {
        Elem::U8 => Data::U8(read_bytes(r, n)?),
        Elem::I8 => Data::I32(elems!(i8, 1).into_iter().map(i32::from).collect()),
        Elem::I16 => Data::I32(elems!(i16, 2).into_iter().map(i32::from).collect()),
        Elem::U16 => Data::U16(elems!(u16, 2)),
        Elem::I32 => Data::I32(elems!(i32, 4)),
        Elem::U32 => Data::U32(elems!(u32, 4)),
        Elem::I64 => Data::I64(elems!(i64, 8)),
        Elem::U64 => {
            let v = elems!(u64, 8);
            if let Some(big) = v.iter().find(|&&x| x > i64::MAX as u64) {
                return Err(format!("uint64 voxel value {big} is too large for a label"));
            }
            Data::I64(v.into_iter().map(|x| x as i64).collect())
        }
        Elem::F32 => Data::F32(elems!(f32, 4)),
        Elem::F64 => Data::F64(elems!(f64, 8)),
    })
}

/// The product of sizes, or an error when it overflows.
pub(crate) fn product(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("shape {shape:?} overflows"))
}
