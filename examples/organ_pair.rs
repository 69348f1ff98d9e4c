//! Writes the organ-like label pair of the surface bench (`dice_suite::organ_volumes`) as
//! NIfTI files, for timing other tools on the same data (`benches/surface_peers.py`); with
//! `--network-like` the prediction is `dice_suite::network_like_organ_volumes`' (boundary jitter,
//! false-positive islands, a hole), written as `pred_net_N.nii.gz`.
//! Run: `cargo run --release --example organ_pair -- 256 /tmp/organs [--network-like]`

use dice_cli::formats::nifti;
use dice_cli::geometry::Geometry;
use dice_cli::{Data, Volume};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(256);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "/tmp/organs".into()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let network_like = args.any(|a| a == "--network-like");
    let (p, g) = if network_like {
        dice_suite::network_like_organ_volumes(n, 1)
    } else {
        dice_suite::organ_volumes(n)
    };
    let pred_name = if network_like { "pred_net" } else { "pred" };
    for (name, d) in [(pred_name, p), ("gt", g)] {
        let mut v = Volume::new(vec![n, n, n], Data::U8(d));
        v.geometry = Some(Geometry::diagonal([1.0; 3], "pixdim"));
        nifti::write(&dir.join(format!("{name}_{n}.nii.gz")), &v)?;
    }
    println!("wrote {}/{{{pred_name},gt}}_{n}.nii.gz", dir.display());
    Ok(())
}
