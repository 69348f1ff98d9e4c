//! Reading segmentation files by extension: NIfTI-1 and NIfTI-2 (`.nii`, `.nii.gz`), Analyze
//! and NIfTI header/image pairs (`.hdr` + `.img`, either gzipped), NRRD (`.nrrd`, `.nhdr` with
//! its data file), MetaImage (`.mha`, `.mhd` with its data file), NumPy (`.npy`), PNG and TIFF
//! (multi-page TIFF is a 3-D stack).
//!
//! Every reader is built on three rules:
//! * **Memory is bounded by what the file can hold.** A header's claim is compared with the
//!   bytes the file really has before anything is allocated (raw data), or at most what the
//!   compressed bytes can inflate to (1032:1 for DEFLATE) is reserved and the buffer grows
//!   beyond only as decompressed bytes arrive (compressed data), or a decoder's limit is set from the
//!   file's size (PNG, TIFF). Allocation is fallible everywhere: a volume that does not fit is
//!   an error that names its size and type.
//! * **Files are decoded completely.** Compressed streams are read to their end, so a bad CRC,
//!   a missing trailer or trailing garbage is an error; a truncated file is an error.
//! * **Voxels go straight into their final buffer** (no intermediate copy), in their stored
//!   type; the byte order is fixed in place.

mod huge_pages;
pub mod input;
pub mod metaimage;
pub mod nifti;
pub mod npy;
pub mod nrrd;
pub mod png;
pub mod tiff;

use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use bytemuck::Pod;

pub use input::Access;

use crate::names::ShowPath;
use crate::volume::{Data, Volume};

/// The formats `dice` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// NIfTI-1 or NIfTI-2 single file, optionally gzip-compressed.
    Nifti,
    /// Analyze 7.5 or NIfTI header of a `.hdr`/`.img` pair.
    NiftiPair,
    /// The image half of a `.hdr`/`.img` pair (read through its header).
    PairImage,
    /// NRRD, attached or detached header.
    Nrrd,
    /// MetaImage, attached or detached header.
    MetaImage,
    /// NumPy `.npy`.
    Npy,
    /// PNG.
    Png,
    /// TIFF.
    Tiff,
}

/// The known file name endings, longest first.
pub const EXTENSIONS: [(&str, Format); 14] = [
    (".nii.gz", Format::Nifti),
    (".hdr.gz", Format::NiftiPair),
    (".img.gz", Format::PairImage),
    (".nii", Format::Nifti),
    (".hdr", Format::NiftiPair),
    (".img", Format::PairImage),
    (".nrrd", Format::Nrrd),
    (".nhdr", Format::Nrrd),
    (".mha", Format::MetaImage),
    (".mhd", Format::MetaImage),
    (".npy", Format::Npy),
    (".png", Format::Png),
    (".tiff", Format::Tiff),
    (".tif", Format::Tiff),
];

/// Endings of data files that belong to a header of the same name (`.img` of a `.hdr`, `.raw`
/// of a `.mhd` or `.nhdr`): not images of their own in a directory.
pub const DATA_ENDINGS: [&str; 5] = [".img", ".img.gz", ".raw", ".raw.gz", ".zraw"];

/// The format of a path and its name without the extension (for pairing directories). Works
/// on the name's bytes, so a name that is not UTF-8 is classified too; the stem is its shown
/// form ([`crate::names`]).
pub fn classify(path: &Path) -> Option<(Format, String)> {
    let name = crate::names::file_name_bytes(path)?;
    let lower = name.to_ascii_lowercase();
    EXTENSIONS
        .iter()
        .find(|(ext, _)| lower.ends_with(ext.as_bytes()) && lower.len() > ext.len())
        .map(|&(ext, f)| {
            (
                f,
                crate::names::escape_bytes(&name[..name.len() - ext.len()]),
            )
        })
}

/// The extensions in words, for messages.
pub const KNOWN: &str =
    ".nii, .nii.gz, .hdr/.img (also gzipped), .nrrd, .nhdr, .mha, .mhd, .npy, .png, .tif, .tiff";

