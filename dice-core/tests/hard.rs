//! Hard metrics: exact counts against naive counting, every label type and kernel path, the
//! empty policies, metrics by hand, and hard = soft on binary inputs without smoothing.

use dice_core::hard::{self, Confusion, EmptyPolicy, EmptyValue, MeanValue, Metric};
use dice_core::{DiceError, Moment, Operand, Shape, SoftStats};
use proptest::prelude::*;

fn naive_labels(
    pred: &[i64],
    target: &[i64],
    labels: usize,
    ignore: Option<i64>,
) -> Vec<Confusion> {
    let mut out = vec![Confusion::default(); labels];
    for (&p, &t) in pred.iter().zip(target) {
        if Some(t) == ignore || Some(p) == ignore {
            continue;
        }
        for (l, o) in out.iter_mut().enumerate() {
            let (a, b) = (p == l as i64, t == l as i64);
            match (a, b) {
                (true, true) => o.tp += 1,
                (true, false) => o.fp += 1,
                (false, true) => o.fn_ += 1,
                (false, false) => o.tn += 1,
            }
        }
    }
    out
}

#[test]
fn metrics_by_hand() {
    let c = Confusion {
        tp: 6,
        fp: 2,
        fn_: 4,
        tn: 88,
    };
    let pol = EmptyPolicy::DEFAULT;
    assert_eq!(c.dice(pol), Some(12.0 / 18.0));
    assert_eq!(c.iou(pol), Some(6.0 / 12.0));
    assert_eq!(c.precision(pol), Some(6.0 / 8.0));
    assert_eq!(c.recall(pol), Some(6.0 / 10.0));
    assert_eq!(c.specificity(pol), Some(88.0 / 90.0));
    assert_eq!(c.volume_similarity(pol), Some(1.0 - 2.0 / 18.0));
    assert_eq!((c.reference(), c.prediction(), c.total()), (10, 8, 100));
    for m in Metric::ALL {
        assert_eq!(
            c.metric(m, pol),
            match m {
                Metric::Dice => c.dice(pol),
                Metric::Iou => c.iou(pol),
                Metric::Precision => c.precision(pol),
                Metric::Recall => c.recall(pol),
                Metric::Specificity => c.specificity(pol),
                Metric::VolumeSimilarity => c.volume_similarity(pol),
            }
        );
    }
}

#[test]
fn empty_policies() {
    let both = Confusion {
        tp: 0,
        fp: 0,
        fn_: 0,
        tn: 50,
    };
    let ref_empty = Confusion {
        tp: 0,
        fp: 3,
        fn_: 0,
        tn: 47,
    };
    let pred_empty = Confusion {
        tp: 0,
        fp: 0,
        fn_: 3,
        tn: 47,
    };
    // Default: reference-empty scores 0 (the false positives count), both-empty is skipped.
    let d = EmptyPolicy::DEFAULT;
    assert_eq!(both.dice(d), None);
    assert_eq!(ref_empty.dice(d), Some(0.0));
    assert_eq!(pred_empty.dice(d), Some(0.0));
    assert_eq!(pred_empty.precision(d), Some(0.0));
    // Precision is defined when something was predicted: no policy makes 0/FP anything but 0.
    for p in [
        d,
        EmptyPolicy::monai(true),
        EmptyPolicy::uniform(EmptyValue::One),
    ] {
        assert_eq!(ref_empty.precision(p), Some(0.0));
        let (got, want) = (ref_empty.recall(p), p.reference_empty.get());
        assert_eq!(got.map(f64::to_bits), want.map(f64::to_bits));
    }
    assert_eq!(pred_empty.recall(d), Some(0.0));
    // MONAI ignore_empty=True: NaN whenever the reference is empty.
    let m = EmptyPolicy::monai(true);
    assert!(both.dice(m).unwrap().is_nan());
    assert!(ref_empty.dice(m).unwrap().is_nan());
    // MONAI ignore_empty=False, MetricsReloaded: 1 when both are empty, 0 otherwise.
    for p in [EmptyPolicy::monai(false), EmptyPolicy::METRICS_RELOADED] {
        assert_eq!(both.dice(p), Some(1.0));
        assert_eq!(ref_empty.dice(p), Some(0.0));
    }
    // nnU-Net: NaN only when TP + FP + FN = 0.
    assert!(both.dice(EmptyPolicy::NNUNET).unwrap().is_nan());
    assert_eq!(ref_empty.dice(EmptyPolicy::NNUNET), Some(0.0));
    // Specificity's empty cases are those of the complement.
    let full = Confusion {
        tp: 10,
        fp: 0,
        fn_: 0,
        tn: 0,
    };
    assert_eq!(
        full.specificity(EmptyPolicy::uniform(EmptyValue::One)),
        Some(1.0)
    );
    assert_eq!(full.specificity(d), None);
    assert_eq!(both.specificity(d), Some(1.0));
    let no_neg_ref = Confusion {
        tp: 8,
        fp: 0,
        fn_: 2,
        tn: 0,
    };
    assert_eq!(no_neg_ref.specificity(d), Some(0.0));
}

