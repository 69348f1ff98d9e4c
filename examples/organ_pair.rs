//! Writes the organ-like label pair of the surface bench (`dice_suite::organ_volumes`) as
//! NIfTI files, for timing other tools on the same data (`benches/surface_peers.py`).
//! Run: `cargo run --release --example organ_pair -- 256 /tmp/organs`

use dice_cli::formats::nifti;
use dice_cli::geometry::Geometry;
use dice_cli::{Data, Volume};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/organs".into()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (p, g) = dice_suite::organ_volumes(n);
    for (name, d) in [("pred", p), ("gt", g)] {
        let mut v = Volume::new(vec![n, n, n], Data::U8(d));
        v.geometry = Some(Geometry::diagonal([1.0; 3], "pixdim"));
        nifti::write(&dir.join(format!("{name}_{n}.nii.gz")), &v)?;
    }
    println!("wrote {}/{{pred,gt}}_{n}.nii.gz", dir.display());
    Ok(())
}
