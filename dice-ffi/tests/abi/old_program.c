/* A program as a distribution's user of libdice would have built it: compiled against the
 * header of an earlier release on the same SONAME (dice-ffi/abi/dice-<version>.h) and run
 * against today's library (dice-ffi/tests/abi.rs). Every struct it passes is followed by guard
 * bytes that the library must never touch; the numbers it prints must equal those of the same
 * program built against today's header. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dice.h"

#define N 2
#define C 3
#define S 64
#define GUARD 32
#define GUARDED(T, name)                  \
  struct {                                \
    T v;                                  \
    unsigned char guard[GUARD];           \
  } name;                                 \
  memset(&name, 0, sizeof name);          \
  memset(name.guard, 0x5A, sizeof name.guard)
#define GUARDED_ARRAY(T, n, name)         \
  struct {                                \
    T v[n];                               \
    unsigned char guard[GUARD];           \
  } name;                                 \
  memset(&name, 0, sizeof name);          \
  memset(name.guard, 0x5A, sizeof name.guard)

static int failures = 0;

static void expect(int32_t status, const char *what) {
  if (status != DICE_STATUS_OK) {
    printf("FAIL %s: %s: %s\n", what, dice_status_str(status), dice_last_error_message());
    failures++;
  }
}

static void guard(const unsigned char *g, const char *what) {
  for (size_t k = 0; k < GUARD; k++) {
    if (g[k] != 0x5A) {
      printf("FAIL the guard after %s was overwritten at byte %zu\n", what, k);
      failures++;
      return;
    }
  }
}

int main(void) {
  static float pred[N * C * S], target[N * C * S], logits[N * C * S], grad[N * C * S];
  static uint8_t labels[N * S], pred_labels[N * S];
  for (size_t v = 0; v < N * S; v++) labels[v] = (uint8_t)((v * 7 + v / 5) % C);
  for (size_t n = 0; n < N; n++)
    for (size_t s = 0; s < S; s++) {
      float sum = 0.0f, best = -1.0f;
      for (size_t c = 0; c < C; c++) {
        size_t i = (n * C + c) * S + s;
        pred[i] = (float)((i * 37 + 11) % 100 + 1);
        sum += pred[i];
      }
      for (size_t c = 0; c < C; c++) {
        size_t i = (n * C + c) * S + s;
        pred[i] /= sum;
        logits[i] = 4.0f * pred[i] - 2.0f;
        target[i] = labels[n * S + s] == c ? 1.0f : 0.0f;
        if (pred[i] > best) {
          best = pred[i];
          pred_labels[n * S + s] = (uint8_t)c;
        }
      }
    }
  DiceShape shape = {N, C, S};

  /* Soft Dice over a dense and a label-map target. */
  GUARDED(DiceSoftParams, sp);
  expect(dice_soft_params_default(&sp.v, sizeof sp.v), "soft params default");
  sp.v.include_background = 0;
  GUARDED(DiceTarget, dense);
  expect(dice_target_default(&dense.v, sizeof dense.v), "target default");
  dense.v.kind = DICE_TARGET_KIND_DENSE;
  dense.v.data = target;
  dense.v.len = N * C * S;
  GUARDED(DiceTarget, lab);
  expect(dice_target_default(&lab.v, sizeof lab.v), "target default");
  lab.v.kind = DICE_TARGET_KIND_LABELS_U8;
  lab.v.data = labels;
  lab.v.len = N * S;
  GUARDED_ARRAY(DiceStats, N * C, stats);
  GUARDED(DiceLossValue, lv);
  expect(dice_soft_loss_f32(&sp.v, shape, pred, &dense.v, NULL, stats.v, N * C, grad, N * C * S, &lv.v),
         "soft loss, dense");
  printf("soft_dense %.17g %zu %zu %.9g %.9g\n", lv.v.value, lv.v.groups, lv.v.defined, grad[70], grad[330]);
  expect(dice_soft_loss_f32(&sp.v, shape, pred, &lab.v, NULL, stats.v, N * C, NULL, 0, &lv.v), "soft loss, labels");
  printf("soft_labels %.17g %.17g %.17g %.17g\n", lv.v.value, stats.v[1].intersection, stats.v[1].pred,
         stats.v[1].target);

  /* Dice + cross-entropy on logits. */
  GUARDED(DiceCompoundParams, cp);
  expect(dice_compound_params_default(&cp.v, sizeof cp.v), "compound params default");
  GUARDED(DiceSoftParams, softmax);
  expect(dice_soft_params_default(&softmax.v, sizeof softmax.v), "soft params default");
  softmax.v.activation = DICE_ACTIVATION_SOFTMAX;
  GUARDED(DiceCompoundValue, cv);
  expect(dice_compound_loss_f32(&softmax.v, &cp.v, shape, logits, &lab.v, NULL, stats.v, N * C, grad, N * C * S, &cv.v),
         "compound loss");
  printf("compound %.17g %.17g %.17g %zu\n", cv.v.value, cv.v.dice, cv.v.term, cv.v.groups);

  /* Hard counts and Dice. */
  GUARDED_ARRAY(DiceConfusion, C, conf);
  uint64_t counted = 0;
  expect(dice_label_confusion(DICE_LABEL_TYPE_U8, pred_labels, labels, N * S, 0, 0, conf.v, C, &counted),
         "label confusion");
  GUARDED(DiceEmptyPolicy, policy);
  expect(dice_empty_policy_default(&policy.v), "empty policy default");
  double values[C];
  uint8_t defined[C];
  expect(dice_metrics(conf.v, C, DICE_METRIC_DICE, policy.v, values, defined), "metrics");
  printf("hard %llu %llu %llu %.17g %.17g\n", (unsigned long long)counted, (unsigned long long)conf.v[1].tp,
         (unsigned long long)conf.v[2].fp, values[1], values[2]);

  /* Lesion-wise (BraTS) and surface distances on an 8×8×8 pair. */
  static uint8_t pm[512], gm[512];
  for (size_t z = 0; z < 8; z++)
    for (size_t y = 0; y < 8; y++)
      for (size_t x = 0; x < 8; x++) {
        size_t i = (z * 8 + y) * 8 + x;
        gm[i] = (x >= 1 && x <= 3 && y >= 1 && y <= 3 && z >= 1 && z <= 3) || (x == 6 && y == 6 && z == 6);
        pm[i] = (x >= 2 && x <= 4 && y >= 1 && y <= 3 && z >= 1 && z <= 3) || (x == 6 && y == 1 && z == 6);
      }
  DiceGrid grid = {{8, 8, 8}, {1.0, 1.0, 2.0}};
  GUARDED(DiceBratsParams, bp);
  expect(dice_brats_params_default(DICE_BRATS_CHALLENGE_MET, &bp.v, sizeof bp.v), "brats params default");
  bp.v.min_volume = 0.0;
  GUARDED(DiceLesionWise, lw);
  GUARDED_ARRAY(DiceLesion, 8, lesions);
  size_t nles = 0;
  expect(dice_lesion_wise(&bp.v, grid, pm, gm, 512, &lw.v, lesions.v, 8, &nles), "lesion-wise");
  printf("lesions %.17g %.17g %u %u %u %zu\n", lw.v.dice, lw.v.hd95, lw.v.tp, lw.v.fp, lw.v.fn_, nles);
  size_t scratch_len = 0;
  expect(dice_surface_scratch_len(DICE_SURFACE_ELEMENTS_VOXELS, grid, pm, gm, 512, &scratch_len), "scratch len");
  static double scratch[4096];
  GUARDED(DiceSurfaceDistances, sd);
  if (scratch_len <= 4096) {
    expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, pm, gm, 512, 95.0, 1.0, scratch, scratch_len,
                                  &sd.v),
           "surface distances");
    GUARDED(DiceSurfaceEmptyPolicy, sp_empty);
    sp_empty.v.one_empty.kind = DICE_EMPTY_DISTANCE_KIND_DIAGONAL;
    sp_empty.v.both_empty.kind = DICE_EMPTY_DISTANCE_KIND_NAN;
    double hd = 0.0, assd = 0.0;
    uint8_t d1 = 0, d2 = 0;
    expect(dice_surface_metric(&sd.v, grid, DICE_SURFACE_METRIC_HAUSDORFF, sp_empty.v, &hd, &d1), "hausdorff");
    expect(dice_surface_metric(&sd.v, grid, DICE_SURFACE_METRIC_ASSD, sp_empty.v, &assd, &d2), "assd");
    printf("surface %.17g %.17g %u %u\n", hd, assd, d1, d2);
    guard(sp_empty.guard, "DiceSurfaceEmptyPolicy");
  } else {
    printf("FAIL scratch of %zu doubles\n", scratch_len);
    failures++;
  }

  guard(sp.guard, "DiceSoftParams");
  guard(dense.guard, "DiceTarget (dense)");
  guard(lab.guard, "DiceTarget (labels)");
  guard(stats.guard, "DiceStats[N*C]");
  guard(lv.guard, "DiceLossValue");
  guard(cp.guard, "DiceCompoundParams");
  guard(softmax.guard, "DiceSoftParams (softmax)");
  guard(cv.guard, "DiceCompoundValue");
  guard(conf.guard, "DiceConfusion[C]");
  guard(policy.guard, "DiceEmptyPolicy");
  guard(bp.guard, "DiceBratsParams");
  guard(lw.guard, "DiceLesionWise");
  guard(lesions.guard, "DiceLesion[8]");
  guard(sd.guard, "DiceSurfaceDistances");
  if (failures == 0) printf("guards intact\n");
  return failures != 0;
}
