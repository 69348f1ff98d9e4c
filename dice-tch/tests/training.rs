//! `backward()` really trains: a small convolutional model's soft Dice loss falls and the exact
//! hard Dice of a held-out set rises, on generated shapes.

mod common;

use dice_tch::{DiceLoss, DiceMetric};
use tch::nn::{self, Module, OptimizerConfig};
use tch::Device;

#[test]
fn a_small_model_learns_to_segment() {
    tch::manual_seed(0);
    tch::set_num_threads(2);
    let mut rng = 0x5EED_u64;
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let conv = |i, o, k, name: &str| {
        nn::conv2d(
            &root / name,
            i,
            o,
            k,
            nn::ConvConfig {
                padding: k / 2,
                ..Default::default()
            },
        )
    };
    let model = nn::seq()
        .add(conv(1, 16, 3, "c1"))
        .add_fn(|x| x.relu())
        .add(conv(16, 16, 3, "c2"))
        .add_fn(|x| x.relu())
        .add(conv(16, 3, 1, "c3"));
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    let loss_fn = DiceLoss::new().softmax(true).include_background(false);
    let metric = DiceMetric::new().num_classes(3).include_background(false);
    let (val_x, val_y) = common::shapes::batch(32, 32, &mut rng);
    let hard = |m: &nn::Sequential| {
        let logits = tch::no_grad(|| m.forward(&val_x));
        metric.compute(&logits, &val_y).unwrap().mean.mean.unwrap()
    };
    let hard_before = hard(&model);
    let mut losses = Vec::new();
    for _ in 0..250 {
        let (x, y) = common::shapes::batch(16, 32, &mut rng);
        let loss = loss_fn.forward(&model.forward(&x), &y).unwrap();
        opt.backward_step(&loss);
        losses.push(loss.double_value(&[]));
    }
    let hard_after = hard(&model);
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    println!(
        "soft loss {first:.3} -> {last:.3}; held-out hard Dice {hard_before:.3} -> {hard_after:.3}"
    );
    assert!(last < first - 0.3, "soft loss {first} -> {last}");
    assert!(
        hard_after > 0.8 && hard_after > hard_before + 0.3,
        "hard Dice {hard_before} -> {hard_after}"
    );
}
