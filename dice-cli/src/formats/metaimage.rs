//! MetaImage (`.mha` with its data after the header, `.mhd` with `ElementDataFile` naming a
//! `.raw`/`.zraw` file), as ITK and SimpleITK write it: binary data, raw or zlib-compressed
//! (`CompressedData = True`), either byte order. Geometry from `TransformMatrix` (each group
//! of `NDims` values is one voxel axis's direction, as ITK reads it), `Offset` and
//! `ElementSpacing`, in ITK's LPS frame (converted to RAS).

use std::io::{BufReader, Read};
use std::path::Path;

use super::{input, product, Access, Elem, Source};
use crate::geometry::Geometry;
use crate::names::ShowPath;
use crate::volume::Volume;

fn elem(t: &str) -> Result<Elem, String> {
    Ok(match t {
        "MET_UCHAR" => Elem::U8,
        "MET_CHAR" => Elem::I8,
        "MET_SHORT" => Elem::I16,
        "MET_USHORT" => Elem::U16,
        "MET_INT" | "MET_LONG" => Elem::I32,
        "MET_UINT" | "MET_ULONG" => Elem::U32,
        "MET_LONG_LONG" => Elem::I64,
        "MET_ULONG_LONG" => Elem::U64,
        "MET_FLOAT" => Elem::F32,
        "MET_DOUBLE" => Elem::F64,
        other if other.ends_with("_ARRAY") => {
            return Err(format!(
                "MetaImage ElementType {other} (vector voxels) is not supported: a segmentation \
                 has one value per voxel"
            ))
        }
        other => return Err(format!("MetaImage ElementType {other:?} is not supported")),
    })
}

fn numbers(s: &str, what: &str) -> Result<Vec<f64>, String> {
    s.split_whitespace()
        .map(|x| {
            x.parse::<f64>()
                .map_err(|_| format!("MetaImage {what} {s:?} is not a list of numbers"))
        })
        .collect()
}

