use dice_tch::DiceLoss;
use tch::{Device, Kind, Tensor};

#[test]
fn forward_backward_smoke() {
    let p = Tensor::from_slice(&[0.9f32, 0.8, 0.3, 0.1])
        .view([1, 1, 4])
        .set_requires_grad(true);
    let g = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0]).view([1, 1, 4]);
    let loss = DiceLoss::new()
        .smooth_nr(0.0)
        .smooth_dr(0.0)
        .forward(&p, &g)
        .unwrap();
    let v = loss.double_value(&[]);
    assert!((v - (1.0 - 3.4 / 4.1)).abs() < 1e-6, "{v}");
    loss.backward();
    let grad = p.grad();
    let want = (3.4 - 2.0 * 4.1) / (4.1 * 4.1);
    assert!((grad.double_value(&[0, 0, 0]) - want).abs() < 1e-6);
    println!("cuda available: {}", tch::Cuda::is_available());
    let _ = (Device::Cpu, Kind::Float);
}