/// Reads a file, choosing the decoder by its extension, under the default data-file policy
/// (a detached header's data must lie beside it: [`input`]). Errors start with the path.
pub fn read(path: &Path) -> Result<Volume, String> {
    read_with(path, Access::default())
}

/// [`read`] under the data-file policy `access`.
pub fn read_with(path: &Path, access: Access) -> Result<Volume, String> {
    let fail = |e: String| format!("{}: {e}", path.shown());
    let (format, _) =
        classify(path).ok_or_else(|| fail(format!("unknown file type (expected {KNOWN})")))?;
    let v = match format {
        Format::Nifti => nifti::read(path),
        Format::NiftiPair => nifti::read_pair(path, access),
        Format::PairImage => {
            let header = companion(path, &[".hdr", ".hdr.gz"]).ok_or_else(|| {
                fail("the image half of a .hdr/.img pair: its .hdr header is missing".into())
            })?;
            return read_with(&header, access)
                .map_err(|e| format!("{e} (the header of {})", path.shown()));
        }
        Format::Nrrd => nrrd::read(path, access),
        Format::MetaImage => metaimage::read(path, access),
        Format::Npy => npy::read(path),
        Format::Png => png::read(path),
        Format::Tiff => tiff::read(path),
    }
    .map_err(fail)?;
    let mut v = v;
    // One check of every format's geometry: what cannot measure is set aside with its reason.
    if let Some(problem) = v.geometry.as_ref().and_then(|g| g.problem()) {
        v.geometry = None;
        v.geometry_error = Some(problem);
    }
    if v.data.len() != v.voxels() {
        return Err(fail(format!(
            "holds {} voxels for a size of {} voxels",
            v.data.len(),
            v.voxels()
        )));
    }
    Ok(v)
}

/// The first existing file named like `path` with its data/header ending replaced by one of
/// `endings` (the name compared as bytes, so names that are not UTF-8 find their companions).
pub(crate) fn companion(path: &Path, endings: &[&str]) -> Option<PathBuf> {
    let name = crate::names::file_name_bytes(path)?;
    let lower = name.to_ascii_lowercase();
    let stem_len = EXTENSIONS
        .iter()
        .map(|(e, _)| *e)
        .chain(DATA_ENDINGS)
        .filter(|e| lower.ends_with(e.as_bytes()))
        .map(|e| name.len() - e.len())
        .min()?;
    let stem = &name[..stem_len];
    endings.iter().find_map(|e| {
        [e.to_string(), e.to_ascii_uppercase()]
            .into_iter()
            .map(|e| path.with_file_name(crate::names::os_name([stem, e.as_bytes()].concat())))
            .find(|p| p.is_file())
    })
}

/// The longest text header (NRRD, MetaImage) dice reads: real ones are a few hundred bytes.
pub(crate) const MAX_TEXT_HEADER: usize = 1 << 20;

/// Lines of a text header, at most [`MAX_TEXT_HEADER`] bytes in all.
pub(crate) struct HeaderLines<R> {
    reader: R,
    consumed: usize,
    format: &'static str,
    line: Vec<u8>,
}

impl<R: io::BufRead> HeaderLines<R> {
    /// Lines of `format`'s header from `reader`.
    pub fn new(reader: R, format: &'static str) -> Self {
        HeaderLines {
            reader,
            consumed: 0,
            format,
            line: Vec::new(),
        }
    }

    /// The next line without its line ending, or `None` at the end of the file.
    pub fn next_line(&mut self) -> Result<Option<&str>, String> {
        self.line.clear();
        let k = io::BufRead::read_until(
            &mut (&mut self.reader).take((MAX_TEXT_HEADER - self.consumed) as u64 + 1),
            b'\n',
            &mut self.line,
        )
        .map_err(|e| format!("cannot read: {e}"))?;
        self.consumed += k;
        if self.consumed > MAX_TEXT_HEADER {
            return Err(format!("{} header longer than 1 MiB", self.format));
        }
        if k == 0 {
            return Ok(None);
        }
        std::str::from_utf8(&self.line)
            .map(|t| Some(t.trim_end_matches(['\n', '\r'])))
            .map_err(|_| format!("not a {} file (its header is not text)", self.format))
    }