#[test]
fn means_report_defined_counts() {
    let m = hard::mean([Some(1.0), None, Some(0.5), Some(f64::NAN)]);
    assert_eq!(
        m,
        MeanValue {
            mean: Some(0.75),
            defined: 2,
            total: 4
        }
    );
    assert_eq!(
        hard::mean([None, None]),
        MeanValue {
            mean: None,
            defined: 0,
            total: 2
        }
    );
    // class_means: 2 samples × 3 classes.
    let cs = [
        Confusion {
            tp: 5,
            fp: 0,
            fn_: 0,
            tn: 5,
        },
        Confusion {
            tp: 1,
            fp: 1,
            fn_: 0,
            tn: 8,
        },
        Confusion {
            tp: 0,
            fp: 0,
            fn_: 0,
            tn: 10,
        },
        Confusion {
            tp: 5,
            fp: 5,
            fn_: 0,
            tn: 0,
        },
        Confusion {
            tp: 0,
            fp: 2,
            fn_: 0,
            tn: 8,
        },
        Confusion {
            tp: 1,
            fp: 0,
            fn_: 1,
            tn: 8,
        },
    ];
    let mut per = [MeanValue {
        mean: None,
        defined: 0,
        total: 0,
    }; 3];
    let all = hard::class_means(
        Shape::new(2, 3, 10),
        &cs,
        Metric::Dice,
        EmptyPolicy::DEFAULT,
        false,
        &mut per,
    )
    .unwrap();
    assert_eq!(
        per[0],
        MeanValue {
            mean: None,
            defined: 0,
            total: 0
        }
    );
    assert_eq!(
        per[1],
        MeanValue {
            mean: Some((2.0 / 3.0 + 0.0) / 2.0),
            defined: 2,
            total: 2
        }
    );
    assert_eq!(
        per[2],
        MeanValue {
            mean: Some(2.0 / 3.0),
            defined: 1,
            total: 2
        }
    );
    assert_eq!(all.defined, 3);
    assert_eq!(all.total, 4);
    assert!((all.mean.unwrap() - (2.0 / 3.0 + 0.0 + 2.0 / 3.0) / 3.0).abs() < 1e-15);
}

