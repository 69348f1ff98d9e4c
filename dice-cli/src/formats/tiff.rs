//! TIFF masks and probability maps: single-channel integer (1 to 64 bits) or float samples.
//! A multi-page TIFF is a 3-D stack (as tifffile and ImageJ write volumes), its pages the
//! slowest axis; pages that differ in size or type are an error, never the first page alone.
//! `MinIsWhite` images are read as the values stored (the decoder's inversion is undone): a
//! label is a number, not a shade. The decoder's memory is limited by what the file's size can
//! decompress to.

use crate::names::ShowPath;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::{Decoder, DecodingResult, Limits};
use tiff::tags::Tag;

use super::{decode_limit, no_memory, try_collect, unpack_bits};
use crate::volume::{Data, Volume};

/// Checks that every strip or tile of the current page lies inside the file (the decoder
/// would fill a strip cut short by truncation with zeros).
fn check_extents(
    dec: &mut Decoder<BufReader<File>>,
    file_len: u64,
    k: usize,
) -> Result<(), String> {
    let at = |e: tiff::TiffError| format!("corrupt TIFF page {k}: {e}");
    let (offsets, counts) = match dec
        .find_tag_unsigned_vec::<u64>(Tag::StripOffsets)
        .map_err(at)?
    {
        Some(o) => (
            o,
            dec.find_tag_unsigned_vec::<u64>(Tag::StripByteCounts)
                .map_err(at)?,
        ),
        None => (
            dec.find_tag_unsigned_vec::<u64>(Tag::TileOffsets)
                .map_err(at)?
                .unwrap_or_default(),
            dec.find_tag_unsigned_vec::<u64>(Tag::TileByteCounts)
                .map_err(at)?,
        ),
    };
    let counts = counts.ok_or_else(|| format!("TIFF page {k} has no strip or tile byte counts"))?;
    for (j, (&o, &c)) in offsets.iter().zip(&counts).enumerate() {
        let end = o.saturating_add(c);
        if end > file_len {
            return Err(format!(
                "truncated: strip {j} of TIFF page {k} ends at byte {end}, past the file's {file_len} bytes"
            ));
        }
    }
    Ok(())
}

fn page(
    dec: &mut Decoder<BufReader<File>>,
    budget: &mut usize,
    k: usize,
    file_len: u64,
) -> Result<(u32, u32, tiff::ColorType, Data), String> {
    check_extents(dec, file_len, k)?;
    let at = |e: tiff::TiffError| format!("corrupt TIFF page {k}: {e}");
    let (w, h) = dec.dimensions().map_err(at)?;
    let color = dec.colortype().map_err(at)?;
    let bits = match color {
        tiff::ColorType::Gray(b) => b,
        other => {
            return Err(format!(
                "{other:?} TIFF (page {k}): a segmentation has one channel per voxel (grayscale)"
            ))
        }
    };
    let pixels = (w as usize)
        .checked_mul(h as usize)
        .ok_or("TIFF size overflows")?;
    let bytes = pixels.saturating_mul((bits as usize).div_ceil(8));
    if bytes > *budget {
        return Err(format!(
            "a {w}×{h} TIFF page ({bits}-bit) cannot be held in a file of this size (its pages \
             would decode to more than {} bytes)",
            *budget
        ));
    }
    *budget -= bytes;
    let white_is_zero = dec
        .find_tag_unsigned::<u16>(Tag::PhotometricInterpretation)
        .map_err(at)?
        == Some(0);
    let result = dec
        .read_image()
        .map_err(|e| format!("corrupt or truncated TIFF page {k}: {e}"))?;
    let data = match result {
        DecodingResult::U8(mut v) => {
            if white_is_zero {
                // The decoder stores !x; undo it (for packed bits too).
                v.iter_mut().for_each(|x| *x = !*x);
            }
            if bits < 8 {
                let row_bytes = (w as usize * bits as usize).div_ceil(8);
                Data::U8(unpack_bits(&v, w as usize, h as usize, bits as usize, row_bytes)?)
            } else {
                Data::U8(v)
            }
        }
        DecodingResult::U16(mut v) => {
            if white_is_zero {
                v.iter_mut().for_each(|x| *x = u16::MAX - *x);
            }
            Data::U16(v)
        }
        DecodingResult::U32(mut v) => {
            if white_is_zero {
                v.iter_mut().for_each(|x| *x = u32::MAX - *x);
            }
            Data::U32(v)
        }
        DecodingResult::U64(v) => {
            if white_is_zero {
                return Err("MinIsWhite 64-bit TIFF is not supported".into());
            }
            if let Some(i) = v.iter().position(|&x| x > i64::MAX as u64) {
                return Err(format!("uint64 sample {} (pixel {i}) is too large for a label", v[i]));
            }
            Data::I64(try_collect(v.len(), v.into_iter().map(|x| x as i64), "int64")?)
        }
        _ if white_is_zero => {
            return Err("MinIsWhite signed or floating-point TIFF is not supported: the stored values cannot be recovered".into())
        }
        DecodingResult::I8(v) => Data::I32(try_collect(v.len(), v.into_iter().map(i32::from), "int32")?),
        DecodingResult::I16(v) => Data::I32(try_collect(v.len(), v.into_iter().map(i32::from), "int32")?),
        DecodingResult::I32(v) => Data::I32(v),
        DecodingResult::I64(v) => Data::I64(v),
        DecodingResult::F32(v) => Data::F32(v),
        DecodingResult::F64(v) => Data::F64(v),
        _ => return Err(format!("TIFF sample format of page {k} is not supported (16-bit float?)")),
    };
    if data.len() != pixels {
        return Err(format!(
            "TIFF page {k} holds {} samples for a {w}×{h} image",
            data.len()
        ));
    }
    Ok((w, h, color, data))
}