    /// Bytes read so far (where the data of an attached header starts).
    pub fn consumed(&self) -> usize {
        self.consumed
    }
}

/// `true` when the path's name ends in `.gz` (any case).
pub(crate) fn is_gz(path: &Path) -> bool {
    path.to_string_lossy().to_ascii_lowercase().ends_with(".gz")
}

/// How many bytes a source can still deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Avail {
    /// Raw bytes left in the file: a claim is checked against it before allocating.
    Raw(u64),
    /// A DEFLATE stream (gzip, zlib) of this many compressed bytes: it cannot inflate to more
    /// than [`DEFLATE_RATIO`] times as many, which bounds what a claim may reserve up front.
    Deflate(u64),
}

/// DEFLATE's largest expansion: a 258-byte match in about 2 bits, i.e. 1032:1.
pub(crate) const DEFLATE_RATIO: u64 = 1032;

impl Avail {
    /// Raw bytes left, if the data is raw.
    pub fn raw(self) -> Option<u64> {
        match self {
            Avail::Raw(n) => Some(n),
            Avail::Deflate(_) => None,
        }
    }

    /// Bytes worth reserving for a claim of `bytes`: all of them for raw data (already checked
    /// against the file) or when the stream could hold them; else what the stream could hold,
    /// so that a small file claiming gigabytes reserves little (it then fails when it ends).
    fn reserve(self, bytes: usize) -> usize {
        match self {
            Avail::Raw(_) => bytes,
            Avail::Deflate(c) => {
                let most = c.saturating_mul(DEFLATE_RATIO).saturating_add(1 << 16);
                bytes.min(usize::try_from(most).unwrap_or(usize::MAX))
            }
        }
    }
}

/// A source of voxel bytes and how much of it there can be.
pub(crate) struct Source {
    /// The bytes.
    pub reader: Box<dyn Read>,
    /// How many there can be.
    pub remaining: Avail,
}

impl Source {
    /// A file, gzip-decoded when `gz` (every member, to the end: CRCs and sizes are checked).
    pub fn open(path: &Path, gz: bool) -> Result<Source, String> {
        let (file, len) = input::open_regular(path)?;
        Ok(if gz {
            Source {
                reader: Box::new(BufReader::with_capacity(
                    1 << 16,
                    flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)),
                )),
                remaining: Avail::Deflate(len),
            }
        } else {
            Source {
                reader: Box::new(BufReader::with_capacity(1 << 16, file)),
                remaining: Avail::Raw(len),
            }
        })
    }

    /// Reads exactly `buf.len()` bytes (header fields).
    pub fn exact(&mut self, buf: &mut [u8]) -> Result<(), String> {
        read_exact(&mut self.reader, buf)?;
        if let Avail::Raw(r) = &mut self.remaining {
            *r = r.saturating_sub(buf.len() as u64);
        }
        Ok(())
    }

    /// Skips `n` bytes (extensions, padding), which must be there.
    pub fn skip(&mut self, n: u64) -> Result<(), String> {
        let copied = io::copy(&mut (&mut self.reader).take(n), &mut io::sink())
            .map_err(|e| read_error(&e))?;
        if copied < n {
            return Err(TRUNCATED.into());
        }
        if let Avail::Raw(r) = &mut self.remaining {
            *r = r.saturating_sub(n);
        }
        Ok(())
    }

    /// Reads to the end of the stream (verifying a compressed stream's checksum) and returns
    /// how many bytes were left after the voxels.
    pub fn finish(mut self) -> Result<u64, String> {
        io::copy(&mut self.reader, &mut io::sink()).map_err(|e| read_error(&e))
    }

    /// `n` voxels of `elem` in the given byte order.
    pub fn voxels(&mut self, n: usize, elem: Elem, little_endian: bool) -> Result<Data, String> {
        read_data(&mut self.reader, n, elem, little_endian, self.remaining)
    }
}

/// The message of a file that ends early.
pub(crate) const TRUNCATED: &str = "truncated: the file ends before its data does";

pub(crate) fn read_error(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => TRUNCATED.to_string(),
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            format!("corrupt compressed data ({e})")
        }
        _ => format!("cannot read: {e}"),
    }
}

