//! PNG masks: 8- or 16-bit grayscale, or 8-bit palette (indices are the labels).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use crate::volume::{Data, Volume};

/// Reads a single-channel PNG.
pub fn read(path: &Path) -> Result<Volume, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut decoder = png::Decoder::new(BufReader::new(file));
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder
        .read_info()
        .map_err(|e| format!("not a valid PNG: {e}"))?;
    let info = reader.info();
    let (w, h, color, depth) = (
        info.width as usize,
        info.height as usize,
        info.color_type,
        info.bit_depth,
    );
    match (color, depth) {
        (png::ColorType::Grayscale, png::BitDepth::Eight | png::BitDepth::Sixteen)
        | (png::ColorType::Indexed, png::BitDepth::Eight) => {}
        _ => {
            return Err(format!(
            "{color:?} {depth:?}-bit PNG: masks must be 8/16-bit grayscale or 8-bit palette images"
        ))
        }
    }
    let size = reader.output_buffer_size().ok_or("PNG too large")?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size)
        .map_err(|_| format!("PNG of {size} bytes: too large to hold in memory"))?;
    buf.resize(size, 0);
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("corrupt or truncated PNG: {e}"))?;
    buf.truncate(frame.buffer_size());
    let data = if depth == png::BitDepth::Sixteen {
        Data::U16(
            buf.chunks_exact(2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .collect(),
        )
    } else {
        Data::U8(buf)
    };
    Ok(Volume {
        shape: vec![h, w],
        spacing: None,
        data,
        fastest_first: false,
    })
}

/// Writes an 8-bit grayscale PNG of a `[h, w]` `u8` image.
pub fn write_gray(path: &Path, w: usize, h: usize, pixels: &[u8]) -> Result<(), String> {
    write(path, w, h, png::ColorType::Grayscale, pixels)
}

/// Writes an 8-bit RGB PNG.
pub fn write_rgb(path: &Path, w: usize, h: usize, rgb: &[u8]) -> Result<(), String> {
    write(path, w, h, png::ColorType::Rgb, rgb)
}

fn write(
    path: &Path,
    w: usize,
    h: usize,
    color: png::ColorType,
    bytes: &[u8],
) -> Result<(), String> {
    let file = File::create(path).map_err(|e| format!("{}: cannot create: {e}", path.display()))?;
    let mut enc = png::Encoder::new(BufWriter::new(file), w as u32, h as u32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc
        .write_header()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    writer
        .write_image_data(bytes)
        .map_err(|e| format!("{}: {e}", path.display()))
}
