/*
 * A C consumer of dice.h. Prints results as "name v1 v2 ..." lines for the Rust test
 * (tests/consumers.rs) to compare with dice-core's own results on the same data, and checks
 * that bad input gets a status, never a crash. Exit status: the number of failed checks.
 * Built with -std=c11 -Wall -Wextra -Werror -pedantic under ASan and UBSan.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dice.h"

#define N 2
#define C 3
#define S 50
#define LEN (N * C * S)
#define VOX (N * S)

static int failures = 0;

static void expect(DiceStatus got, DiceStatus want, const char *what) {
  if (got != want) {
    fprintf(stderr, "FAIL %s: got %d (%s), want %d; last error: %s\n", what, (int)got,
            dice_status_str((int32_t)got), (int)want, dice_last_error_message());
    failures++;
  } else if (want != DICE_STATUS_OK && strlen(dice_last_error_message()) == 0) {
    fprintf(stderr, "FAIL %s: no error message\n", what);
    failures++;
  }
}

/* The same data generators as tests/consumers.rs. */
static float pred_at(size_t i) { return (float)((i * 7919u) % 1000u) / 1000.0f; }
static uint8_t label_at(size_t i) { return (uint8_t)((i * 31u) % 3u); }
static uint8_t pred_label_at(size_t i) { return (uint8_t)((i * 13u) % 3u); }

static void print_conf(const char *name, const DiceConfusion *c, size_t n) {
  printf("%s", name);
  for (size_t i = 0; i < n; i++) {
    printf(" %llu %llu %llu %llu", (unsigned long long)c[i].tp, (unsigned long long)c[i].fp,
           (unsigned long long)c[i].fn_, (unsigned long long)c[i].tn);
  }
  printf("\n");
}

/* A caller's pool: two pthreads, one taking the even tasks and one the odd ones. */
typedef struct {
  DiceTask task;
  void *task_context;
  size_t tasks;
  size_t first;
} Half;

static void *run_half(void *arg) {
  Half *h = (Half *)arg;
  for (size_t i = h->first; i < h->tasks; i += 2) h->task(h->task_context, i);
  return NULL;
}

static int pool_runs = 0;

static void two_pthreads(void *context, size_t tasks, DiceTask task, void *task_context) {
  (void)context;
  pool_runs++;
  Half halves[2] = {{task, task_context, tasks, 0}, {task, task_context, tasks, 1}};
  pthread_t helper;
  if (pthread_create(&helper, NULL, run_half, &halves[1]) != 0) {
    run_half(&halves[1]);
    run_half(&halves[0]);
    return;
  }
  run_half(&halves[0]);
  pthread_join(helper, NULL);
}

/* One large soft loss (above the threading threshold) on the calling thread, on 2 threads
 * started by dice, and on the caller's pool: value and gradient must be the same bits. */
static void threads_identical(void) {
  enum { BIG = 1 << 21 };
  DiceShape shape = {1, 2, BIG};
  float *p = malloc(sizeof(float) * 2 * BIG);
  float *g = malloc(sizeof(float) * 2 * BIG);
  float *grad = malloc(sizeof(float) * 2 * BIG);
  float *grad2 = malloc(sizeof(float) * 2 * BIG);
  if (!p || !g || !grad || !grad2) {
    failures++;
    return;
  }
  for (size_t i = 0; i < 2 * (size_t)BIG; i++) {
    p[i] = pred_at(i);
    g[i] = (float)label_at(i);
    g[i] = g[i] > 1.0f ? 1.0f : g[i];
  }
  DiceSoftParams params;
  dice_soft_params_default(&params, sizeof params);
  params.squared_pred = 1;
  DiceTarget dense = {sizeof(DiceTarget), DICE_TARGET_KIND_DENSE, g, 2 * (size_t)BIG, 0, 0};
  DiceStats st[2];
  DiceLossValue v1, v2;
  expect(dice_soft_loss_f32(&params, shape, p, &dense, NULL, st, 2, grad, 2 * (size_t)BIG, &v1), DICE_STATUS_OK, "one thread");
  params.threads = 2;
  expect(dice_soft_loss_f32(&params, shape, p, &dense, NULL, st, 2, grad2, 2 * (size_t)BIG, &v2), DICE_STATUS_OK, "two threads");
  int same = v1.value == v2.value && memcmp(grad, grad2, sizeof(float) * 2 * BIG) == 0;
  DiceExecutor pool = {NULL, 2, two_pthreads};
  params.threads = 1;
  params.executor = &pool;
  memset(grad2, 0, sizeof(float) * 2 * BIG);
  expect(dice_soft_loss_f32(&params, shape, p, &dense, NULL, st, 2, grad2, 2 * (size_t)BIG, &v2), DICE_STATUS_OK, "caller's pool");
  same = same && v1.value == v2.value && memcmp(grad, grad2, sizeof(float) * 2 * BIG) == 0;
  printf("threads_identical %d %d\n", same, pool_runs > 0);
  DiceExecutor broken = {NULL, 2, NULL};
  params.executor = &broken;
  expect(dice_soft_loss_f32(&params, shape, p, &dense, NULL, st, 2, grad2, 2 * (size_t)BIG, &v2), DICE_STATUS_NULL_POINTER, "executor without run");
  free(p);
  free(g);
  free(grad);
  free(grad2);
}

