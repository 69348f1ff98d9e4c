//! PNG masks: grayscale at 1, 2, 4, 8 or 16 bits, palette images (the indices are the labels),
//! and gray+alpha (the alpha channel is ignored, with a note). Colour images are refused: a
//! segmentation has one value per pixel. The decoder's memory is limited by what the file's
//! size can decompress to, and the file is read to its end chunk (CRCs checked).

use crate::names::ShowPath;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;

use super::{decode_limit, no_memory, try_collect, unpack_bits};
use crate::volume::{Data, IndexStyle, Volume};

/// Reads a single-channel PNG.
pub fn read(path: &Path) -> Result<Volume, String> {
    let (file, len) = super::input::open_regular(path)?;
    let limit = decode_limit(len);
    let mut decoder =
        png::Decoder::new_with_limits(BufReader::new(file), png::Limits { bytes: limit });
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
    let bits = depth as usize;
    let mut notes = Vec::new();
    match color {
        png::ColorType::Grayscale | png::ColorType::Indexed => {}
        png::ColorType::GrayscaleAlpha => {
            notes.push("gray+alpha PNG: the alpha channel is ignored".to_string())
        }
        png::ColorType::Rgb | png::ColorType::Rgba => {
            return Err(format!(
                "{color:?} PNG: a segmentation mask has one channel (grayscale or palette); \
                 colour-coded labels must be converted to label values first"
            ))
        }
    }
    let size = reader
        .output_buffer_size()
        .filter(|&s| s <= limit)
        .ok_or_else(|| {
            format!(
                "a {w}×{h} PNG cannot be held in a {len}-byte file (over the {limit}-byte limit \
                 for its size)"
            )
        })?;
    let mut buf = Vec::new();
    buf.try_reserve_exact(size)
        .map_err(|_| no_memory(w * h, "uint8"))?;
    buf.resize(size, 0);
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| format!("corrupt or truncated PNG: {e}"))?;
    let row_bytes = frame.line_size;
    reader
        .finish()
        .map_err(|e| format!("corrupt or truncated PNG after the image data: {e}"))?;
    let channels = if color == png::ColorType::GrayscaleAlpha {
        2
    } else {
        1
    };
    let data = match (bits, channels) {
        (16, c) => Data::U16(try_collect(
            w * h,
            (0..h).flat_map(|y| {
                let row = &buf[y * row_bytes..];
                (0..w).map(move |x| u16::from_be_bytes([row[2 * c * x], row[2 * c * x + 1]]))
            }),
            "uint16",
        )?),
        (8, 1) => {
            buf.truncate(w * h);
            Data::U8(buf)
        }
        (8, c) => Data::U8(try_collect(w * h, (0..w * h).map(|i| buf[c * i]), "uint8")?),
        (b, _) => Data::U8(unpack_bits(&buf, w, h, b, row_bytes)?),
    };
    let mut v = Volume::new(vec![w, h], data);
    v.index_style = IndexStyle::Voxel;
    v.notes = notes;
    Ok(v)
}

/// Writes an 8-bit grayscale PNG of a `w × h` image.
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
    let file = File::create(path).map_err(|e| format!("{}: cannot create: {e}", path.shown()))?;
    write_to(BufWriter::new(file), w, h, color, bytes).map_err(|e| format!("{}: {e}", path.shown()))
}

/// Encodes an 8-bit PNG into any writer.
pub fn write_to<W: std::io::Write>(
    out: W,
    w: usize,
    h: usize,
    color: png::ColorType,
    bytes: &[u8],
) -> Result<(), String> {
    let mut enc = png::Encoder::new(out, w as u32, h as u32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(bytes).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}