pub(crate) fn read_exact<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> Result<(), String> {
    r.read_exact(buf).map_err(|e| read_error(&e))
}

/// A stored element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// uint8.
    U8,
    /// int8.
    I8,
    /// int16.
    I16,
    /// uint16.
    U16,
    /// int32.
    I32,
    /// uint32.
    U32,
    /// int64.
    I64,
    /// uint64.
    U64,
    /// float32.
    F32,
    /// float64.
    F64,
}

impl Elem {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Elem::U8 | Elem::I8 => 1,
            Elem::I16 | Elem::U16 => 2,
            Elem::I32 | Elem::U32 | Elem::F32 => 4,
            Elem::I64 | Elem::U64 | Elem::F64 => 8,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Elem::U8 => "uint8",
            Elem::I8 => "int8",
            Elem::I16 => "int16",
            Elem::U16 => "uint16",
            Elem::I32 => "int32",
            Elem::U32 => "uint32",
            Elem::I64 => "int64",
            Elem::U64 => "uint64",
            Elem::F32 => "float32",
            Elem::F64 => "float64",
        }
    }
}

/// The message of a volume that does not fit in memory.
pub(crate) fn no_memory(n: usize, elem: &str) -> String {
    format!("not enough memory for {n} voxels of type {elem}")
}

/// Element types whose byte order can be swapped in place.
trait Swap: Pod {
    fn swap(self) -> Self;
}

macro_rules! swap_int {
    ($($t:ty),*) => {$(impl Swap for $t { fn swap(self) -> Self { self.swap_bytes() } })*};
}
swap_int!(u8, i8, u16, i16, u32, i32, u64, i64);
impl Swap for f32 {
    fn swap(self) -> Self {
        f32::from_bits(self.to_bits().swap_bytes())
    }
}
impl Swap for f64 {
    fn swap(self) -> Self {
        f64::from_bits(self.to_bits().swap_bytes())
    }
}

/// `n` elements of `T` read straight into their final buffer. Raw data is checked against the
/// file before allocating; a compressed stream reserves what it could inflate to
/// ([`Avail::reserve`]) and grows beyond only as bytes arrive, so a small file claiming
/// gigabytes fails after reading what it has.
fn read_typed<T: Swap>(
    r: &mut dyn Read,
    n: usize,
    elem: Elem,
    little_endian: bool,
    remaining: Avail,
) -> Result<Vec<T>, String> {
    let size = std::mem::size_of::<T>();
    let bytes = claimed_bytes(remaining, n, size, elem)?;
    let mut v: Vec<T> = Vec::new();
    let mut filled = 0usize; // bytes
    while filled < bytes {
        if filled == v.len() * size {
            let target = if v.is_empty() {
                remaining.reserve(bytes).div_ceil(size).max(1).min(n)
            } else {
                n.min(v.len() * 2)
            };
            v.try_reserve_exact(target - v.len())
                .map_err(|_| no_memory(n, elem.name()))?;
            huge_pages::advise(&v);
            v.resize(target, T::zeroed());
        }
        let view: &mut [u8] = bytemuck::cast_slice_mut(&mut v[..]);
        match r.read(&mut view[filled..]) {
            Ok(0) => return Err(TRUNCATED.into()),
            Ok(k) => filled += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(&e)),
        }
    }
    if little_endian != cfg!(target_endian = "little") && size > 1 {
        for x in v.iter_mut() {
            *x = x.swap();
        }
    }
    Ok(v)
}

