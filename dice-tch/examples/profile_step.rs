//! Where a forward+backward step of the adapter spends its time at a given size (one thread).
//! Run: `scripts/with-torch.sh cargo run --release -p dice-tch --example profile_step -- 134217728`
use std::time::Instant;

use dice_tch::DiceLoss;
use tch::{Device, Kind, Tensor};

fn main() {
    let n: i64 = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 27);
    tch::set_num_threads(1);
    tch::manual_seed(0);
    let p = Tensor::rand([1, 4, n / 4], (Kind::Float, Device::Cpu));
    let g = Tensor::rand([1, 4, n / 4], (Kind::Float, Device::Cpu))
        .lt(0.5)
        .to_kind(Kind::Float);
    for round in 0..3 {
        let t0 = Instant::now();
        let x = p.detach().set_requires_grad(true);
        let loss = DiceLoss::new().forward(&x, &g).unwrap();
        let t1 = Instant::now();
        loss.backward();
        let t2 = Instant::now();
        let grad = x.grad();
        drop(grad);
        drop(x);
        drop(loss);
        let t3 = Instant::now();
        let mut empty = Tensor::empty([1, 4, n / 4], (Kind::Float, Device::Cpu));
        let _ = empty.fill_(0.0);
        let t4 = Instant::now();
        println!(
            "round {round}: forward {:.0} ms, backward {:.0} ms, drop {:.0} ms; allocate+touch one tensor {:.0} ms",
            (t1 - t0).as_secs_f64() * 1e3,
            (t2 - t1).as_secs_f64() * 1e3,
            (t3 - t2).as_secs_f64() * 1e3,
            (t4 - t3).as_secs_f64() * 1e3
        );
    }
}
