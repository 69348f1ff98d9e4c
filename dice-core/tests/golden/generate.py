#!/usr/bin/env python3
"""Golden values from the peers themselves, written as Rust constants to fixtures.rs.

Runs MONAI, segmentation_models_pytorch, nnU-Net v2, Keras 3 (torch backend), torchmetrics
and medpy on the same small inputs, in float64, and records what each returns, so that
`tests/golden.rs` checks dice-core against them through the parameter mapping documented in
`dice_core::score` and `dice_core::hard`.

Regenerate (needs the packages below; the LibTorch venv of the README works):
    pip install torch==2.13.0 monai==1.6.1 segmentation-models-pytorch==0.6.0 keras==3.15.1 \
        torchmetrics==1.9.0 medpy==0.5.2 nnunetv2==2.8.1
    KERAS_BACKEND=torch python dice-core/tests/golden/generate.py > dice-core/tests/golden/fixtures.rs
"""
import os
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")
warnings.filterwarnings("ignore")

import numpy as np
import torch

import monai
from monai.losses import DiceLoss, GeneralizedDiceLoss, TverskyLoss
from monai.metrics import compute_dice
import segmentation_models_pytorch as smp
from nnunetv2.training.loss.dice import SoftDiceLoss, MemoryEfficientSoftDiceLoss
from nnunetv2.evaluation.evaluate_predictions import compute_tp_fp_fn_tn
import keras
import torchmetrics
from torchmetrics.functional.segmentation import dice_score as tm_dice_score
from medpy.metric.binary import dc as medpy_dc

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20261127)

out = []


def emit(name, values, ty="f64"):
    arr = np.asarray(values, dtype=np.float64 if ty == "f64" else None).ravel()
    if ty == "f64":
        body = ", ".join("f64::NAN" if np.isnan(v) else repr(float(v)) for v in arr)
    else:
        body = ", ".join(str(int(v)) for v in arr)
    out.append(f"pub const {name}: [{ty}; {arr.size}] = [{body}];")


# ----- Case A: multi-class, [N=2, C=3, S=24], class 2 absent from sample 1 ------------------
N, C, S = 2, 3, 24
logits = rng.normal(0.0, 2.0, size=(N, C, S))
p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
labels = rng.integers(0, C, size=(N, S))
labels[1][labels[1] == 2] = 1
onehot = np.eye(C)[labels].transpose(0, 2, 1)  # N, C, S

emit("A_P", p)
emit("A_LABELS", labels, "i64")

tp = torch.tensor(p, requires_grad=True)
tg = torch.tensor(onehot)
tl = torch.tensor(labels)[:, None, :]


def monai_loss(loss, target=tg):
    v = loss(tp, target)
    return v.detach().numpy()


emit("MONAI_DICE_DEFAULT", monai_loss(DiceLoss()))
emit("MONAI_DICE_NO_BG", monai_loss(DiceLoss(include_background=False)))
emit("MONAI_DICE_SQUARED", monai_loss(DiceLoss(squared_pred=True)))
emit("MONAI_DICE_JACCARD", monai_loss(DiceLoss(jaccard=True)))
emit("MONAI_DICE_BATCH", monai_loss(DiceLoss(batch=True)))
emit("MONAI_DICE_SMOOTH", monai_loss(DiceLoss(smooth_nr=0.0, smooth_dr=1e-6)))
emit("MONAI_DICE_WEIGHT", monai_loss(DiceLoss(weight=torch.tensor([0.2, 0.5, 1.0]))))
emit("MONAI_DICE_NONE", monai_loss(DiceLoss(reduction="none")))
emit("MONAI_DICE_SUM", monai_loss(DiceLoss(reduction="sum")))
emit("MONAI_DICE_ONEHOT_Y", monai_loss(DiceLoss(to_onehot_y=True), tl))
emit("MONAI_GDL_SQUARE", monai_loss(GeneralizedDiceLoss(w_type="square")))
emit("MONAI_GDL_SIMPLE", monai_loss(GeneralizedDiceLoss(w_type="simple")))
emit("MONAI_GDL_UNIFORM", monai_loss(GeneralizedDiceLoss(w_type="uniform")))
emit("MONAI_GDL_BATCH", monai_loss(GeneralizedDiceLoss(batch=True)))
emit("MONAI_TVERSKY", monai_loss(TverskyLoss(alpha=0.3, beta=0.7)))
emit("MONAI_TVERSKY_NO_BG", monai_loss(TverskyLoss(alpha=0.3, beta=0.7, include_background=False)))

# Gradient of MONAI's default DiceLoss through autograd.
tp.grad = None
DiceLoss()(tp, tg).backward()
emit("MONAI_DICE_GRAD", tp.grad.numpy())