fn append(acc: &mut Data, d: Data) -> Result<(), String> {
    let (n, extra) = (acc.len(), d.len());
    crate::with_data!(&mut *acc, v => v.try_reserve_exact(extra))
        .map_err(|_| no_memory(n + extra, "the TIFF's sample type"))?;
    match (acc, d) {
        (Data::U8(a), Data::U8(b)) => a.extend(b),
        (Data::U16(a), Data::U16(b)) => a.extend(b),
        (Data::U32(a), Data::U32(b)) => a.extend(b),
        (Data::I32(a), Data::I32(b)) => a.extend(b),
        (Data::I64(a), Data::I64(b)) => a.extend(b),
        (Data::F32(a), Data::F32(b)) => a.extend(b),
        (Data::F64(a), Data::F64(b)) => a.extend(b),
        _ => return Err("TIFF pages differ in sample type".into()),
    }
    Ok(())
}

/// Reads every page of a single-channel TIFF.
pub fn read(path: &Path) -> Result<Volume, String> {
    let (file, len) = super::input::open_regular(path)?;
    let mut budget = decode_limit(len);
    let mut limits = Limits::default();
    limits.decoding_buffer_size = budget;
    limits.intermediate_buffer_size = budget;
    limits.ifd_value_size = (len as usize).clamp(1 << 16, 1 << 26);
    let mut dec = Decoder::new(BufReader::new(file))
        .map_err(|e| format!("not a valid TIFF: {e}"))?
        .with_limits(limits);
    let (w, h, color, mut data) = page(&mut dec, &mut budget, 0, len)?;
    let mut pages = 1usize;
    while dec.more_images() {
        dec.next_image()
            .map_err(|e| format!("corrupt TIFF after page {}: {e}", pages - 1))?;
        let (w2, h2, c2, d) = page(&mut dec, &mut budget, pages, len)?;
        if (w2, h2, c2) != (w, h, color) {
            return Err(format!(
                "TIFF pages differ: page 0 is {w}×{h} {color:?}, page {pages} is {w2}×{h2} {c2:?} \
                 (a multi-page TIFF is read as a 3-D stack of equal pages)"
            ));
        }
        append(&mut data, d)?;
        pages += 1;
    }
    let dims = if pages > 1 {
        vec![w as usize, h as usize, pages]
    } else {
        vec![w as usize, h as usize]
    };
    Ok(Volume::new(dims, data))
}

/// Writes a `w × h` (× pages) volume of u8, u16 or f32 as a grayscale TIFF, one page per slice
/// (for tests and examples).
pub fn write(path: &Path, v: &Volume) -> Result<(), String> {
    use tiff::encoder::{colortype, TiffEncoder};
    let file = File::create(path).map_err(|e| format!("{}: cannot create: {e}", path.shown()))?;
    let mut enc = TiffEncoder::new(std::io::BufWriter::new(file)).map_err(|e| e.to_string())?;
    let (w, h) = (v.dims[0] as u32, v.dims.get(1).copied().unwrap_or(1) as u32);
    let pages = v.dims.get(2).copied().unwrap_or(1);
    let plane = (w * h) as usize;
    for k in 0..pages {
        let r = k * plane..(k + 1) * plane;
        let res = match &v.data {
            Data::U8(d) => enc.write_image::<colortype::Gray8>(w, h, &d[r]),
            Data::U16(d) => enc.write_image::<colortype::Gray16>(w, h, &d[r]),
            Data::F32(d) => enc.write_image::<colortype::Gray32Float>(w, h, &d[r]),
            other => {
                return Err(format!(
                    "writing {} TIFFs is not supported",
                    other.type_name()
                ))
            }
        };
        res.map_err(|e| format!("{}: {e}", path.shown()))?;
    }
    Ok(())
}
