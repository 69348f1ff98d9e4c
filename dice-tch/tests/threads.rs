//! The CPU path runs large passes on LibTorch's intra-op pool (`at::parallel_for`): loss and
//! gradient have the same bits for 1, 2 and 4 threads (`tch::set_num_threads`), for dense
//! probabilities and for softmax logits against a label map, in f32 and f64.

use dice_tch::DiceLoss;
use tch::{Device, Kind, Tensor};

/// Loss and input gradient as bit patterns, on `threads` intra-op threads.
fn run(threads: i32, input: &Tensor, target: &Tensor, loss: &DiceLoss) -> (Vec<u64>, Vec<u64>) {
    tch::set_num_threads(threads);
    let x = input.detach().set_requires_grad(true);
    let l = loss.forward(&x, target).unwrap();
    l.backward();
    let bits = |t: &Tensor| -> Vec<u64> {
        let t = t.to_kind(Kind::Double).flatten(0, -1);
        Vec::<f64>::try_from(&t)
            .unwrap()
            .into_iter()
            .map(f64::to_bits)
            .collect()
    };
    (bits(&l.reshape([-1])), bits(&x.grad()))
}

#[test]
fn same_bits_on_any_number_of_intra_op_threads() {
    let before = tch::get_num_threads();
    tch::manual_seed(3);
    for kind in [Kind::Float, Kind::Double] {
        // 2²² elements: above the threshold where passes go parallel.
        let p = Tensor::rand([1, 4, 1 << 20], (kind, Device::Cpu));
        let g = Tensor::rand([1, 4, 1 << 20], (kind, Device::Cpu))
            .lt(0.5)
            .to_kind(kind);
        let dense = DiceLoss::new().squared_pred(true);
        let z = Tensor::randn([2, 4, 1 << 19], (kind, Device::Cpu)) * 3.0;
        let labels = Tensor::randint(4, [2, 1, 1 << 19], (Kind::Uint8, Device::Cpu));
        let softmax = DiceLoss::new().softmax(true).batch(true);
        let one = (run(1, &p, &g, &dense), run(1, &z, &labels, &softmax));
        for t in [2, 4] {
            let many = (run(t, &p, &g, &dense), run(t, &z, &labels, &softmax));
            assert!(one == many, "{kind:?}: {t} threads differ from one");
        }
    }
    tch::set_num_threads(before);
}