/// `n` elements stored as `S`, widened to `T` as they are read: through a 64 KiB buffer
/// straight into the final `Vec<T>` (no full-size buffer of `S`, no zero-filling). Memory is
/// bounded as in [`read_typed`].
fn read_widened<S: Swap, T: From<S>>(
    r: &mut dyn Read,
    n: usize,
    elem: Elem,
    little_endian: bool,
    remaining: Avail,
) -> Result<Vec<T>, String> {
    const BUF: usize = 1 << 16;
    let size = std::mem::size_of::<S>();
    let bytes = claimed_bytes(remaining, n, size, elem)?;
    let mut v: Vec<T> = Vec::new();
    v.try_reserve_exact(remaining.reserve(bytes).div_ceil(size).max(1).min(n))
        .map_err(|_| no_memory(n, elem.name()))?;
    huge_pages::advise(&v);
    let swap = little_endian != cfg!(target_endian = "little") && size > 1;
    let mut buf = [0u8; BUF];
    // Bytes of a split element carried to the front of `buf` for the next read.
    let mut carried = 0usize;
    let mut left = bytes;
    while left > 0 {
        let want = (BUF - carried).min(left);
        let k = match r.read(&mut buf[carried..carried + want]) {
            Ok(0) => return Err(TRUNCATED.into()),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(&e)),
        };
        left -= k;
        let have = carried + k;
        let whole = have / size * size;
        if v.capacity() - v.len() < whole / size {
            // A compressed stream larger than its first reservation: grow by doubling.
            let more = (n - v.len()).min(v.capacity().max(whole / size));
            v.try_reserve_exact(more)
                .map_err(|_| no_memory(n, elem.name()))?;
        }
        v.extend(buf[..whole].chunks_exact(size).map(|b| {
            let x: S = bytemuck::pod_read_unaligned(b);
            T::from(if swap { x.swap() } else { x })
        }));
        buf.copy_within(whole..have, 0);
        carried = have - whole;
    }
    Ok(v)
}

/// The bytes of `n` elements of `size` bytes, checked against what the source can hold.
fn claimed_bytes(remaining: Avail, n: usize, size: usize, elem: Elem) -> Result<usize, String> {
    let bytes = n
        .checked_mul(size)
        .ok_or_else(|| format!("{n} voxels of {} overflow the address space", elem.name()))?;
    check_claim(remaining, n, bytes, elem)?;
    Ok(bytes)
}

/// A raw claim of `bytes` that the file cannot hold is an error naming both.
fn check_claim(remaining: Avail, n: usize, bytes: usize, elem: Elem) -> Result<(), String> {
    match remaining {
        Avail::Raw(avail) if bytes as u64 > avail => Err(format!(
            "truncated: the header claims {n} voxels of {} ({bytes} bytes) but only {avail} \
             bytes follow it",
            elem.name()
        )),
        _ => Ok(()),
    }
}

/// `n` bytes read straight into their final buffer without zero-filling it first
/// (`read_to_end` reads into the reserved, untouched capacity): for byte label maps, the
/// commonest volumes, this saves a pass over fresh memory. Raw data (`remaining` known) is
/// checked against the file's size before allocating; a compressed stream's buffer grows as
/// bytes arrive.
fn read_bytes(r: &mut dyn Read, n: usize, remaining: Avail) -> Result<Vec<u8>, String> {
    check_claim(remaining, n, n, Elem::U8)?;
    let mut v: Vec<u8> = Vec::new();
    v.try_reserve_exact(remaining.reserve(n))
        .map_err(|_| no_memory(n, "uint8"))?;
    huge_pages::advise(&v);
    match r.take(n as u64).read_to_end(&mut v) {
        Ok(k) if k == n => Ok(v),
        Ok(_) => Err(TRUNCATED.into()),
        Err(e) if e.kind() == io::ErrorKind::OutOfMemory => Err(no_memory(n, "uint8")),
        Err(e) => Err(read_error(&e)),
    }
}

/// A vector of `n` values made fallibly (conversions whose size a header decides).
pub(crate) fn try_collect<T>(
    n: usize,
    it: impl Iterator<Item = T>,
    what: &str,
) -> Result<Vec<T>, String> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|_| no_memory(n, what))?;
    huge_pages::advise(&v);
    v.extend(it);
    Ok(v)
}

