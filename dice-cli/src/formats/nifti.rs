//! NIfTI-1 and NIfTI-2 (single `.nii`/`.nii.gz` files and `.hdr`/`.img` pairs, either byte
//! order) and Analyze 7.5 pairs.
//!
//! Geometry as the NIfTI standard orders it: the sform when `sform_code > 0`, else the qform
//! (quaternion, `qfac` from `pixdim[0]`) when `qform_code > 0`, else `pixdim` alone ("method
//! 1"); lengths converted to millimetres from `xyzt_units` (metres, micrometres; unknown units
//! are taken as millimetres, as every tool does). Analyze 7.5 has no orientation: its voxel
//! axes are taken as the world's (method 1), and a note says so. `scl_slope`/`scl_inter` are
//! kept as a scaling for the value interpretation (a `uint8` probability map with slope 1/255).

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::{companion, input, is_gz, product, Access, Elem, Source};
use crate::geometry::Geometry;
use crate::names::ShowPath;
use crate::volume::{Data, Volume};

/// The header fields dice uses, from either NIfTI version or Analyze.
struct Header {
    le: bool,
    version: u8,
    /// `true` for `ni1`/`ni2` magic or Analyze: the voxels are in a separate `.img` file.
    pair: bool,
    /// No NIfTI magic: Analyze 7.5.
    analyze: bool,
    dims: Vec<usize>,
    datatype: i16,
    vox_offset: u64,
    header_len: u64,
    slope: f64,
    inter: f64,
    pixdim: [f64; 8],
    qform_code: i32,
    sform_code: i32,
    quatern: [f64; 3],
    qoffset: [f64; 3],
    srow: [[f64; 4]; 3],
    units: u8,
}

struct Fields<'a> {
    h: &'a [u8],
    le: bool,
}

impl Fields<'_> {
    fn bytes<const N: usize>(&self, o: usize) -> [u8; N] {
        let mut b = [0u8; N];
        b.copy_from_slice(&self.h[o..o + N]);
        if !self.le {
            b.reverse();
        }
        b
    }
    fn i16(&self, o: usize) -> i16 {
        i16::from_le_bytes(self.bytes(o))
    }
    fn i32(&self, o: usize) -> i32 {
        i32::from_le_bytes(self.bytes(o))
    }
    fn i64(&self, o: usize) -> i64 {
        i64::from_le_bytes(self.bytes(o))
    }
    fn f32(&self, o: usize) -> f64 {
        f32::from_le_bytes(self.bytes(o)) as f64
    }
    fn f64(&self, o: usize) -> f64 {
        f64::from_le_bytes(self.bytes(o))
    }
}

const N1: usize = 348;
const N2: usize = 540;

