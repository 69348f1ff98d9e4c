//! Synthetic 2-D segmentation data for the training test and the `train_unet` example: a noisy
//! image with a bright disc (class 1) and a dimmer square (class 2) on a dark background.

use tch::{Device, Kind, Tensor};

/// A batch of `n` images `[n, 1, size, size]` and label maps `[n, size, size]` (0, 1, 2).
pub fn batch(n: i64, size: i64, rng: &mut u64) -> (Tensor, Tensor) {
    let mut next = move || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        (*rng >> 11) as f64 / (1u64 << 53) as f64
    };
    let s = size as f64;
    let mut labels = vec![0i64; (n * size * size) as usize];
    for b in 0..n as usize {
        let (cx, cy, r) = (
            s * (0.25 + 0.5 * next()),
            s * (0.25 + 0.5 * next()),
            s * (0.08 + 0.12 * next()),
        );
        let (qx, qy, h) = (
            s * (0.2 + 0.6 * next()),
            s * (0.2 + 0.6 * next()),
            s * (0.06 + 0.1 * next()),
        );
        for y in 0..size as usize {
            for x in 0..size as usize {
                let (fx, fy) = (x as f64 + 0.5, y as f64 + 0.5);
                let i = (b * size as usize + y) * size as usize + x;
                if (fx - cx).powi(2) + (fy - cy).powi(2) <= r * r {
                    labels[i] = 1;
                }
                if (fx - qx).abs() <= h && (fy - qy).abs() <= h {
                    labels[i] = 2;
                }
            }
        }
    }
    let labels = Tensor::from_slice(&labels).view([n, size, size]);
    let intensity = Tensor::from_slice(&[0.0f32, 1.0, 0.5]);
    let clean = intensity
        .index_select(0, &labels.view([-1]))
        .view([n, 1, size, size]);
    let noise = Tensor::randn([n, 1, size, size], (Kind::Float, Device::Cpu)) * 0.25;
    (clean + noise, labels)
}