/// `n` voxels of type `elem` in the given byte order, into the matching [`Data`] (narrow signed
/// types widened to `i32`, `uint64` checked to fit `i64`).
pub(crate) fn read_data(
    r: &mut dyn Read,
    n: usize,
    elem: Elem,
    le: bool,
    remaining: Avail,
) -> Result<Data, String> {
    Ok(match elem {
        Elem::U8 => Data::U8(read_bytes(r, n, remaining)?),
        Elem::I8 => Data::I32(read_widened::<i8, i32>(r, n, elem, le, remaining)?),
        Elem::I16 => Data::I32(read_widened::<i16, i32>(r, n, elem, le, remaining)?),
        Elem::U16 => Data::U16(read_typed(r, n, elem, le, remaining)?),
        Elem::I32 => Data::I32(read_typed(r, n, elem, le, remaining)?),
        Elem::U32 => Data::U32(read_typed(r, n, elem, le, remaining)?),
        Elem::I64 => Data::I64(read_typed(r, n, elem, le, remaining)?),
        Elem::U64 => {
            let v = read_typed::<u64>(r, n, elem, le, remaining)?;
            if let Some(i) = v.iter().position(|&x| x > i64::MAX as u64) {
                return Err(format!(
                    "uint64 voxel value {} (element {i}) is too large for a label",
                    v[i]
                ));
            }
            Data::I64(try_collect(n, v.into_iter().map(|x| x as i64), "int64")?)
        }
        Elem::F32 => Data::F32(read_typed(r, n, elem, le, remaining)?),
        Elem::F64 => Data::F64(read_typed(r, n, elem, le, remaining)?),
    })
}

/// Rows of `bits`-bit samples (1, 2 or 4; rows padded to whole bytes, the first sample in the
/// high bits, as PNG and TIFF store them) unpacked into one byte each.
pub(crate) fn unpack_bits(
    buf: &[u8],
    w: usize,
    h: usize,
    bits: usize,
    row_bytes: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    out.try_reserve_exact(w * h)
        .map_err(|_| no_memory(w * h, "uint8"))?;
    let mask = ((1u16 << bits) - 1) as u8;
    for y in 0..h {
        let row = buf
            .get(y * row_bytes..(y + 1) * row_bytes)
            .ok_or("image data shorter than its rows")?;
        out.extend((0..w).map(|x| {
            let bit = x * bits;
            (row[bit / 8] >> (8 - bits - bit % 8)) & mask
        }));
    }
    Ok(out)
}

/// The sizes of a text header's `field` (NRRD `sizes`, MetaImage `DimSize`): `ndim` positive
/// integers, `ndim` itself read from `ndim_text` and at most `max_dims`.
pub(crate) fn header_sizes(
    format: &str,
    ndim_field: &str,
    ndim_text: &str,
    max_dims: usize,
    field: &str,
    text: &str,
) -> Result<Vec<usize>, String> {
    let ndim: usize = ndim_text
        .trim()
        .parse()
        .map_err(|_| format!("{format} {ndim_field} {ndim_text:?} is not a number"))?;
    if !(1..=max_dims).contains(&ndim) {
        return Err(format!(
            "{format} {ndim_field} {ndim} is not in 1..={max_dims}"
        ));
    }
    let dims: Vec<usize> = text
        .split_whitespace()
        .map(|s| s.parse::<usize>().ok().filter(|&d| d > 0))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("{format} {field} {text:?} is not a list of positive integers"))?;
    if dims.len() != ndim {
        return Err(format!(
            "{format} has {} {field} values for {ndim_field} {ndim}",
            dims.len()
        ));
    }
    Ok(dims)
}

/// The product of sizes, or an error when it overflows.
pub(crate) fn product(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("sizes {dims:?} overflow"))
}

/// A limit for decoders that cannot check sizes against the file (PNG, TIFF): what `file_len`
/// bytes can decompress to (DEFLATE and LZW stay far below 4096:1), and at least 16 MiB.
pub(crate) fn decode_limit(file_len: u64) -> usize {
    usize::try_from(file_len.saturating_mul(4096))
        .unwrap_or(usize::MAX)
        .max(16 << 20)
}

/// A writer of test and sample files: little-endian bytes of a volume's voxels.
pub(crate) fn data_bytes(d: &Data) -> Vec<u8> {
    crate::with_data!(d, v => v.iter().flat_map(|x| le_bytes(*x)).collect())
}

fn le_bytes<T: Pod>(x: T) -> Vec<u8> {
    let mut b = bytemuck::bytes_of(&x).to_vec();
    if cfg!(target_endian = "big") {
        b.reverse();
    }
    b
}
