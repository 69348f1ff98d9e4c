//! The browser evaluator, end to end: `scripts/web.sh` builds the page's wasm, headless
//! Chromium opens `web/index.html` from disk with the sample pair, and the page's CSV equals
//! `dice eval`'s on this host (every metric column, to the byte); no page error, an overlay.
//! Skips (saying so) without Chromium or the wasm32-wasip1 target, unless
//! DICE_REQUIRE_CHROMIUM=1 (the README's test command).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn page_evaluates_the_sample_pair_as_dice_eval_does() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let chromium = std::env::var_os("DICE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or("chromium".into());
    if Command::new(&chromium).arg("--version").output().is_err() {
        assert!(
            std::env::var("DICE_REQUIRE_CHROMIUM").is_err(),
            "DICE_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        println!("SKIPPED page_evaluates_the_sample_pair_as_dice_eval_does: no chromium");
        return;
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).unwrap();
    let st = Command::new(root.join("scripts/web.sh"))
        .arg(tmp.join("target"))
        .status()
        .unwrap();
    assert!(st.success(), "scripts/web.sh failed");
    let site = tmp.join("site");
    std::fs::create_dir_all(&site).unwrap();
    for f in ["index.html", "app.js", "wasi.js", "dice-wasm.js"] {
        std::fs::copy(root.join("web").join(f), site.join(f)).unwrap();
    }
    let sample = root.join("dice-cli/data/sample");
    let (p, g) = (
        std::fs::read(sample.join("pred.nii.gz")).unwrap(),
        std::fs::read(sample.join("gt.nii.gz")).unwrap(),
    );
    std::fs::write(
        site.join("t.js"),
        format!(
            "var DICE_TEST = {{pred: [{{name: \"pred.nii.gz\", base64: \"{}\"}}], ref: [{{name: \"gt.nii.gz\", base64: \"{}\"}}], tolerance: \"1\"}};",
            b64(&p),
            b64(&g)
        ),
    )
    .unwrap();
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=60000",
            "--dump-dom",
        ])
        .arg(format!("file://{}/index.html?test=t.js", site.display()))
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-done=\"1\""),
        "the page did not finish:\n{dom}"
    );
    assert!(
        !dom.contains("data-errors"),
        "the page reported errors:\n{dom}"
    );
    assert!(
        dom.contains("id=\"overlay\"") && dom.contains("src=\"blob:"),
        "no overlay"
    );
    let csv = dom
        .split("id=\"csv-out\">")
        .nth(1)
        .unwrap()
        .split("</pre>")
        .next()
        .unwrap();
    let native = Command::new(env!("CARGO_BIN_EXE_dice-web"))
        .arg("eval")
        .arg(sample.join("pred.nii.gz"))
        .arg(sample.join("gt.nii.gz"))
        .args([
            "--metrics",
            "dice,iou,hd95,nsd",
            "--tolerance",
            "1",
            "--format",
            "csv",
        ])
        .output()
        .unwrap();
    let native = String::from_utf8(native.stdout).unwrap();
    let rows = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| l.split_once(',').map_or(l, |x| x.1).to_string())
            .collect()
    };
    assert_eq!(
        rows(csv),
        rows(&native),
        "the page's CSV differs from dice eval's"
    );
    assert!(rows(&native).len() >= 4);
}
