//! NumPy `.npy` arrays (format versions 1–3), either byte order, C or Fortran order.
//!
//! A C-ordered array of shape `(a, b, c)` has its last axis fastest, so its voxel sizes are
//! `c × b × a`: as SimpleITK's `GetImageFromArray` reads it. A Fortran-ordered one (what
//! `np.save` writes for nibabel's `get_fdata()` arrays) has its first axis fastest: `a × b × c`,
//! as NIfTI stores it. Either way the bytes are compared as stored, which is what both
//! libraries' users mean. Messages name voxels by their NumPy index.

use crate::names::ShowPath;
use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::{product, Elem, Source};
use crate::volume::{Data, IndexStyle, Volume};

/// One value of the header dictionary.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<u64>),
}

/// Parses the header dictionary: `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_dict(text: &str) -> Result<Vec<(String, Value)>, String> {
    let b = text.as_bytes();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] as char).is_ascii_whitespace() {
            *i += 1;
        }
    };
    let string = |i: &mut usize| -> Result<String, String> {
        let q = b[*i];
        let start = *i + 1;
        let end = b[start..]
            .iter()
            .position(|&c| c == q)
            .ok_or("unterminated string in the .npy header")?;
        *i = start + end + 1;
        Ok(text[start..start + end].to_string())
    };
    ws(&mut i);
    if b.get(i) != Some(&b'{') {
        return Err("the .npy header is not a dictionary".into());
    }
    i += 1;
    let mut out = Vec::new();
    loop {
        ws(&mut i);
        match b.get(i) {
            Some(b'}') => break,
            Some(b'\'' | b'"') => {}
            _ => return Err("malformed .npy header (expected a quoted key)".into()),
        }
        let key = string(&mut i)?;
        ws(&mut i);
        if b.get(i) != Some(&b':') {
            return Err(format!("malformed .npy header after key {key:?}"));
        }
        i += 1;
        ws(&mut i);
        let value = match b.get(i) {
            Some(b'\'' | b'"') => Value::Str(string(&mut i)?),
            Some(b'(') => {
                let end = b[i..]
                    .iter()
                    .position(|&c| c == b')')
                    .ok_or("unterminated shape in the .npy header")?;
                let inner = &text[i + 1..i + end];
                i += end + 1;
                let dims = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| s.trim_end_matches('L').parse::<u64>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("shape ({inner}) is not a tuple of sizes"))?;
                Value::Tuple(dims)
            }
            _ if text[i..].starts_with("True") => {
                i += 4;
                Value::Bool(true)
            }
            _ if text[i..].starts_with("False") => {
                i += 5;
                Value::Bool(false)
            }
            _ => return Err(format!("malformed .npy header value for {key:?}")),
        };
        out.push((key, value));
        ws(&mut i);
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => return Err("malformed .npy header (expected , or })".into()),
        }
    }
    Ok(out)
}

fn elem(descr: &str) -> Result<(Elem, bool), String> {
    let bytes = descr.as_bytes();
    if bytes.len() < 2 {
        return Err(format!("dtype {descr:?} is not a NumPy type string"));
    }
    let le = match bytes[0] {
        b'<' | b'|' | b'=' => true,
        b'>' => false,
        _ => return Err(format!("dtype {descr:?} has no byte order")),
    };
    let e = match &descr[1..] {
        "u1" | "b1" => Elem::U8,
        "i1" => Elem::I8,
        "i2" => Elem::I16,
        "u2" => Elem::U16,
        "i4" => Elem::I32,
        "u4" => Elem::U32,
        "i8" => Elem::I64,
        "u8" => Elem::U64,
        "f4" => Elem::F32,
        "f8" => Elem::F64,
        "f2" => return Err("dtype float16 is not supported: save as float32".into()),
        k => {
            return Err(format!(
                "dtype {descr:?} ({k}) is not supported: integer, bool or float32/64 voxels only"
            ))
        }
    };
    Ok((e, le))
}

/// Reads an `.npy` file.
pub fn read(path: &Path) -> Result<Volume, String> {
    let mut src = Source::open(path, false)?;
    let mut magic = [0u8; 8];
    src.exact(&mut magic)
        .map_err(|e| format!("not a .npy file ({e})"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let header_len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            src.exact(&mut b)?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            src.exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    if header_len > 1 << 20 {
        return Err(format!(
            "a .npy header of {header_len} bytes is not plausible"
        ));
    }
    let mut header = vec![0u8; header_len];
    src.exact(&mut header)?;
    let header = std::str::from_utf8(&header)
        .ok()
        .filter(|h| h.is_ascii() || magic[6] == 3)
        .ok_or("the .npy header is not text")?;
    let dict = parse_dict(header)?;
    let get = |k: &str| dict.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Value::Str(s)) => s.as_str(),
        Some(_) => return Err("the .npy dtype is structured: one number per voxel only".into()),
        None => return Err("the .npy header has no 'descr'".into()),
    };
    let fortran = match get("fortran_order") {
        Some(Value::Bool(b)) => *b,
        _ => return Err("the .npy header has no boolean 'fortran_order'".into()),
    };
    let shape: Vec<usize> = match get("shape") {
        Some(Value::Tuple(t)) => t
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("size {d} is too large")))
            .collect::<Result<_, _>>()?,
        _ => return Err("the .npy header has no 'shape' tuple".into()),
    };
    let (elem, le) = elem(descr)?;
    let n = product(&shape)?;
    if n == 0 {
        return Err(format!("the array {shape:?} holds no element"));
    }
    let data = src.voxels(n, elem, le)?;
    let extra = src.finish()?;
    let (dims, style) = if fortran {
        (shape.clone(), IndexStyle::Voxel)
    } else {
        (shape.iter().rev().copied().collect(), IndexStyle::NumpyC)
    };
    let mut v = Volume::new(if dims.is_empty() { vec![1] } else { dims }, data);
    v.index_style = style;
    if fortran {
        v.notes
            .push("Fortran-ordered array: its first axis is the fastest, as in NIfTI".into());
    }
    if extra > 0 {
        v.notes
            .push(format!("{extra} bytes after the array were ignored"));
    }
    Ok(v)
}

/// Writes a volume as `.npy` (format 1.0, little-endian, C order: shape slowest first).
pub fn write(path: &Path, v: &Volume) -> Result<(), String> {
    let descr = match v.data {
        Data::U8(_) => "|u1",
        Data::U16(_) => "<u2",
        Data::U32(_) => "<u4",
        Data::I32(_) => "<i4",
        Data::I64(_) => "<i8",
        Data::F32(_) => "<f4",
        Data::F64(_) => "<f8",
    };
    let dims: Vec<String> = v.dims.iter().rev().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&super::data_bytes(&v.data));
    File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .map_err(|e| format!("{}: cannot write: {e}", path.shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_dictionaries() {
        let d = parse_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!(d[2], ("shape".into(), Value::Tuple(vec![3, 4])));
        assert!(parse_dict("{'descr': '").is_err());
        assert!(parse_dict("{'descr': 'é', 'x").is_err());
        assert!(elem("").is_err());
        assert!(elem("é").is_err());
        assert!(elem("<").is_err());
    }
}