fn parse(src: &mut Source, expect_pair: bool) -> Result<Header, String> {
    let mut first = [0u8; 4];
    src.exact(&mut first)
        .map_err(|e| format!("not a NIfTI or Analyze file ({e})"))?;
    let (le, version) = match (i32::from_le_bytes(first), i32::from_be_bytes(first)) {
        (348, _) => (true, 1),
        (_, 348) => (false, 1),
        (540, _) => (true, 2),
        (_, 540) => (false, 2),
        _ => return Err("not a NIfTI or Analyze file (sizeof_hdr is neither 348 nor 540)".into()),
    };
    let size = if version == 1 { N1 } else { N2 };
    let mut h = vec![0u8; size];
    h[..4].copy_from_slice(&first);
    src.exact(&mut h[4..])
        .map_err(|e| format!("NIfTI-{version} header: {e}"))?;
    let f = Fields { h: &h, le };
    let mut hd = Header {
        le,
        version,
        pair: false,
        analyze: false,
        dims: Vec::new(),
        datatype: 0,
        vox_offset: 0,
        header_len: size as u64,
        slope: 0.0,
        inter: 0.0,
        pixdim: [0.0; 8],
        qform_code: 0,
        sform_code: 0,
        quatern: [0.0; 3],
        qoffset: [0.0; 3],
        srow: [[0.0; 4]; 3],
        units: 0,
    };
    let raw_dims: Vec<i64>;
    if version == 1 {
        let magic = &h[344..348];
        match magic {
            b"n+1\0" => {}
            b"ni1\0" => hd.pair = true,
            _ if expect_pair => {
                hd.pair = true;
                hd.analyze = true;
            }
            _ => {
                return Err(format!(
                    "not a NIfTI-1 single file: magic is {:?}, not \"n+1\" (an Analyze header \
                     belongs in a .hdr file beside its .img)",
                    String::from_utf8_lossy(&magic[..3])
                ))
            }
        }
        let ndim = f.i16(40);
        if !(1..=7).contains(&ndim) {
            return Err(format!("dim[0] = {ndim} is not in 1..=7"));
        }
        raw_dims = (1..=ndim as usize)
            .map(|k| f.i16(40 + 2 * k) as i64)
            .collect();
        hd.datatype = f.i16(70);
        for (k, p) in hd.pixdim.iter_mut().enumerate() {
            *p = f.f32(76 + 4 * k);
        }
        let off = f.f32(108);
        if !(off.is_finite() && off >= 0.0 && off < (1u64 << 53) as f64) {
            return Err(format!("vox_offset = {off} is not a valid offset"));
        }
        hd.vox_offset = off as u64;
        if !hd.analyze {
            hd.slope = f.f32(112);
            hd.inter = f.f32(116);
            hd.units = h[123];
            hd.qform_code = f.i16(252) as i32;
            hd.sform_code = f.i16(254) as i32;
            for k in 0..3 {
                hd.quatern[k] = f.f32(256 + 4 * k);
                hd.qoffset[k] = f.f32(268 + 4 * k);
                for c in 0..4 {
                    hd.srow[k][c] = f.f32(280 + 16 * k + 4 * c);
                }
            }
        }
    } else {
        match &h[4..12] {
            b"n+2\0\r\n\x1a\n" => {}
            b"ni2\0\r\n\x1a\n" => hd.pair = true,
            m => {
                return Err(format!(
                    "not a NIfTI-2 file: magic is {:?}",
                    String::from_utf8_lossy(&m[..3])
                ))
            }
        }
        let ndim = f.i64(16);
        if !(1..=7).contains(&ndim) {
            return Err(format!("dim[0] = {ndim} is not in 1..=7"));
        }
        raw_dims = (1..=ndim as usize).map(|k| f.i64(16 + 8 * k)).collect();
        hd.datatype = f.i16(12);
        for (k, p) in hd.pixdim.iter_mut().enumerate() {
            *p = f.f64(104 + 8 * k);
        }
        let off = f.i64(168);
        if off < 0 {
            return Err(format!("vox_offset = {off} is negative"));
        }
        hd.vox_offset = off as u64;
        hd.slope = f.f64(176);
        hd.inter = f.f64(184);
        hd.qform_code = f.i32(344);
        hd.sform_code = f.i32(348);
        for k in 0..3 {
            hd.quatern[k] = f.f64(352 + 8 * k);
            hd.qoffset[k] = f.f64(376 + 8 * k);
            for c in 0..4 {
                hd.srow[k][c] = f.f64(400 + 32 * k + 8 * c);
            }
        }
        hd.units = (f.i32(500) & 0xff) as u8;
    }
    for (k, &d) in raw_dims.iter().enumerate() {
        if d < 1 {
            return Err(format!("dim[{}] = {d} is not positive", k + 1));
        }
        hd.dims
            .push(usize::try_from(d).map_err(|_| format!("dim[{}] = {d} is too large", k + 1))?);
    }
    if !hd.pair && hd.vox_offset < hd.header_len {
        return Err(format!(
            "vox_offset = {} lies inside the {}-byte header",
            hd.vox_offset, hd.header_len
        ));
    }
    Ok(hd)
}

