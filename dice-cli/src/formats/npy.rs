//! NumPy `.npy` arrays (format versions 1–3, C order, either byte order).

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use super::{product, read_data, read_exact, Elem};
use crate::volume::{Data, Volume};

/// Reads an `.npy` file.
pub fn read(path: &Path) -> Result<Volume, String> {
    let file = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    read_from(&mut BufReader::with_capacity(1 << 20, file))
}

/// Reads an `.npy` stream.
pub fn read_from<R: Read>(r: &mut R) -> Result<Volume, String> {
    let mut magic = [0u8; 8];
    read_exact(r, &mut magic).map_err(|e| format!("not a .npy file ({e})"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (bad magic)".into());
    }
    let header_len = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            read_exact(r, &mut b)?;
            u16::from_le_bytes(b) as usize
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            read_exact(r, &mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(format!(".npy format version {v} is not supported")),
    };
    if header_len > 1 << 20 {
        return Err(format!("header of {header_len} bytes is not plausible"));
    }
    let mut header = vec![0u8; header_len];
    read_exact(r, &mut header)?;
    let header = String::from_utf8_lossy(&header);
    let field = |key: &str| -> Result<String, String> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| format!("header has no '{key}'"))?;
        let rest = &header[at + key.len() + 2..];
        let rest = rest
            .trim_start()
            .strip_prefix(':')
            .ok_or("malformed header")?
            .trim_start();
        let end = if rest.starts_with('(') {
            rest.find(')').map(|i| i + 1)
        } else {
            rest.find([',', '}'])
        };
        Ok(rest[..end.ok_or("malformed header")?].trim().to_string())
    };
    let descr = field("descr")?
        .trim_matches(|c| c == '\'' || c == '"')
        .to_string();
    if field("fortran_order")? != "False" {
        return Err(
            "Fortran-ordered arrays are not supported: save with np.ascontiguousarray".into(),
        );
    }
    let shape_text = field("shape")?;
    let shape: Vec<usize> = shape_text
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| format!("bad shape {shape_text}"))
        })
        .collect::<Result<_, _>>()?;
    let n = product(&shape)?;
    let (order, kind) = descr.split_at(1);
    let le = match order {
        "<" | "|" | "=" => true,
        ">" => false,
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    let elem = match kind {
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
        _ => {
            return Err(format!(
                "dtype {descr} is not supported (integer, bool or float)"
            ))
        }
    };
    let data = read_data(r, n, elem, le)?;
    Ok(Volume {
        shape,
        spacing: None,
        data,
        fastest_first: false,
    })
}

/// Writes a volume as `.npy` (format 1.0, little-endian, C order).
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
    let dims: Vec<String> = v.shape.iter().map(|d| d.to_string()).collect();
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
    super::nifti::append_data(&mut out, &v.data);
    File::create(path)
        .and_then(|mut f| f.write_all(&out))
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}
