//! CUDA tensors run the ATen formulation on the device; it must equal the CPU kernels.
//! Without a CUDA device the test says it was skipped.

use dice_tch::{DiceCELoss, DiceFocalLoss, DiceLoss, GeneralizedDiceLoss, Reduction, TverskyLoss};
use tch::{Cuda, Device, Kind, Tensor};

#[test]
fn cuda_matches_cpu() {
    if !Cuda::is_available() {
        println!("SKIPPED cuda_matches_cpu: no CUDA device (the ATen path is tested on CPU with force_aten)");
        return;
    }
    let dev = Device::Cuda(0);
    tch::manual_seed(7);
    let logits = Tensor::randn([2, 4, 16, 16, 8], (Kind::Float, Device::Cpu));
    let labels = Tensor::randint(4, [2, 16, 16, 8], (Kind::Int64, Device::Cpu));
    let mask = Tensor::rand([2, 16, 16, 8], (Kind::Float, Device::Cpu)).gt(0.1);
    type Run = Box<dyn Fn(&Tensor, &Tensor, &Tensor) -> Tensor>;
    let runs: Vec<(&str, Run)> = vec![
        (
            "dice softmax",
            Box::new(|x, l, _| DiceLoss::new().softmax(true).forward(x, l).unwrap()),
        ),
        (
            "dice sigmoid batch none",
            Box::new(|x, l, _| {
                DiceLoss::new()
                    .sigmoid(true)
                    .batch(true)
                    .reduction(Reduction::None)
                    .forward(x, l)
                    .unwrap()
                    .sum(Kind::Float)
            }),
        ),
        (
            "tversky masked",
            Box::new(|x, l, m| {
                TverskyLoss::new(0.3, 0.7)
                    .softmax(true)
                    .include_background(false)
                    .forward_masked(x, l, m)
                    .unwrap()
            }),
        ),
        (
            "dice + cross-entropy, smoothed, weighted, masked",
            Box::new(|x, l, m| {
                DiceCELoss::new()
                    .softmax(true)
                    .weight(&[0.5, 1.0, 2.0, 1.5])
                    .label_smoothing(0.1)
                    .forward_masked(x, l, m)
                    .unwrap()
            }),
        ),
        (
            "dice (soft label) + focal",
            Box::new(|x, l, _| {
                DiceFocalLoss::new()
                    .sigmoid(true)
                    .soft_label(true)
                    .alpha(0.25)
                    .forward(x, l)
                    .unwrap()
            }),
        ),
        (
            "generalized",
            Box::new(|x, l, _| {
                GeneralizedDiceLoss::new()
                    .softmax(true)
                    .forward(x, l)
                    .unwrap()
            }),
        ),
    ];
    for (name, run) in runs {
        let xc = logits.detach().set_requires_grad(true);
        let lc = run(&xc, &labels, &mask);
        lc.backward();
        let xg = logits.to_device(dev).detach().set_requires_grad(true);
        let lg = run(&xg, &labels.to_device(dev), &mask.to_device(dev));
        assert_eq!(lg.device(), dev, "{name}: the loss stays on the device");
        lg.backward();
        let dv = (lg.to_device(Device::Cpu).double_value(&[]) - lc.double_value(&[])).abs();
        let dg = (xg.grad().to_device(Device::Cpu) - xc.grad())
            .abs()
            .max()
            .double_value(&[]);
        println!("{name}: |Δloss| = {dv:.2e}, max |Δgrad| = {dg:.2e}");
        assert!(dv < 1e-5 && dg < 1e-6, "{name}");
    }
    // Devices must match.
    let e = DiceLoss::new()
        .forward(&logits.to_device(dev).sigmoid(), &labels)
        .unwrap_err();
    assert!(e.to_string().contains("target is on"));
}