fn elem(datatype: i16) -> Result<Elem, String> {
    Ok(match datatype {
        2 => Elem::U8,
        256 => Elem::I8,
        4 => Elem::I16,
        512 => Elem::U16,
        8 => Elem::I32,
        768 => Elem::U32,
        1024 => Elem::I64,
        1280 => Elem::U64,
        16 => Elem::F32,
        64 => Elem::F64,
        1 => return Err("NIfTI datatype 1 (one bit per voxel) is not supported".into()),
        32 | 1792 | 2048 => {
            return Err(format!(
                "NIfTI datatype {datatype} (complex voxels) is not supported: a segmentation holds \
                 real values"
            ))
        }
        128 | 2304 => {
            return Err(format!(
                "NIfTI datatype {datatype} (RGB colour voxels) is not supported: a segmentation \
                 has one channel"
            ))
        }
        1536 => return Err("NIfTI datatype 1536 (float128) is not supported".into()),
        other => return Err(format!("NIfTI datatype {other} is not a valid type code")),
    })
}

/// Millimetres per unit of `xyzt_units` (unknown units: millimetres).
fn unit_scale(units: u8) -> f64 {
    match units & 7 {
        1 => 1000.0,
        3 => 0.001,
        _ => 1.0,
    }
}

/// How far `b² + c² + d²` of a qform may exceed 1 and still be a rotation rounded to `float32`
/// (a few ulps of 1; nibabel allows 3 ε of float32, we allow a little more).
const QUATERN_SLACK: f64 = 1e-6;

/// The file's geometry as the standard orders it (see the module doc); `problem` receives why
/// a qform cannot be a rotation (then `None` is returned).
fn geometry(h: &Header, notes: &mut Vec<String>, problem: &mut Option<String>) -> Option<Geometry> {
    let s = unit_scale(h.units);
    let spacing = [h.pixdim[1], h.pixdim[2], h.pixdim[3]].map(|v| v.abs() * s);
    if h.analyze {
        notes.push(
            "Analyze 7.5 has no orientation: its voxel axes are taken as the world's (NIfTI \
             method 1)"
                .into(),
        );
        let spacing = spacing.map(|v| if v > 0.0 && v.is_finite() { v } else { 1.0 });
        return Some(Geometry::diagonal(spacing, "Analyze pixdim"));
    }
    if h.sform_code > 0 {
        let mut affine = h.srow;
        for row in affine.iter_mut() {
            for v in row.iter_mut() {
                *v *= s;
            }
        }
        let g = Geometry {
            affine,
            source: "sform",
        };
        if g.is_valid() {
            return Some(g);
        }
        notes.push("the sform is not a valid affine: the qform is used".into());
    }
    if h.qform_code > 0 {
        let [mut b, mut c, mut d] = h.quatern;
        let norm2 = b * b + c * c + d * d;
        if !(norm2.is_finite() && norm2 <= 1.0 + QUATERN_SLACK) {
            *problem = Some(format!(
                "the qform quaternion (b, c, d) = ({b}, {c}, {d}) has length {} > 1: it is not \
                 a rotation (the header is corrupt)",
                norm2.sqrt()
            ));
            return None;
        }
        // As the standard's nifti_quatern_to_mat44: a = √(1 − b² − c² − d²), and within
        // rounding of a 180° turn (a² < 1e-7) (b, c, d) renormalised with a = 0.
        let mut a = 1.0 - norm2;
        if a < 1e-7 {
            let k = 1.0 / norm2.sqrt();
            (b, c, d) = (b * k, c * k, d * k);
            a = 0.0;
        } else {
            a = a.sqrt();
        }
        let qfac = if h.pixdim[0] < 0.0 { -1.0 } else { 1.0 };
        let r = [
            [
                a * a + b * b - c * c - d * d,
                2.0 * (b * c - a * d),
                2.0 * (b * d + a * c),
            ],
            [
                2.0 * (b * c + a * d),
                a * a + c * c - b * b - d * d,
                2.0 * (c * d - a * b),
            ],
            [
                2.0 * (b * d - a * c),
                2.0 * (c * d + a * b),
                a * a + d * d - b * b - c * c,
            ],
        ];
        let sp = [spacing[0], spacing[1], spacing[2] * qfac];
        let mut affine = [[0.0; 4]; 3];
        for i in 0..3 {
            for j in 0..3 {
                affine[i][j] = r[i][j] * sp[j];
            }
            affine[i][3] = h.qoffset[i] * s;
        }
        let g = Geometry {
            affine,
            source: "qform",
        };
        if g.is_valid() {
            return Some(g);
        }
        notes.push("the qform is not a valid affine: pixdim is used".into());
    }
    if spacing.iter().all(|v| *v > 0.0 && v.is_finite()) {
        Some(Geometry::diagonal(spacing, "pixdim"))
    } else {
        notes.push(format!(
            "no orientation and no valid pixdim ({:?}): the file has no geometry",
            spacing
        ));
        None
    }
}

