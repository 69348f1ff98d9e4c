//! `dice eval` against SimpleITK and NumPy on real files (nilearn's MNI152 tissue maps saved
//! by nibabel and SimpleITK in NIfTI-1/2, big-endian, reoriented, NRRD and MetaImage form):
//! `tests/agreement.py`, run with the Python environment `run-tests.sh` provisions
//! (`DICE_EVAL_REF_PYTHON`). Without it the test says it did not run, and fails when
//! `DICE_REQUIRE_EVAL_REF=1` (as the README's test command sets).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn agrees_with_simpleitk_and_numpy_on_real_files() {
    let python = std::env::var_os("DICE_EVAL_REF_PYTHON")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            let p = PathBuf::from(home).join(".cache/dice/eval-ref/bin/python");
            p.exists().then_some(p)
        });
    let Some(python) = python else {
        assert!(
            std::env::var_os("DICE_REQUIRE_EVAL_REF").is_none(),
            "DICE_REQUIRE_EVAL_REF is set but no reference Python environment was found"
        );
        eprintln!("NOT RUN: no reference Python environment (run ./run-tests.sh to provision it)");
        return;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/agreement.py");
    let work = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("agreement");
    let out = Command::new(&python)
        .arg(&script)
        .arg(env!("CARGO_BIN_EXE_dice"))
        .arg(&work)
        .output()
        .expect("the reference Python runs");
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "disagreement with SimpleITK/NumPy:\n{text}"
    );
    assert!(text.contains("6 pairs agree"), "{text}");
}