#[test]
fn probabilities_threshold_and_errors() {
    let p = [0.5f32, 0.49, 1.0, 0.0, 0.7];
    let g = [1.0f32, 1.0, 0.0, 0.0, 0.5];
    let c = hard::confusion_from_probabilities(&p, &g, 0.5).unwrap();
    // p ≥ 0.5: [T, F, T, F, T]; g ≥ 0.5: [T, T, F, F, T]
    assert_eq!(
        c,
        Confusion {
            tp: 2,
            fp: 1,
            fn_: 1,
            tn: 1
        }
    );
    assert!(matches!(
        hard::confusion_from_probabilities(&p, &g, 1.5),
        Err(DiceError::InvalidParameter {
            name: "threshold",
            ..
        })
    ));
    assert!(matches!(
        hard::confusion_from_probabilities(&p, &g, f64::NAN),
        Err(DiceError::InvalidParameter { .. })
    ));
    assert_eq!(
        hard::confusion_from_probabilities::<f32>(&[], &[], 0.5),
        Err(DiceError::Empty {
            operand: Operand::Prediction
        })
    );
    let mut bad = vec![0.5f32; 700];
    bad[650] = 2.0;
    let gg = vec![0.0f32; 700];
    assert_eq!(
        hard::confusion_from_probabilities(&bad, &gg, 0.5),
        Err(DiceError::OutOfRange {
            operand: Operand::Prediction,
            index: 650,
            value: 2.0
        })
    );
    assert_eq!(
        hard::confusion_from_probabilities(&gg, &bad, 0.5),
        Err(DiceError::OutOfRange {
            operand: Operand::Target,
            index: 650,
            value: 2.0
        })
    );
}

#[test]
fn masks_u8_and_bool() {
    let p = [0u8, 1, 2, 0, 255];
    let g = [0u8, 1, 0, 7, 1];
    assert_eq!(
        hard::confusion_from_masks(&p, &g).unwrap(),
        Confusion {
            tp: 2,
            fp: 1,
            fn_: 1,
            tn: 1
        }
    );
    let pb: Vec<bool> = p.iter().map(|&v| v != 0).collect();
    let gb: Vec<bool> = g.iter().map(|&v| v != 0).collect();
    assert_eq!(
        hard::confusion_from_masks(&pb, &gb).unwrap(),
        Confusion {
            tp: 2,
            fp: 1,
            fn_: 1,
            tn: 1
        }
    );
    assert!(matches!(
        hard::confusion_from_masks(&p[..2], &g),
        Err(DiceError::LengthMismatch { .. })
    ));
}