/// The volume of a parsed header and its voxels. The scaling follows the standard and
/// nibabel: `scl_slope` 0 or NaN means none (nibabel writes NaN for "unset"); an infinite
/// slope, or a finite non-zero slope with a NaN or infinite `scl_inter`, is an error (it would
/// otherwise drop the scaling silently).
fn volume(h: &Header, data: Data, mut notes: Vec<String>) -> Result<Volume, String> {
    let mut problem = None;
    let geometry = geometry(h, &mut notes, &mut problem);
    if h.slope.is_infinite() {
        return Err(format!("scl_slope = {} is not a finite scaling", h.slope));
    }
    let scaled = h.slope != 0.0 && !h.slope.is_nan();
    if scaled && !h.inter.is_finite() {
        return Err(format!(
            "scl_inter = {} with scl_slope = {}: a scaling needs a finite intercept",
            h.inter, h.slope
        ));
    }
    let scale = (scaled && (h.slope != 1.0 || h.inter != 0.0)).then_some((h.slope, h.inter));
    let mut v = Volume::new(h.dims.clone(), data);
    v.geometry = geometry;
    v.geometry_error = problem;
    v.scale = scale;
    v.notes = notes;
    Ok(v)
}

fn trailing_note(extra: u64) -> Vec<String> {
    if extra > 0 {
        vec![format!("{extra} bytes after the voxel data were ignored")]
    } else {
        Vec::new()
    }
}

/// Reads a `.nii` or `.nii.gz` file (NIfTI-1 or NIfTI-2).
pub fn read(path: &Path) -> Result<Volume, String> {
    let mut src = Source::open(path, is_gz(path))?;
    let h = parse(&mut src, false)?;
    if h.pair {
        return Err(format!(
            "a NIfTI-{} header of a .hdr/.img pair (magic \"ni{}\") in a .nii file",
            h.version, h.version
        ));
    }
    let n = product(&h.dims)?;
    let elem = elem(h.datatype)?;
    src.skip(h.vox_offset - h.header_len)?;
    let data = src.voxels(n, elem, h.le)?;
    let extra = src.finish()?;
    volume(&h, data, trailing_note(extra))
}

/// Reads a `.hdr` (or `.hdr.gz`) header and the voxels of its `.img` (or `.img.gz`), which must
/// resolve inside the header's folder unless `access` allows otherwise (a `.img` symlink).
pub fn read_pair(path: &Path, access: Access) -> Result<Volume, String> {
    let mut src = Source::open(path, is_gz(path))?;
    let h = parse(&mut src, true)?;
    // Read the header file to its end: a gzipped header's checksum is checked there.
    src.finish()?;
    if !h.pair {
        return Err("a single-file NIfTI header (magic \"n+1\"/\"n+2\") in a .hdr file".into());
    }
    let img = companion(path, &[".img", ".img.gz"])
        .ok_or_else(|| "the .img (or .img.gz) file of this header is missing".to_string())?;
    let n = product(&h.dims)?;
    let elem = elem(h.datatype)?;
    let name = img.file_name().unwrap_or_default().to_owned();
    let img = input::data_file(path, "image file", &name, access)?;
    let mut data_src = Source::open(&img, is_gz(&img))?;
    data_src
        .skip(h.vox_offset)
        .map_err(|e| format!("{}: {e}", img.shown()))?;
    let data = data_src
        .voxels(n, elem, h.le)
        .map_err(|e| format!("{}: {e}", img.shown()))?;
    let extra = data_src
        .finish()
        .map_err(|e| format!("{}: {e}", img.shown()))?;
    volume(&h, data, trailing_note(extra))
}