int main(void) {
  static float pred[LEN], target[LEN], grad[LEN], logits[LEN];
  static double pred64[LEN], target64[LEN], grad64[LEN];
  static uint8_t labels[VOX], labels_ignore[VOX], pred_labels[VOX];
  static uint16_t labels16[VOX], pred16[VOX];
  static int32_t labels32[VOX], pred32[VOX];
  static int64_t labels64[VOX], pred64l[VOX];
  DiceStats stats[N * C];
  DiceLossValue v;
  DiceSoftParams params;
  DiceShape shape = {N, C, S};

  for (size_t i = 0; i < LEN; i++) {
    pred[i] = pred_at(i);
    pred64[i] = (double)pred[i];
    logits[i] = pred[i] * 4.0f - 2.0f;
  }
  for (size_t v_ = 0; v_ < VOX; v_++) {
    labels[v_] = label_at(v_);
    labels_ignore[v_] = (v_ % 17 == 0) ? 255 : labels[v_];
    pred_labels[v_] = pred_label_at(v_);
    labels16[v_] = labels[v_];
    pred16[v_] = pred_labels[v_];
    labels32[v_] = labels[v_];
    pred32[v_] = pred_labels[v_];
    labels64[v_] = labels[v_];
    pred64l[v_] = pred_labels[v_];
  }
  for (size_t n = 0; n < N; n++)
    for (size_t c = 0; c < C; c++)
      for (size_t s = 0; s < S; s++) {
        size_t i = (n * C + c) * S + s;
        target[i] = labels[n * S + s] == c ? 1.0f : 0.0f;
        target64[i] = target[i];
      }

  printf("version %s\n", dice_version());
  printf("header_version %s %d.%d.%d %s\n", DICE_VERSION_STRING, DICE_VERSION_MAJOR, DICE_VERSION_MINOR, DICE_VERSION_PATCH, DICE_SONAME);

  /* Soft Dice, dense target, with gradient. */
  expect(dice_soft_params_default(&params, sizeof params), DICE_STATUS_OK, "params default");
  DiceTarget dense = {sizeof(DiceTarget), DICE_TARGET_KIND_DENSE, target, LEN, 0, 0};
  expect(dice_soft_loss_f32(&params, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_OK, "soft dense");
  printf("soft_dense %.17g %zu %zu %.9g %.9g %.9g\n", v.value, v.groups, v.defined, grad[0], grad[7], grad[299]);

  /* The extensible-struct protocol (dice.h's stability policy): a larger struct, as a program
   * built against a newer header would pass, works while its unknown tail is zero and is
   * UNSUPPORTED (nothing written) once the tail is set; a struct_size no layout ever had is
   * refused; the guard after the struct is never written. */
  {
    struct {
      DiceSoftParams p;
      unsigned char newer[16];
      unsigned char guard[16];
    } big;
    memset(&big, 0xAB, sizeof big);
    expect(dice_soft_params_default(&big.p, sizeof big.p + sizeof big.newer), DICE_STATUS_OK, "params default, larger struct");
    int tail_zero = 1, guard_ok = 1;
    for (size_t k = 0; k < sizeof big.newer; k++) tail_zero &= big.newer[k] == 0;
    for (size_t k = 0; k < sizeof big.guard; k++) guard_ok &= big.guard[k] == 0xAB;
    DiceLossValue w;
    expect(dice_soft_loss_f32(&big.p, shape, pred, &dense, NULL, stats, N * C, NULL, 0, &w), DICE_STATUS_OK, "larger struct, zero tail");
    big.newer[5] = 1;
    DiceLossValue untouched = {-7.0, 0, 0};
    int32_t unsupported = dice_soft_loss_f32(&big.p, shape, pred, &dense, NULL, stats, N * C, NULL, 0, &untouched);
    DiceSoftParams small = params;
    small.struct_size = sizeof(size_t);
    int32_t too_small = dice_soft_loss_f32(&small, shape, pred, &dense, NULL, stats, N * C, NULL, 0, &untouched);
    printf("extensible %zu %d %d %.17g %d %d %.17g %d\n", big.p.struct_size == sizeof big.p + sizeof big.newer ? (size_t)1 : (size_t)0,
           tail_zero, guard_ok, w.value, unsupported, too_small, untouched.value, DICE_STATUS_UNSUPPORTED);
  }

  /* Label map with an ignore label, no background, generalized Dice. */
  DiceSoftParams gd = params;
  gd.score = DICE_SCORE_GENERALIZED;
  gd.include_background = 0;
  DiceTarget lab = {sizeof(DiceTarget), DICE_TARGET_KIND_LABELS_U8, labels_ignore, VOX, 1, 255};
  expect(dice_soft_loss_f32(&gd, shape, pred, &lab, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_OK, "soft labels");
  printf("soft_labels %.17g %zu %zu %.9g\n", v.value, v.groups, v.defined, grad[55]);

  /* Logits through softmax, batch Tversky. */
  DiceSoftParams sm = params;
  sm.activation = DICE_ACTIVATION_SOFTMAX;
  sm.score = DICE_SCORE_TVERSKY;
  sm.alpha = 0.3;
  sm.beta = 0.7;
  sm.batch = 1;
  DiceTarget lab_plain = {sizeof(DiceTarget), DICE_TARGET_KIND_LABELS_U8, labels, VOX, 0, 0};
  expect(dice_soft_loss_f32(&sm, shape, logits, &lab_plain, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_OK, "softmax");
  printf("soft_softmax %.17g %.9g %.9g\n", v.value, grad[3], grad[151]);

  /* Dice + cross-entropy over the same logits, fused; then Dice (soft labels) + focal. */
  DiceCompoundParams cp;
  expect(dice_compound_params_default(&cp, sizeof cp), DICE_STATUS_OK, "compound default");
  double ce_w[C] = {0.5, 2.0, 1.5};
  cp.weights = ce_w;
  cp.weights_len = C;
  cp.label_smoothing = 0.1;
  cp.lambda_dice = 0.7;
  DiceSoftParams dce = params;
  dce.activation = DICE_ACTIVATION_SOFTMAX;
  DiceCompoundValue cv;
  expect(dice_compound_loss_f32(&dce, &cp, shape, logits, &lab, NULL, stats, N * C, grad, LEN, &cv), DICE_STATUS_OK,
         "dice ce");
  printf("compound_ce %.17g %.17g %.17g %zu %.9g %.9g\n", cv.value, cv.dice, cv.term, cv.defined, grad[3], grad[151]);
  DiceCompoundParams fp = cp;
  fp.term = DICE_TERM_KIND_FOCAL;
  fp.weights = NULL;
  fp.weights_len = 0;
  fp.has_alpha = 1;
  DiceSoftParams dsl = params;
  dsl.activation = DICE_ACTIVATION_SIGMOID;
  dsl.soft_label = 1;
  expect(dice_compound_loss_f32(&dsl, &fp, shape, logits, &dense, NULL, stats, N * C, grad, LEN, &cv), DICE_STATUS_OK,
         "dice focal");
  printf("compound_focal %.17g %.17g %.9g %u %.17g\n", cv.value, cv.term, grad[10], (unsigned)stats[1].squared,
         stats[1].abs_diff);
  expect(dice_compound_loss_f32(&params, &cp, shape, logits, &lab, NULL, stats, N * C, grad, LEN, &cv),
         DICE_STATUS_INVALID_PARAMETER, "compound without activation");
  expect(dice_compound_loss_f32(&dce, &cp, shape, logits, &lab, NULL, stats, N * C, NULL, LEN, &cv),
         DICE_STATUS_NULL_POINTER, "compound without grad");
  fp.term = 7;
  expect(dice_compound_loss_f32(&dsl, &fp, shape, logits, &dense, NULL, stats, N * C, grad, LEN, &cv),
         DICE_STATUS_INVALID_ENUM, "compound term enum");

  /* Double precision, value only, then per-group values from the statistics. */
  DiceSoftParams none = params;
  none.reduction = DICE_REDUCTION_NONE;
  DiceTarget dense64 = {sizeof(DiceTarget), DICE_TARGET_KIND_DENSE, target64, LEN, 0, 0};
  expect(dice_soft_loss_f64(&none, shape, pred64, &dense64, NULL, stats, N * C, NULL, 0, &v), DICE_STATUS_OK, "soft f64");
  double groups[N * C];
  uint8_t defined[N * C];
  expect(dice_soft_loss_from_stats(&none, shape, stats, N * C, groups, defined, N * C, &v), DICE_STATUS_OK, "from stats");
  printf("soft_none %.17g", v.value);
  for (size_t g = 0; g < N * C; g++) printf(" %.17g", groups[g]);
  printf("\n");
  double up = 2.0;
  expect(dice_soft_loss_f64(&params, shape, pred64, &dense64, NULL, stats, N * C, NULL, 0, &v), DICE_STATUS_OK, "stats f64");
  expect(dice_soft_gradient_f64(&params, shape, pred64, &dense64, NULL, stats, N * C, &up, 1, grad64, LEN), DICE_STATUS_OK,
         "gradient f64");
  printf("soft_gradient_f64 %.17g %.17g\n", grad64[0], grad64[299]);

  /* Hard metrics. */
  DiceConfusion conf, per_label[C];
  expect(dice_confusion_from_probabilities_f32(pred, target, LEN, 0.5, &conf), DICE_STATUS_OK, "confusion prob");
  print_conf("confusion_prob", &conf, 1);
  expect(dice_confusion_from_masks_u8(pred_labels, labels, VOX, &conf), DICE_STATUS_OK, "confusion masks");
  print_conf("confusion_masks", &conf, 1);
  uint64_t counted = 0;
  expect(dice_label_confusion(DICE_LABEL_TYPE_U8, pred_labels, labels_ignore, VOX, 1, 255, per_label, C, &counted),
         DICE_STATUS_OK, "labels u8");
  print_conf("labels_u8_ignore", per_label, C);
  printf("labels_counted %llu\n", (unsigned long long)counted);
  const void *pairs[4][2] = {{pred16, labels16}, {pred32, labels32}, {pred64l, labels64}, {pred_labels, labels}};
  const int32_t types[4] = {DICE_LABEL_TYPE_U16, DICE_LABEL_TYPE_I32, DICE_LABEL_TYPE_I64, DICE_LABEL_TYPE_U8};
  for (int t = 0; t < 4; t++) {
    expect(dice_label_confusion(types[t], pairs[t][0], pairs[t][1], VOX, 0, 0, per_label, C, NULL), DICE_STATUS_OK, "labels");
    print_conf("labels", per_label, C);
  }
  DiceEmptyPolicy policy;
  expect(dice_empty_policy_default(&policy), DICE_STATUS_OK, "policy");
  double values[C];
  for (int32_t m = DICE_METRIC_DICE; m <= DICE_METRIC_VOLUME_SIMILARITY; m++) {
    expect(dice_metrics(per_label, C, m, policy, values, defined), DICE_STATUS_OK, "metrics");
    printf("metric%d %.17g %.17g %.17g\n", (int)m, values[0], values[1], values[2]);
  }

  /* Streaming: two accumulators see alternate chunks of a [C, 100] volume, then merge. */
  DiceAccumulator *a = NULL, *b = NULL;
  expect(dice_accumulator_new(C, 0.5, 0, 0, &a), DICE_STATUS_OK, "acc new");
  expect(dice_accumulator_new(C, 0.5, 0, 0, &b), DICE_STATUS_OK, "acc new");
  float chunk_p[C * 30], chunk_g[C * 30];
  for (size_t start = 0, k = 0; start < 100; start += 30, k++) {
    size_t len = start + 30 <= 100 ? 30 : 100 - start;
    for (size_t c = 0; c < C; c++)
      for (size_t s = 0; s < len; s++) {
        chunk_p[c * len + s] = pred[c * 100 + start + s];
        chunk_g[c * len + s] = target[c * 100 + start + s];
      }
    expect(dice_accumulator_update_probabilities_f32(k % 2 ? a : b, chunk_p, chunk_g, len), DICE_STATUS_OK, "acc update");
  }
  expect(dice_accumulator_merge(a, b), DICE_STATUS_OK, "acc merge");
  DiceStats acc_stats[C];
  expect(dice_accumulator_finish(a, per_label, acc_stats, C), DICE_STATUS_OK, "acc finish");
  print_conf("accumulator_counts", per_label, C);
  printf("accumulator_stats");
  for (size_t c = 0; c < C; c++) printf(" %.17g %.17g %.17g", acc_stats[c].intersection, acc_stats[c].pred, acc_stats[c].target);
  printf("\n");

  /* ---- Bad input: a status, never a crash. ---- */
  expect(dice_soft_loss_f32(NULL, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_NULL_POINTER, "NULL params");
  expect(dice_soft_loss_f32(&params, shape, NULL, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_NULL_POINTER, "NULL pred");
  expect(dice_soft_loss_f32(&params, shape, pred, NULL, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_NULL_POINTER, "NULL target");
  expect(dice_soft_loss_f32(&params, shape, pred, &dense, NULL, stats, N * C, grad, LEN, NULL), DICE_STATUS_NULL_POINTER, "NULL out");
  expect(dice_soft_loss_f32(&params, shape, pred, &dense, NULL, stats, N * C - 1, grad, LEN, &v), DICE_STATUS_LENGTH_MISMATCH, "stats len");
  expect(dice_soft_loss_f32(&params, shape, pred, &dense, NULL, stats, N * C, grad, LEN - 1, &v), DICE_STATUS_LENGTH_MISMATCH, "grad len");
  DiceTarget short_target = {sizeof(DiceTarget), DICE_TARGET_KIND_DENSE, target, LEN - 3, 0, 0};
  expect(dice_soft_loss_f32(&params, shape, pred, &short_target, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_LENGTH_MISMATCH, "target len");
  DiceShape huge = {SIZE_MAX / 2, 3, 5};
  expect(dice_soft_loss_f32(&params, huge, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_SHAPE_OVERFLOW, "N*C*S overflow");
  DiceShape zero = {0, C, S};
  expect(dice_soft_loss_f32(&params, zero, pred, &dense, NULL, stats, 0, grad, 0, &v), DICE_STATUS_EMPTY, "empty shape");
  float saved = pred[100];
  pred[100] = NAN;
  expect(dice_soft_loss_f32(&params, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_NON_FINITE, "NaN");
  pred[100] = 1.5f;
  expect(dice_soft_loss_f32(&params, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_OUT_OF_RANGE, "p > 1");
  pred[100] = saved;
  DiceSoftParams bad = params;
  bad.score = 99;
  expect(dice_soft_loss_f32(&bad, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_INVALID_ENUM, "score enum");
  bad = params;
  bad.reduction = -1;
  expect(dice_soft_loss_f32(&bad, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_INVALID_ENUM, "reduction enum");
  bad = params;
  bad.smooth_nr = -1.0;
  expect(dice_soft_loss_f32(&bad, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_INVALID_PARAMETER, "smooth < 0");
  bad = params;
  bad.score = DICE_SCORE_TVERSKY;
  bad.alpha = 0.0;
  bad.beta = 0.0;
  expect(dice_soft_loss_f32(&bad, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_INVALID_PARAMETER, "alpha+beta=0");
  bad = params;
  bad.class_weights = NULL;
  bad.class_weights_len = 3;
  expect(dice_soft_loss_f32(&bad, shape, pred, &dense, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_NULL_POINTER, "NULL weights");
  bad = params;
  bad.activation = DICE_ACTIVATION_SIGMOID;
  expect(dice_soft_loss_f32(&bad, shape, logits, &dense, NULL, stats, N * C, NULL, 0, &v), DICE_STATUS_NULL_POINTER, "logits need grad");
  DiceTarget bad_kind = {sizeof(DiceTarget), 42, target, LEN, 0, 0};
  expect(dice_soft_loss_f32(&params, shape, pred, &bad_kind, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_INVALID_ENUM, "target kind");
  uint8_t bad_labels[VOX];
  memcpy(bad_labels, labels, VOX);
  bad_labels[33] = 7;
  DiceTarget lab_bad = {sizeof(DiceTarget), DICE_TARGET_KIND_LABELS_U8, bad_labels, VOX, 0, 0};
  expect(dice_soft_loss_f32(&params, shape, pred, &lab_bad, NULL, stats, N * C, grad, LEN, &v), DICE_STATUS_LABEL_OUT_OF_RANGE, "label 7");
  expect(dice_label_confusion(77, pred_labels, labels, VOX, 0, 0, per_label, C, NULL), DICE_STATUS_INVALID_ENUM, "label type");
  expect(dice_label_confusion(DICE_LABEL_TYPE_U8, pred_labels, bad_labels, VOX, 0, 0, per_label, C, NULL), DICE_STATUS_LABEL_OUT_OF_RANGE, "label out of range");
  expect(dice_label_confusion(DICE_LABEL_TYPE_U8, NULL, labels, VOX, 0, 0, per_label, C, NULL), DICE_STATUS_NULL_POINTER, "NULL labels");
  expect(dice_metrics(per_label, C, -1, policy, values, defined), DICE_STATUS_INVALID_ENUM, "metric enum");
  DiceEmptyPolicy bad_policy = {9, 0};
  expect(dice_metrics(per_label, C, DICE_METRIC_DICE, bad_policy, values, defined), DICE_STATUS_INVALID_ENUM, "policy enum");
  expect(dice_confusion_from_probabilities_f32(pred, target, 0, 0.5, &conf), DICE_STATUS_EMPTY, "zero length");
  expect(dice_confusion_from_probabilities_f32(pred, target, LEN, 2.0, &conf), DICE_STATUS_INVALID_PARAMETER, "threshold");
  expect(dice_confusion_from_probabilities_f32(pred, target, LEN, NAN, &conf), DICE_STATUS_INVALID_PARAMETER, "threshold NaN");
  /* A misaligned float pointer: reported, never dereferenced. */
  static unsigned char raw[64];
  const float *misaligned = (const float *)(const void *)(raw + 1);
  expect(dice_confusion_from_probabilities_f32(misaligned, target, 4, 0.5, &conf), DICE_STATUS_INVALID_PARAMETER, "misaligned");
  DiceAccumulator *z = NULL;
  expect(dice_accumulator_new(0, 0.5, 0, 0, &z), DICE_STATUS_EMPTY, "zero classes");
  expect(dice_accumulator_new(C, 0.5, 0, 0, NULL), DICE_STATUS_NULL_POINTER, "NULL handle out");
  expect(dice_accumulator_update_probabilities_f32(NULL, chunk_p, chunk_g, 30), DICE_STATUS_NULL_POINTER, "NULL acc");
  expect(dice_accumulator_update_probabilities_f32(a, chunk_p, chunk_g, SIZE_MAX / 2), DICE_STATUS_SHAPE_OVERFLOW, "acc overflow");
  expect(dice_accumulator_update_labels(a, DICE_LABEL_TYPE_U8, pred_labels, bad_labels, VOX), DICE_STATUS_LABEL_OUT_OF_RANGE, "acc bad label");
  expect(dice_accumulator_merge(a, a), DICE_STATUS_INVALID_PARAMETER, "merge into itself");
  expect(dice_accumulator_finish(a, per_label, acc_stats, C + 1), DICE_STATUS_LENGTH_MISMATCH, "finish len");
  /* The failed updates left the totals unchanged. */
  DiceConfusion after[C];
  expect(dice_accumulator_finish(a, after, NULL, C), DICE_STATUS_OK, "finish again");
  expect(dice_accumulator_update_labels(a, DICE_LABEL_TYPE_U8, pred_labels, labels, VOX), DICE_STATUS_OK, "acc labels");
  /* Surface distances: every label of the two 10×10 label maps (y spacing 2 mm). */
  DiceGrid grid = {{10, 10, 1}, {1.0, 2.0, 1.0}};
  double tolerances[C] = {1.0, 1.0, 2.5};
  DiceSurfaceDistances surf[C];
  expect(dice_label_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, DICE_LABEL_TYPE_U8, pred_labels, labels, VOX, grid, 0, 0, 95.0, tolerances, surf, C), DICE_STATUS_OK, "label surfaces");
  printf("surface_labels");
  for (int l = 0; l < C; l++) {
    printf(" %d %llu %llu %.17g %.17g %.17g %.17g %llu", (int)surf[l].kind, (unsigned long long)surf[l].pred_surface,
           (unsigned long long)surf[l].ref_surface, surf[l].max_pred_to_ref, surf[l].max_ref_to_pred,
           surf[l].percentile_pooled, surf[l].mean_pred_to_ref, (unsigned long long)surf[l].ref_within_tolerance);
  }
  printf("\n");
  /* Two masks with the caller's scratch: label 1 of each map. */
  uint8_t mp[VOX], mg[VOX], none_mask[VOX];
  for (size_t i = 0; i < VOX; i++) {
    mp[i] = pred_labels[i] == 1;
    mg[i] = labels[i] == 1;
    none_mask[i] = 0;
  }
  size_t need = 0;
  expect(dice_surface_scratch_len(DICE_SURFACE_ELEMENTS_VOXELS, grid, mp, mg, VOX, &need), DICE_STATUS_OK, "surface scratch len");
  double *surface_scratch = malloc(need * sizeof(double));
  DiceSurfaceDistances one;
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, mp, mg, VOX, 95.0, 1.0, surface_scratch, need, &one), DICE_STATUS_OK, "surface distances");
  double hd = 0.0;
  uint8_t hd_defined = 0;
  DiceSurfaceEmptyPolicy monai = {{DICE_EMPTY_DISTANCE_KIND_INFINITY, 0.0}, {DICE_EMPTY_DISTANCE_KIND_NAN, 0.0}, DICE_EMPTY_VALUE_NAN};
  expect(dice_surface_metric(&one, grid, DICE_SURFACE_METRIC_HAUSDORFF, monai, &hd, &hd_defined), DICE_STATUS_OK, "surface metric");
  printf("surface_one %.17g %d %.17g\n", hd, (int)hd_defined, one.mean_ref_to_pred);
  /* The same masks as surfels with areas (DeepMind's definition). */
  size_t need_s = 0;
  expect(dice_surface_scratch_len(DICE_SURFACE_ELEMENTS_SURFELS, grid, mp, mg, VOX, &need_s), DICE_STATUS_OK, "surfel scratch len");
  double *surfel_scratch = malloc(need_s * sizeof(double));
  DiceSurfaceDistances sf;
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_SURFELS, grid, mp, mg, VOX, 95.0, 1.0, surfel_scratch, need_s, &sf), DICE_STATUS_OK, "surfels");
  printf("surface_surfels %.17g %.17g %.17g\n", sf.pred_area, sf.mean_pred_to_ref, sf.percentile_ref_to_pred);
  expect(dice_surface_distances(7, grid, mp, mg, VOX, 95.0, 1.0, surfel_scratch, need_s, &sf), DICE_STATUS_INVALID_ENUM, "elements enum");
  free(surfel_scratch);
  /* A missing structure under a fixed penalty, and NSD. */
  DiceSurfaceDistances missing;
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, none_mask, mg, VOX, 95.0, 1.0, surface_scratch, need, &missing), DICE_STATUS_OK, "empty prediction");

  /* Components, lesion-wise BraTS scores and IoU detection of the same two masks. */
  size_t cc_need = 0;
  expect(dice_components_scratch_len(grid, &cc_need), DICE_STATUS_OK, "components scratch");
  uint32_t cc_labels[VOX], cc_scratch[VOX + 1], cc_count = 0;
  expect(cc_need <= VOX + 1 ? DICE_STATUS_OK : DICE_STATUS_LENGTH_MISMATCH, DICE_STATUS_OK, "scratch bound");
  expect(dice_connected_components(mp, VOX, grid, DICE_CONNECTIVITY_EIGHT, cc_labels, cc_scratch, cc_need, &cc_count),
         DICE_STATUS_OK, "components");
  printf("components %u", cc_count);
  for (size_t i = 0; i < VOX; i++) printf(" %u", cc_labels[i]);
  printf("\n");
  expect(dice_connected_components(mp, VOX, grid, DICE_CONNECTIVITY_TWENTY_SIX, cc_labels, cc_scratch, cc_need - 1, &cc_count),
         DICE_STATUS_LENGTH_MISMATCH, "components scratch too small");
  expect(dice_connected_components(mp, VOX, grid, 5, cc_labels, cc_scratch, cc_need, &cc_count), DICE_STATUS_INVALID_ENUM,
         "connectivity enum");
  DiceBratsParams bp;
  expect(dice_brats_params_default(DICE_BRATS_CHALLENGE_MET, &bp, sizeof bp), DICE_STATUS_OK, "brats params");
  DiceLesionWise lw;
  DiceLesion les[4];
  size_t nles = 0;
  expect(dice_lesion_wise(&bp, grid, mp, mg, VOX, &lw, les, 4, &nles), DICE_STATUS_OK, "lesion-wise");
  printf("lesion_wise %.17g %.17g %u %u %u %u %u %zu\n", lw.dice, lw.hd95, lw.tp, lw.fp, lw.fn_, lw.lesions, lw.components,
         nles);
  expect(dice_lesion_wise(&bp, grid, mp, mg, VOX - 1, &lw, les, 4, &nles), DICE_STATUS_LENGTH_MISMATCH, "lesion-wise len");
  expect(dice_lesion_wise(NULL, grid, mp, mg, VOX, &lw, les, 4, &nles), DICE_STATUS_NULL_POINTER, "lesion-wise params");
  DiceDetection det;
  expect(dice_lesion_detection(grid, mp, mg, VOX, DICE_CONNECTIVITY_EIGHT, 0.5, &det), DICE_STATUS_OK, "detection");
  printf("detection %u %u %u %.17g %llu %llu\n", det.tp, det.fp, det.fn_, det.pq, (unsigned long long)det.fp_voxels,
         (unsigned long long)det.fn_voxels);
  expect(dice_lesion_detection(grid, mp, mg, VOX, DICE_CONNECTIVITY_EIGHT, 0.2, &det), DICE_STATUS_INVALID_PARAMETER,
         "detection threshold");
  DiceSurfaceEmptyPolicy brats = {{DICE_EMPTY_DISTANCE_KIND_VALUE, 373.13}, {DICE_EMPTY_DISTANCE_KIND_ZERO, 0.0}, DICE_EMPTY_VALUE_ONE};
  double penalty = 0.0, nsd = -1.0;
  expect(dice_surface_metric(&missing, grid, DICE_SURFACE_METRIC_PERCENTILE_POOLED, brats, &penalty, &hd_defined), DICE_STATUS_OK, "penalty");
  expect(dice_surface_metric(&missing, grid, DICE_SURFACE_METRIC_NSD, brats, &nsd, &hd_defined), DICE_STATUS_OK, "nsd empty");
  if (missing.kind != DICE_SURFACE_KIND_PREDICTION_EMPTY || penalty != 373.13 || nsd != 0.0) failures++;
  /* Bad input: statuses. */
  DiceGrid flat = {{10, 10, 1}, {1.0, 0.0, 1.0}};
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, flat, mp, mg, VOX, 95.0, 1.0, surface_scratch, need, &one), DICE_STATUS_INVALID_PARAMETER, "zero spacing");
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, mp, mg, VOX, 95.0, 1.0, surface_scratch, need - 1, &one), DICE_STATUS_LENGTH_MISMATCH, "short scratch");
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, mp, mg, VOX - 1, 95.0, 1.0, surface_scratch, need, &one), DICE_STATUS_LENGTH_MISMATCH, "mask length");
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, mp, NULL, VOX, 95.0, 1.0, surface_scratch, need, &one), DICE_STATUS_NULL_POINTER, "NULL mask");
  expect(dice_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, grid, mp, mg, VOX, 101.0, 1.0, surface_scratch, need, &one), DICE_STATUS_INVALID_PARAMETER, "percentile");
  expect(dice_surface_metric(&one, grid, 42, monai, &hd, &hd_defined), DICE_STATUS_INVALID_ENUM, "surface metric enum");
  DiceSurfaceDistances forged = one;
  forged.pred_surface = 0;
  expect(dice_surface_metric(&forged, grid, DICE_SURFACE_METRIC_ASSD, monai, &hd, &hd_defined), DICE_STATUS_INVALID_PARAMETER, "forged distances");
  DiceGrid wide = {{(size_t)1 << 40, (size_t)1 << 40, 1}, {1.0, 1.0, 1.0}};
  expect(dice_label_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, DICE_LABEL_TYPE_U8, pred_labels, labels, VOX, wide, 0, 0, 95.0, tolerances, surf, C), DICE_STATUS_INVALID_PARAMETER, "grid overflowing size_t");
  DiceGrid other = {{20, 10, 1}, {1.0, 1.0, 1.0}};
  expect(dice_label_surface_distances(DICE_SURFACE_ELEMENTS_VOXELS, DICE_LABEL_TYPE_U8, pred_labels, labels, VOX, other, 0, 0, 95.0, tolerances, surf, C), DICE_STATUS_LENGTH_MISMATCH, "grid of another size");
  free(surface_scratch);

  /* Item by item, what used to abort, panic or mislead. */
  expect(dice_accumulator_new((size_t)1 << 40, 0.5, 0, 0, &z), DICE_STATUS_OUT_OF_MEMORY, "2^40 classes");
  if (z != NULL) failures++;
  expect(dice_accumulator_merge(NULL, NULL), DICE_STATUS_NULL_POINTER, "merge NULL NULL");
  /* A foreign pointer (zeroed memory of an accumulator's size) is not taken for one. */
  static uint64_t foreign[64];
  expect(dice_accumulator_update_labels((DiceAccumulator *)(void *)foreign, DICE_LABEL_TYPE_U8, pred_labels, labels, VOX), DICE_STATUS_INVALID_PARAMETER, "foreign accumulator");
  expect(dice_accumulator_finish((const DiceAccumulator *)(const void *)foreign, per_label, NULL, C), DICE_STATUS_INVALID_PARAMETER, "foreign finish");
  dice_accumulator_free((DiceAccumulator *)(void *)foreign);
  if (strstr(dice_last_error_message(), "not a live accumulator") == NULL) failures++;
  DiceConfusion overflow[1] = {{UINT64_MAX / 2 + 1, 5, 0, 0}};
  expect(dice_metrics(overflow, 1, DICE_METRIC_DICE, policy, values, defined), DICE_STATUS_INVALID_PARAMETER, "counts overflow");
  DiceStats impossible[N * C];
  memcpy(impossible, stats, sizeof impossible);
  impossible[1].intersection = impossible[1].pred + 10.0;
  expect(dice_soft_loss_from_stats(&params, shape, impossible, N * C, NULL, NULL, 0, &v), DICE_STATUS_INVALID_PARAMETER, "intersection > pred");
  if (strstr(dice_last_error_message(), "stats[1]") == NULL) failures++;
  impossible[1] = stats[1];
  impossible[2].target = -1.0;
  expect(dice_soft_loss_from_stats(&params, shape, impossible, N * C, NULL, NULL, 0, &v), DICE_STATUS_INVALID_PARAMETER, "negative sum");
  double ups[2] = {1.0, 1.0};
  expect(dice_soft_gradient_f32(&params, shape, pred, &dense, NULL, stats, N * C, ups, 2, grad, LEN), DICE_STATUS_LENGTH_MISMATCH, "upstream length");
  if (strstr(dice_last_error_message(), "NaN") != NULL || strstr(dice_last_error_message(), "2 values") == NULL) {
    fprintf(stderr, "FAIL upstream message: %s\n", dice_last_error_message());
    failures++;
  }
  if (strcmp(dice_status_str(DICE_STATUS_OUT_OF_MEMORY), "out of memory") != 0) failures++;
  dice_accumulator_free(a);
  dice_accumulator_free(b);
  dice_accumulator_free(NULL);
  if (strcmp(dice_status_str(12345), "unknown status") != 0) failures++;
  if (strcmp(dice_status_str(DICE_STATUS_OK), "ok") != 0) failures++;

  threads_identical();

  printf("failures %d\n", failures);
  return failures;
}