fn boolean(s: &str) -> bool {
    matches!(s.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
}

/// Reads a `.mha` or `.mhd` file; a detached data file is opened under `access`.
pub fn read(path: &Path, access: Access) -> Result<Volume, String> {
    let (file, _) = super::input::open_regular(path)?;
    let mut lines = super::HeaderLines::new(BufReader::new(file), "MetaImage");
    let mut fields: Vec<(String, String)> = Vec::new();
    while let Some(line) = lines.next_line()? {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| format!("malformed MetaImage header line {text:?}"))?;
        let key = key.trim().to_string();
        let value = value.trim().to_string();
        let last = key == "ElementDataFile";
        fields.push((key, value));
        if last {
            break;
        }
    }
    let get = |k: &str| {
        fields
            .iter()
            .find(|(f, _)| f.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    };
    let need = |k: &str| get(k).ok_or_else(|| format!("MetaImage header has no {k}"));
    if fields.is_empty() {
        return Err("not a MetaImage file (empty header)".into());
    }
    let dims = super::header_sizes(
        "MetaImage",
        "NDims",
        need("NDims")?,
        8,
        "DimSize",
        need("DimSize")?,
    )?;
    let ndim = dims.len();
    let elem = elem(need("ElementType")?)?;
    if let Some(c) = get("ElementNumberOfChannels") {
        if c.trim() != "1" {
            return Err(format!(
                "MetaImage with {c} channels per voxel: a segmentation has one value per voxel"
            ));
        }
    }
    if get("BinaryData").is_some_and(|b| !boolean(b)) {
        return Err("MetaImage with text data (BinaryData = False) is not supported".into());
    }
    let msb = get("BinaryDataByteOrderMSB")
        .or_else(|| get("ElementByteOrderMSB"))
        .is_some_and(boolean);
    let compressed = get("CompressedData").is_some_and(boolean);

    // Geometry (LPS).
    let mut notes = Vec::new();
    let sd = ndim.min(3);
    let spacing = match get("ElementSpacing").or_else(|| get("ElementSize")) {
        Some(s) => numbers(s, "ElementSpacing")?,
        None => vec![1.0; ndim],
    };
    let origin = match get("Offset")
        .or_else(|| get("Position"))
        .or_else(|| get("Origin"))
    {
        Some(s) => numbers(s, "Offset")?,
        None => vec![0.0; ndim],
    };
    let matrix = match get("TransformMatrix")
        .or_else(|| get("Rotation"))
        .or_else(|| get("Orientation"))
    {
        Some(s) => numbers(s, "TransformMatrix")?,
        None => (0..ndim * ndim)
            .map(|i| if i / ndim == i % ndim { 1.0 } else { 0.0 })
            .collect(),
    };
    if matrix.len() != ndim * ndim || spacing.len() < sd || origin.len() < sd {
        return Err(
            "MetaImage TransformMatrix, ElementSpacing or Offset has the wrong length".into(),
        );
    }
    let mut affine = [[0.0; 4]; 3];
    for j in 0..3 {
        for i in 0..3 {
            affine[i][j] = if j < sd && i < sd {
                // Axis j's direction is the j-th group of NDims values.
                matrix[j * ndim + i] * spacing[j]
            } else if i == j {
                1.0
            } else {
                0.0
            };
        }
    }
    for (i, row) in affine.iter_mut().enumerate().take(sd) {
        row[3] = origin[i];
    }
    let g = Geometry::from_lps(affine, "MetaImage TransformMatrix");
    let geometry = if g.is_valid() {
        Some(g)
    } else {
        notes.push(
            "MetaImage TransformMatrix and ElementSpacing do not form a valid affine: no geometry"
                .into(),
        );
        None
    };

    // Data.
    let n = product(&dims)?;
    let data_file = need("ElementDataFile")?;
    let header_size: i64 = match get("HeaderSize") {
        None => 0,
        Some(h) => h
            .trim()
            .parse()
            .map_err(|_| format!("MetaImage HeaderSize {h:?} is not a number of bytes"))?,
    };
    if header_size < -1 {
        return Err(format!("MetaImage HeaderSize {header_size} is not valid"));
    }
    let (file, len, data_path, offset) = match data_file {
        "LOCAL" | "Local" | "local" => {
            let consumed = lines.consumed() as u64;
            drop(lines);
            let (f, len) = super::input::open_regular(path)?;
            (f, len, None, consumed)
        }
        f if f.starts_with("LIST") || f.split_whitespace().count() > 1 => {
            return Err(format!(
                "MetaImage ElementDataFile {f:?} (a list or pattern of files) is not supported"
            ))
        }
        f => {
            let (file, len, p) = input::open_data(path, "ElementDataFile", f, access)?;
            let offset = if header_size == -1 {
                u64::MAX
            } else {
                header_size as u64
            };
            (file, len, Some(p), offset)
        }
    };
    // Errors about the data name the data file, never quote its bytes.
    let at = |e: String| match &data_path {
        Some(p) => format!("{}: {e}", p.shown()),
        None => e,
    };
    let offset = if offset == u64::MAX {
        // HeaderSize = -1: the data are the file's last bytes.
        let bytes = n as u64 * elem.size() as u64;
        len.checked_sub(bytes)
            .ok_or_else(|| at(super::TRUNCATED.to_string()))?
    } else {
        offset
    };
    if offset > len {
        return Err(at(super::TRUNCATED.into()));
    }
    let mut raw = BufReader::new(file);
    std::io::copy(&mut (&mut raw).take(offset), &mut std::io::sink())
        .map_err(|e| at(super::read_error(&e)))?;
    let mut src = if compressed {
        Source {
            reader: Box::new(BufReader::new(flate2::read::ZlibDecoder::new(raw))),
            remaining: super::Avail::Deflate(len - offset),
        }
    } else {
        Source {
            reader: Box::new(raw),
            remaining: super::Avail::Raw(len - offset),
        }
    };
    let data = src.voxels(n, elem, !msb).map_err(at)?;
    let extra = src.finish().map_err(at)?;
    if extra > 0 {
        notes.push(format!("{extra} bytes after the voxel data were ignored"));
    }
    let mut v = Volume::new(dims, data);
    v.geometry = geometry;
    v.notes = notes;
    Ok(v)
}