/// Writes a volume as NIfTI-1 (little-endian), gzip-compressed (with a zero timestamp, so the
/// bytes are reproducible) when the path ends in `.gz`. A geometry other than a bare `pixdim`
/// is written as the sform.
pub fn write(path: &Path, v: &Volume) -> Result<(), String> {
    let mut bytes = header(v)?;
    bytes.extend_from_slice(&super::data_bytes(&v.data));
    let file = File::create(path).map_err(|e| format!("{}: cannot create: {e}", path.shown()))?;
    let res = if is_gz(path) {
        let mut enc = flate2::GzBuilder::new()
            .mtime(0)
            .write(file, flate2::Compression::new(6));
        enc.write_all(&bytes).and_then(|_| enc.finish().map(|_| ()))
    } else {
        let mut f = file;
        f.write_all(&bytes)
    };
    res.map_err(|e| format!("{}: cannot write: {e}", path.shown()))
}

fn header(v: &Volume) -> Result<Vec<u8>, String> {
    if v.dims.is_empty()
        || v.dims.len() > 7
        || v.dims.iter().any(|&d| d == 0 || d > i16::MAX as usize)
    {
        return Err(format!("sizes {:?} cannot be written as NIfTI-1", v.dims));
    }
    let (code, bitpix): (i16, i16) = match v.data {
        Data::U8(_) => (2, 8),
        Data::U16(_) => (512, 16),
        Data::U32(_) => (768, 32),
        Data::I32(_) => (8, 32),
        Data::I64(_) => (1024, 64),
        Data::F32(_) => (16, 32),
        Data::F64(_) => (64, 64),
    };
    let mut h = vec![0u8; 352];
    let put = |h: &mut Vec<u8>, o: usize, b: &[u8]| h[o..o + b.len()].copy_from_slice(b);
    put(&mut h, 0, &348i32.to_le_bytes());
    put(&mut h, 40, &(v.dims.len() as i16).to_le_bytes());
    for (k, &d) in v.dims.iter().enumerate() {
        put(&mut h, 42 + 2 * k, &(d as i16).to_le_bytes());
    }
    for k in v.dims.len() + 1..8 {
        put(&mut h, 40 + 2 * k, &1i16.to_le_bytes());
    }
    put(&mut h, 70, &code.to_le_bytes());
    put(&mut h, 72, &bitpix.to_le_bytes());
    put(&mut h, 76, &1f32.to_le_bytes());
    let spacing = v.geometry.as_ref().map(|g| g.spacing());
    for k in 0..v.dims.len() {
        let s = spacing.and_then(|s| s.get(k).copied()).unwrap_or(1.0) as f32;
        put(&mut h, 80 + 4 * k, &s.to_le_bytes());
    }
    put(&mut h, 108, &352f32.to_le_bytes());
    put(&mut h, 112, &1f32.to_le_bytes());
    h[123] = 2; // xyzt_units: mm
    if let Some(g) = v.geometry.as_ref().filter(|g| g.source != "pixdim") {
        put(&mut h, 254, &1i16.to_le_bytes());
        for (k, row) in g.affine.iter().enumerate() {
            for (c, &x) in row.iter().enumerate() {
                put(&mut h, 280 + 16 * k + 4 * c, &(x as f32).to_le_bytes());
            }
        }
    }
    put(&mut h, 344, b"n+1\0");
    Ok(h)
}
