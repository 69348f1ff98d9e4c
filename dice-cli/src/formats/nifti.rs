//! NIfTI-1 single files (`.nii`, `.nii.gz`), either byte order.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use flate2::read::MultiGzDecoder;

use super::{product, read_data, read_exact, Elem};
use crate::volume::{Data, Volume};

const HEADER: usize = 348;

/// Reads a `.nii` or `.nii.gz` file.
pub fn read(path: &Path) -> Result<Volume, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let gz = path.to_string_lossy().to_ascii_lowercase().ends_with(".gz");
    if gz {
        read_from(&mut BufReader::with_capacity(
            1 << 20,
            MultiGzDecoder::new(BufReader::new(file)),
        ))
    } else {
        read_from(&mut BufReader::with_capacity(1 << 20, file))
    }
}

/// Reads a NIfTI-1 stream: header, extensions skipped, voxels.
pub fn read_from<R: Read>(r: &mut R) -> Result<Volume, String> {
    let mut h = [0u8; HEADER];
    read_exact(r, &mut h).map_err(|e| format!("not a NIfTI-1 file ({e})"))?;
    let le = i32::from_le_bytes([h[0], h[1], h[2], h[3]]) == HEADER as i32;
    let be = i32::from_be_bytes([h[0], h[1], h[2], h[3]]) == HEADER as i32;
    if !le && !be {
        return Err("not a NIfTI-1 file (sizeof_hdr is not 348)".into());
    }
    if &h[344..347] != b"n+1" {
        if &h[344..347] == b"ni1" {
            return Err(
                "a NIfTI-1 header/image pair (.hdr/.img) is not supported: convert to .nii".into(),
            );
        }
        return Err("not a NIfTI-1 single file (magic is not \"n+1\")".into());
    }
    let i16_at = |o: usize| {
        if le {
            i16::from_le_bytes([h[o], h[o + 1]])
        } else {
            i16::from_be_bytes([h[o], h[o + 1]])
        }
    };
    let f32_at = |o: usize| {
        let b = [h[o], h[o + 1], h[o + 2], h[o + 3]];
        if le {
            f32::from_le_bytes(b)
        } else {
            f32::from_be_bytes(b)
        }
    };
    let ndim = i16_at(40);
    if !(1..=7).contains(&ndim) {
        return Err(format!("dim[0] = {ndim} is not in 1..=7"));
    }
    let mut shape = Vec::new();
    for k in 1..=ndim as usize {
        let d = i16_at(40 + 2 * k);
        if d < 1 {
            return Err(format!("dim[{k}] = {d} is not positive"));
        }
        shape.push(d as usize);
    }
    let spacing: Vec<f64> = (1..=ndim as usize)
        .map(|k| f32_at(76 + 4 * k).abs() as f64)
        .collect();
    let datatype = i16_at(70);
    let vox_offset = f32_at(108);
    if !(vox_offset.is_finite() && vox_offset >= HEADER as f32 && vox_offset < (1u64 << 31) as f32)
    {
        return Err(format!("vox_offset = {vox_offset} is not a valid offset"));
    }
    let n = product(&shape)?;
    // Skip the extension flag and extensions up to the data.
    let skip = vox_offset as u64 - HEADER as u64;
    std::io::copy(&mut r.take(skip), &mut std::io::sink())
        .map_err(|e| format!("cannot read: {e}"))?;
    let (slope, inter) = (f32_at(112), f32_at(116));
    let elem = match datatype {
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
        other => {
            return Err(format!(
                "NIfTI datatype {other} is not supported (integer or float voxels only)"
            ))
        }
    };
    let mut data = read_data(r, n, elem, le)?;
    // A scaling other than the identity turns the stored values into floats.
    if slope != 0.0 && (slope != 1.0 || inter != 0.0) && slope.is_finite() && inter.is_finite() {
        let (s, i) = (slope as f64, inter as f64);
        data = Data::F64((0..data.len()).map(|k| data.get_f64(k) * s + i).collect());
    }
    Ok(Volume {
        shape,
        spacing: Some(spacing),
        data,
        fastest_first: true,
    })
}

/// Writes a volume as NIfTI-1 (little-endian), gzip-compressed (with a zero timestamp, so the
/// bytes are reproducible) when the path ends in `.gz`.
pub fn write(path: &Path, v: &Volume) -> Result<(), String> {
    let mut bytes = header(v)?;
    append_data(&mut bytes, &v.data);
    let file = File::create(path).map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    let res = if path.to_string_lossy().to_ascii_lowercase().ends_with(".gz") {
        let mut enc = flate2::GzBuilder::new()
            .mtime(0)
            .write(file, flate2::Compression::new(6));
        enc.write_all(&bytes).and_then(|_| enc.finish().map(|_| ()))
    } else {
        let mut f = file;
        f.write_all(&bytes)
    };
    res.map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

fn header(v: &Volume) -> Result<Vec<u8>, String> {
    if v.shape.is_empty()
        || v.shape.len() > 7
        || v.shape.iter().any(|&d| d == 0 || d > i16::MAX as usize)
    {
        return Err(format!("shape {:?} cannot be written as NIfTI-1", v.shape));
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
    h[0..4].copy_from_slice(&348i32.to_le_bytes());
    h[40..42].copy_from_slice(&(v.shape.len() as i16).to_le_bytes());
    for (k, &d) in v.shape.iter().enumerate() {
        h[42 + 2 * k..44 + 2 * k].copy_from_slice(&(d as i16).to_le_bytes());
    }
    for k in v.shape.len() + 1..8 {
        h[40 + 2 * k..42 + 2 * k].copy_from_slice(&1i16.to_le_bytes());
    }
    h[70..72].copy_from_slice(&code.to_le_bytes());
    h[72..74].copy_from_slice(&bitpix.to_le_bytes());
    h[76..80].copy_from_slice(&1f32.to_le_bytes());
    for k in 0..v.shape.len() {
        let s = v
            .spacing
            .as_ref()
            .and_then(|s| s.get(k))
            .copied()
            .unwrap_or(1.0) as f32;
        h[80 + 4 * k..84 + 4 * k].copy_from_slice(&s.to_le_bytes());
    }
    h[108..112].copy_from_slice(&352f32.to_le_bytes());
    h[112..116].copy_from_slice(&1f32.to_le_bytes());
    h[123] = 2; // xyzt_units: mm
    h[344..348].copy_from_slice(b"n+1\0");
    Ok(h)
}

pub(crate) fn append_data(out: &mut Vec<u8>, d: &Data) {
    match d {
        Data::U8(v) => out.extend_from_slice(v),
        Data::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
}
