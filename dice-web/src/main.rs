//! The program the browser page (`web/`) runs, built for `wasm32-wasip1` by `scripts/web.sh`:
//! `dice-web eval …` is `dice eval …` (the same driver, readers and metrics), and
//! `dice-web slices REF` prints how many slices the page's overlay can show (the reference's
//! slowest axis, the one `--slice` counts along) as `{"slices": N}`. No math here.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "slices") {
        let Some(path) = args.get(2) else {
            eprintln!("dice-web: usage: dice-web slices REF");
            return ExitCode::from(2);
        };
        return match dice_cli::formats::read(std::path::Path::new(path)) {
            Ok(v) => match v.slice_2d(Some(0)) {
                Ok((w, h, _)) => {
                    println!("{{\"slices\": {}}}", v.voxels() / (w * h).max(1));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dice-web: {e}");
                    ExitCode::from(1)
                }
            },
            Err(e) => {
                eprintln!("dice-web: {e}");
                ExitCode::from(1)
            }
        };
    }
    ExitCode::from(dice_cli::cli::main_from(args))
}
