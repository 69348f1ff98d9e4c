//! Train with the smooth loss, report the exact score.
//!
//! A small U-Net learns to segment generated 2-D shapes (a bright disc and a dim square in
//! noise) on CPU. Each epoch prints the soft Dice loss it trains on and the exact hard Dice of
//! a held-out set, per class, counted in integers with no smoothing.
//!
//! Run:
//! `scripts/with-torch.sh cargo run --release -p dice-tch --example train_unet`
//! (`scripts/with-torch.sh` provisions PyTorch 2.13.0 from PyPI once, if absent).

#[allow(dead_code)]
#[path = "../tests/common/shapes.rs"]
mod shapes;

use std::time::Instant;

use dice_tch::{DiceLoss, DiceMetric};
use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Tensor};

/// Two 3×3 convolutions with ReLU.
fn block(p: nn::Path, i: i64, o: i64) -> nn::Sequential {
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    nn::seq()
        .add(nn::conv2d(&p / "a", i, o, 3, cfg))
        .add_fn(|x| x.relu())
        .add(nn::conv2d(&p / "b", o, o, 3, cfg))
        .add_fn(|x| x.relu())
}

/// A two-level U-Net: 16 and 32 channels, a 64-channel bottleneck, skip connections.
#[derive(Debug)]
struct UNet {
    enc1: nn::Sequential,
    enc2: nn::Sequential,
    mid: nn::Sequential,
    up2: nn::Conv2D,
    dec2: nn::Sequential,
    up1: nn::Conv2D,
    dec1: nn::Sequential,
    head: nn::Conv2D,
}

impl UNet {
    fn new(p: &nn::Path, classes: i64) -> UNet {
        let one = nn::ConvConfig::default();
        UNet {
            enc1: block(p / "enc1", 1, 16),
            enc2: block(p / "enc2", 16, 32),
            mid: block(p / "mid", 32, 64),
            up2: nn::conv2d(p / "up2", 64, 32, 1, one),
            dec2: block(p / "dec2", 64, 32),
            up1: nn::conv2d(p / "up1", 32, 16, 1, one),
            dec1: block(p / "dec1", 32, 16),
            head: nn::conv2d(p / "head", 16, classes, 1, one),
        }
    }
}

impl Module for UNet {
    fn forward(&self, x: &Tensor) -> Tensor {
        let up = |t: &Tensor| t.upsample_nearest2d([t.size()[2] * 2, t.size()[3] * 2], None, None);
        let e1 = self.enc1.forward(x);
        let e2 = self.enc2.forward(&e1.max_pool2d_default(2));
        let m = self.mid.forward(&e2.max_pool2d_default(2));
        let d2 = self
            .dec2
            .forward(&Tensor::cat(&[up(&m).apply(&self.up2), e2], 1));
        let d1 = self
            .dec1
            .forward(&Tensor::cat(&[up(&d2).apply(&self.up1), e1], 1));
        d1.apply(&self.head)
    }
}

fn main() -> Result<(), tch::TchError> {
    tch::manual_seed(1);
    let (size, epochs, steps, batch) = (48, 8, 30, 16);
    let mut rng = 0xD1CE_u64;
    let vs = nn::VarStore::new(Device::Cpu);
    let net = UNet::new(&vs.root(), 3);
    let mut opt = nn::Adam::default().build(&vs, 3e-3)?;
    // MONAI's DiceLoss(softmax=True, to_onehot_y=True, include_background=False): the label map
    // goes in as it is, never expanded to one-hot.
    let loss_fn = DiceLoss::new().softmax(true).include_background(false);
    let metric = DiceMetric::new().num_classes(3).include_background(false);
    let (val_x, val_y) = shapes::batch(64, size, &mut rng);
    println!("U-Net on generated {size}x{size} shapes: class 1 = disc, class 2 = square; {steps} steps of {batch} per epoch");
    println!(
        "{:>5} {:>16} {:>16} {:>12} {:>12} {:>8}",
        "epoch", "train soft loss", "held-out soft", "hard disc", "hard square", "time"
    );
    let start = Instant::now();
    for epoch in 1..=epochs {
        let mut total = 0.0;
        for _ in 0..steps {
            let (x, y) = shapes::batch(batch, size, &mut rng);
            let loss = loss_fn.forward(&net.forward(&x), &y)?;
            opt.backward_step(&loss);
            total += loss.double_value(&[]);
        }
        let logits = tch::no_grad(|| net.forward(&val_x));
        let soft = loss_fn.forward(&logits, &val_y)?.double_value(&[]);
        let report = metric.compute(&logits, &val_y)?;
        let show = |c: usize| {
            report.per_class[c]
                .mean
                .map_or("undefined".to_string(), |m| format!("{m:.4}"))
        };
        println!(
            "{epoch:>5} {:>16.4} {:>16.4} {:>12} {:>12} {:>7.1}s",
            total / steps as f64,
            soft,
            show(1),
            show(2),
            start.elapsed().as_secs_f64()
        );
    }
    let report = metric.compute(&tch::no_grad(|| net.forward(&val_x)), &val_y)?;
    println!(
        "held-out hard Dice (exact, no smoothing): {:.4} over {} of {} (image, class) pairs",
        report.mean.mean.unwrap_or(f64::NAN),
        report.mean.defined,
        report.mean.total
    );
    Ok(())
}