#[test]
fn label_errors_name_map_voxel_and_label() {
    let mut out = [Confusion::default(); 3];
    let e = hard::label_confusion(&[0u8, 1, 5], &[0u8, 1, 2], None, &mut out).unwrap_err();
    assert_eq!(
        e,
        DiceError::LabelOutOfRange {
            operand: Operand::Prediction,
            index: 2,
            label: 5,
            classes: 3
        }
    );
    let big_p = vec![1u8; 1000];
    let mut big_t = vec![1u8; 1000];
    big_t[777] = 9;
    let e = hard::label_confusion(&big_p, &big_t, None, &mut out).unwrap_err();
    assert_eq!(
        e,
        DiceError::LabelOutOfRange {
            operand: Operand::Labels,
            index: 777,
            label: 9,
            classes: 3
        }
    );
    let e = hard::label_confusion(&[-1i64, 0], &[0i64, 0], None, &mut out).unwrap_err();
    assert_eq!(
        e,
        DiceError::LabelOutOfRange {
            operand: Operand::Prediction,
            index: 0,
            label: -1,
            classes: 3
        }
    );
    assert!(matches!(
        hard::label_confusion(&[0u8], &[0u8], None, &mut []),
        Err(DiceError::Empty { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Every label type, with and without an ignore label, small (SIMD) and large label counts.
    #[test]
    fn label_counts_match_naive(
        labels in prop_oneof![1usize..9, 15usize..40],
        n in 0usize..700,
        seed in any::<u64>(),
        ignore in proptest::option::of(0i64..50),
        runs in any::<bool>(),
    ) {
        let mut s = seed | 1;
        let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; s };
        let mut pred = Vec::with_capacity(n);
        let mut target = Vec::with_capacity(n);
        let (mut a, mut b) = (0i64, 0i64);
        for _ in 0..n {
            if !runs || next() % 8 == 0 {
                a = (next() % labels as u64) as i64;
                b = if next() % 3 == 0 { a } else { (next() % labels as u64) as i64 };
                if let Some(ig) = ignore {
                    if next() % 10 == 0 { b = ig; }
                    // The prediction may hold the ignore label too ("unlabelled").
                    if next() % 13 == 0 { a = ig; }
                }
            }
            pred.push(a);
            target.push(b);
        }
        // Labels ≥ `labels` only appear as the ignore label in the target.
        let ok = pred.iter().all(|&p| (p as usize) < labels || Some(p) == ignore)
            && target.iter().all(|&t| (t as usize) < labels || Some(t) == ignore);
        prop_assume!(ok);
        prop_assume!(n > 0);
        let want = naive_labels(&pred, &target, labels, ignore);
        let mut out = vec![Confusion::default(); labels];
        macro_rules! check {
            ($t:ty) => {{
                if ignore.map_or(true, |i| <$t>::try_from(i).is_ok()) && labels <= 200 {
                    let p: Vec<$t> = pred.iter().map(|&v| v as $t).collect();
                    let t: Vec<$t> = target.iter().map(|&v| v as $t).collect();
                    let counted = hard::label_confusion(&p, &t, ignore, &mut out).unwrap();
                    prop_assert_eq!(&out, &want, "{}", stringify!($t));
                    prop_assert_eq!(counted, want[0].total());
                }
            }};
        }
        check!(u8);
        check!(u16);
        check!(u32);
        check!(i32);
        check!(i64);
    }

    /// Hard Dice equals soft Dice without smoothing when p and g are binary.
    #[test]
    fn hard_equals_soft_on_binary(bits in proptest::collection::vec((any::<bool>(), any::<bool>()), 1..3000)) {
        let p: Vec<f32> = bits.iter().map(|b| f32::from(u8::from(b.0))).collect();
        let g: Vec<f32> = bits.iter().map(|b| f32::from(u8::from(b.1))).collect();
        let c = hard::confusion_from_probabilities(&p, &g, 0.5).unwrap();
        let s = SoftStats::of(&p, &g, Moment::Linear).unwrap();
        let soft = dice_core::score::dice(s.intersection, s.pred, s.target, 0.0, 0.0);
        prop_assert_eq!(c.dice(EmptyPolicy::DEFAULT), soft);
        let soft_iou = dice_core::score::jaccard(s.intersection, s.pred, s.target, 0.0, 0.0);
        prop_assert_eq!(c.iou(EmptyPolicy::DEFAULT), soft_iou);
        let m = hard::confusion_from_masks(
            &bits.iter().map(|b| b.0).collect::<Vec<_>>(),
            &bits.iter().map(|b| b.1).collect::<Vec<_>>(),
        ).unwrap();
        prop_assert_eq!(m, c);
    }

    /// Thresholded counts against naive counting, at every alignment.
    #[test]
    fn threshold_counts_match_naive(p in proptest::collection::vec(0.0f32..=1.0, 0..2000), t in 0.0f64..=1.0, off in 0usize..16) {
        prop_assume!(p.len() > off);
        let p = &p[off..];
        let g: Vec<f32> = p.iter().map(|&v| 1.0 - v).collect();
        let c = hard::confusion_from_probabilities(p, &g, t).unwrap();
        let tt = t as f32;
        let mut want = Confusion::default();
        for (&a, &b) in p.iter().zip(&g) {
            match (a >= tt, b >= tt) {
                (true, true) => want.tp += 1,
                (true, false) => want.fp += 1,
                (false, true) => want.fn_ += 1,
                (false, false) => want.tn += 1,
            }
        }
        prop_assert_eq!(c, want);
        let p64: Vec<f64> = p.iter().map(|&v| v as f64).collect();
        let g64: Vec<f64> = g.iter().map(|&v| v as f64).collect();
        prop_assert_eq!(hard::confusion_from_probabilities(&p64, &g64, tt as f64).unwrap(), want);
    }
}

#[test]
fn batch_functions() {
    let shape = Shape::new(2, 2, 3);
    let p = [
        0.9f32, 0.1, 0.6, 0.1, 0.9, 0.4, 0.2, 0.8, 0.5, 0.8, 0.2, 0.5,
    ];
    let g = [
        1.0f32, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0,
    ];
    let mut out = [Confusion::default(); 4];
    hard::batch_confusion_probabilities(shape, &p, &g, 0.5, None, &mut out).unwrap();
    assert_eq!(
        out[0],
        Confusion {
            tp: 1,
            fp: 1,
            fn_: 0,
            tn: 1
        }
    );
    assert_eq!(
        out[1],
        Confusion {
            tp: 1,
            fp: 0,
            fn_: 1,
            tn: 1
        }
    );
    let mask = [1u8, 1, 0, 1, 1, 1];
    hard::batch_confusion_probabilities(shape, &p, &g, 0.5, Some(&mask), &mut out).unwrap();
    assert_eq!(
        out[0],
        Confusion {
            tp: 1,
            fp: 0,
            fn_: 0,
            tn: 1
        }
    );
    let pl = [0u8, 1, 1, 2, 0, 0];
    let tl = [0u8, 1, 255, 2, 2, 0];
    let mut out = [Confusion::default(); 6];
    hard::batch_label_confusion(Shape::new(2, 3, 3), &pl, &tl, Some(255), &mut out).unwrap();
    assert_eq!(
        out[1],
        Confusion {
            tp: 1,
            fp: 0,
            fn_: 0,
            tn: 1
        }
    );
    assert_eq!(
        out[5],
        Confusion {
            tp: 1,
            fp: 0,
            fn_: 1,
            tn: 1
        }
    );
    let e = hard::batch_label_confusion(Shape::new(2, 3, 3), &pl, &tl, None, &mut out).unwrap_err();
    assert_eq!(
        e,
        DiceError::LabelOutOfRange {
            operand: Operand::Labels,
            index: 2,
            label: 255,
            classes: 3
        }
    );
}

#[test]
fn counts_that_overflow_are_invalid_and_metrics_stay_in_range() {
    let c = Confusion {
        tp: u64::MAX / 2 + 1,
        fp: 3,
        fn_: 0,
        tn: 0,
    };
    assert!(matches!(
        c.validate(),
        Err(DiceError::InvalidParameter { name: "counts", .. })
    ));
    let d = c.dice(EmptyPolicy::DEFAULT).unwrap();
    assert!((0.0..=1.0).contains(&d), "{d}");
    assert!(Confusion {
        tp: 1,
        fp: 2,
        fn_: 3,
        tn: 4
    }
    .validate()
    .is_ok());
}

/// The ignore label in the prediction leaves the voxel out, on the SIMD path (long `u8` maps)
/// and the portable one alike.
#[test]
fn ignore_label_in_the_prediction_is_left_out() {
    for n in [7usize, 200, 4099] {
        let pred: Vec<u8> = (0..n).map(|i| [0, 1, 255, 2][i % 4]).collect();
        let target: Vec<u8> = (0..n).map(|i| [0, 1, 1, 255][(i / 3) % 4]).collect();
        let mut out = [Confusion::default(); 3];
        let counted = hard::label_confusion(&pred, &target, Some(255), &mut out).unwrap();
        let p64: Vec<i64> = pred.iter().map(|&v| v as i64).collect();
        let t64: Vec<i64> = target.iter().map(|&v| v as i64).collect();
        let want = naive_labels(&p64, &t64, 3, Some(255));
        assert_eq!(out.to_vec(), want, "n = {n}");
        assert_eq!(counted, want[0].total());
        let mut wide = [Confusion::default(); 3];
        hard::label_confusion(&p64, &t64, Some(255), &mut wide).unwrap();
        assert_eq!(wide, out);
    }
}