# MONAI's GeneralizedDiceLoss when every foreground class is absent from a sample: weights 0,
# loss 0 whatever the prediction (dice-core gives weight 1 instead; the test shows both).
empty_target = torch.zeros_like(tg)
empty_target[:, 0] = 1.0
emit("MONAI_GDL_ALL_ABSENT", GeneralizedDiceLoss(include_background=False)(tp, empty_target).detach().numpy())

# Hard metrics: argmax prediction; class 2 absent from sample 1's reference, maybe predicted.
pred_labels = p.argmax(axis=1)
emit("A_PRED_LABELS", pred_labels, "i64")
pred_onehot = torch.tensor(np.eye(C)[pred_labels].transpose(0, 2, 1))
emit("MONAI_METRIC_IGNORE_EMPTY", compute_dice(pred_onehot, tg, include_background=True, ignore_empty=True).numpy())
emit("MONAI_METRIC_KEEP_EMPTY", compute_dice(pred_onehot, tg, include_background=True, ignore_empty=False).numpy())
# torchmetrics, per sample and class, index input.
tm = tm_dice_score(torch.tensor(pred_labels), torch.tensor(labels), num_classes=C, include_background=True,
                   average="none", input_format="index")
emit("TORCHMETRICS_DICE", tm.numpy())

# nnU-Net: SoftDiceLoss returns -mean(dc); evaluation per label with NaN for tp+fp+fn = 0.
emit("NNUNET_SOFTDICE_NO_BG", SoftDiceLoss(apply_nonlin=None, batch_dice=False, do_bg=False, smooth=1e-5)(tp, tg).detach().numpy())
emit("NNUNET_MEMEFF_BATCH", MemoryEfficientSoftDiceLoss(apply_nonlin=None, batch_dice=True, do_bg=True, smooth=1e-5, ddp=False)(tp, tl).detach().numpy())
nn_eval = []
for n in range(N):
    for c in range(C):
        t, f_p, f_n, _ = compute_tp_fp_fn_tn(labels[n] == c, pred_labels[n] == c)
        nn_eval.append(np.nan if t + f_p + f_n == 0 else 2 * t / (2 * t + f_p + f_n))
emit("NNUNET_EVAL_DICE", nn_eval)

# smp multiclass, batch Dice with smoothing 0.5 (every class is present in the batch).
emit("SMP_DICE_MULTICLASS", smp.losses.DiceLoss("multiclass", from_logits=False, smooth=0.5)(tp, torch.tensor(labels)).detach().numpy())

# ----- Case B: multi-label / binary, [N=2, C=2, S=20] -------------------------------------
N2, C2, S2 = 2, 2, 20
pb = 1.0 / (1.0 + np.exp(-rng.normal(0.0, 2.0, size=(N2, C2, S2))))
gb = (rng.random(size=(N2, C2, S2)) < 0.4).astype(np.float64)
emit("B_P", pb)
emit("B_G", gb)
tpb = torch.tensor(pb)
tgb = torch.tensor(gb)
emit("SMP_DICE_MULTILABEL_LOG", smp.losses.DiceLoss("multilabel", from_logits=False, log_loss=True)(tpb, tgb).numpy())
# Binary Tversky with gamma: smp raises the mean loss to gamma (one group here, so per group).
emit("SMP_TVERSKY_BINARY", smp.losses.TverskyLoss("binary", from_logits=False, alpha=0.3, beta=0.7, gamma=2.0)(tpb[:, :1], tgb[:, :1]).numpy())
# Keras: Dice over the whole tensor (axis=None) and per sample (axis=(1,)).
keras.config.set_floatx("float64")
kt = gb.reshape(N2, -1)
kp = pb.reshape(N2, -1)
emit("KERAS_DICE_ALL", np.asarray(keras.losses.Dice()(kt, kp)))
emit("KERAS_DICE_PER_SAMPLE", np.asarray(keras.losses.dice(kt, kp, axis=(1,))))
# medpy dc on thresholded masks, and on two empty masks.
emit("MEDPY_DC", [medpy_dc(pb[0, 0] >= 0.5, gb[0, 0] >= 0.5), medpy_dc(np.zeros(5), np.zeros(5))])

print("// Generated by dice-core/tests/golden/generate.py; do not edit.")
print(f"// monai {monai.__version__}, segmentation_models_pytorch {smp.__version__}, keras {keras.__version__},")
print(f"// torchmetrics {torchmetrics.__version__}, torch {torch.__version__}, numpy {np.__version__}.")
print("#![allow(dead_code, clippy::excessive_precision, clippy::approx_constant)]")
for line in out:
    print(line)
