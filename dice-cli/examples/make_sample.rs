//! Writes the sample pair to `dice-cli/data/sample/{pred,gt}.nii.gz` (see `dice_cli::sample`).
//! Run: `cargo run -p dice-cli --example make_sample`

fn main() -> Result<(), String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let (pred, gt) = dice_cli::sample::pair();
    dice_cli::formats::nifti::write(&dir.join("pred.nii.gz"), &pred)?;
    dice_cli::formats::nifti::write(&dir.join("gt.nii.gz"), &gt)?;
    println!("wrote {}/{{pred,gt}}.nii.gz", dir.display());
    Ok(())
}
