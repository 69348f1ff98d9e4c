//! TIFF masks and probability maps: single-channel 8/16/32-bit integer or 32/64-bit float.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tiff::decoder::{Decoder, DecodingResult, Limits};

use crate::volume::{Data, Volume};

/// Reads the first image of a single-channel TIFF.
pub fn read(path: &Path) -> Result<Volume, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut dec = Decoder::new(BufReader::new(file))
        .map_err(|e| format!("not a valid TIFF: {e}"))?
        .with_limits(Limits::unlimited());
    let (w, h) = dec.dimensions().map_err(|e| format!("corrupt TIFF: {e}"))?;
    let color = dec.colortype().map_err(|e| format!("corrupt TIFF: {e}"))?;
    if !matches!(color, tiff::ColorType::Gray(_)) {
        return Err(format!(
            "{color:?} TIFF: masks must be single-channel (grayscale)"
        ));
    }
    let data = match dec
        .read_image()
        .map_err(|e| format!("corrupt or truncated TIFF: {e}"))?
    {
        DecodingResult::U8(v) => Data::U8(v),
        DecodingResult::U16(v) => Data::U16(v),
        DecodingResult::U32(v) => Data::U32(v),
        DecodingResult::I8(v) => Data::I32(v.into_iter().map(i32::from).collect()),
        DecodingResult::I16(v) => Data::I32(v.into_iter().map(i32::from).collect()),
        DecodingResult::I32(v) => Data::I32(v),
        DecodingResult::I64(v) => Data::I64(v),
        DecodingResult::F32(v) => Data::F32(v),
        DecodingResult::F64(v) => Data::F64(v),
        _ => return Err("unsupported TIFF sample format".into()),
    };
    let shape = vec![h as usize, w as usize];
    if data.len() != shape[0] * shape[1] {
        return Err(format!(
            "TIFF holds {} samples for a {w}x{h} image",
            data.len()
        ));
    }
    Ok(Volume {
        shape,
        spacing: None,
        data,
        fastest_first: false,
    })
}

/// Writes a `[h, w]` volume of u8, u16 or f32 as a grayscale TIFF (for tests and examples).
pub fn write(path: &Path, v: &Volume) -> Result<(), String> {
    use tiff::encoder::{colortype, TiffEncoder};
    let file = File::create(path).map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    let mut enc = TiffEncoder::new(std::io::BufWriter::new(file)).map_err(|e| e.to_string())?;
    let (h, w) = (v.shape[0] as u32, v.shape[1] as u32);
    let r = match &v.data {
        Data::U8(d) => enc.write_image::<colortype::Gray8>(w, h, d),
        Data::U16(d) => enc.write_image::<colortype::Gray16>(w, h, d),
        Data::F32(d) => enc.write_image::<colortype::Gray32Float>(w, h, d),
        other => {
            return Err(format!(
                "writing {} TIFFs is not supported",
                other.type_name()
            ))
        }
    };
    r.map_err(|e| format!("{}: {e}", path.display()))
}
