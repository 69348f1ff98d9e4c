// A C++17 consumer of dice.hpp: the same data as api_test.c, through the wrapper's
// container overloads, RAII accumulator and exceptions. Prints "name v1 v2 ..." lines for
// tests/consumers.rs; exit status is the number of failed checks.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "dice.hpp"

namespace {
constexpr std::size_t N = 2, C = 3, S = 50, LEN = N * C * S, VOX = N * S;
int failures = 0;

float pred_at(std::size_t i) { return static_cast<float>((i * 7919u) % 1000u) / 1000.0f; }
std::uint8_t label_at(std::size_t i) { return static_cast<std::uint8_t>((i * 31u) % 3u); }
std::uint8_t pred_label_at(std::size_t i) { return static_cast<std::uint8_t>((i * 13u) % 3u); }

template <class F>
void expect_throw(F&& f, DiceStatus want, const char* what) {
  try {
    f();
    std::fprintf(stderr, "FAIL %s: no exception\n", what);
    failures++;
  } catch (const dice::Error& e) {
    if (e.status() != want || std::string(e.what()).empty()) {
      std::fprintf(stderr, "FAIL %s: status %d (%s)\n", what, static_cast<int>(e.status()), e.what());
      failures++;
    }
  }
}
}  // namespace

int main() {
  std::vector<float> pred(LEN), target(LEN);
  std::vector<std::uint8_t> labels(VOX), pred_labels(VOX);
  for (std::size_t i = 0; i < LEN; i++) pred[i] = pred_at(i);
  for (std::size_t v = 0; v < VOX; v++) {
    labels[v] = label_at(v);
    pred_labels[v] = pred_label_at(v);
  }
  for (std::size_t n = 0; n < N; n++)
    for (std::size_t c = 0; c < C; c++)
      for (std::size_t s = 0; s < S; s++) target[(n * C + c) * S + s] = labels[n * S + s] == c ? 1.0f : 0.0f;

  dice::SoftParams params;
  std::vector<float> grad;
  auto r = dice::soft_loss(params, DiceShape{N, C, S}, pred, dice::dense(target.data(), target.size()), &grad);
  std::printf("compatible %d %d.%d.%d %s\n", dice::library_is_compatible() ? 1 : 0, dice::version_major,
              dice::version_minor, dice::version_patch, dice::version());
  std::printf("soft_dense %.17g %zu %zu %.9g %.9g %.9g\n", r.value.value, r.value.groups, r.value.defined, grad[0], grad[7],
              grad[299]);

  {
    std::vector<float> logits(pred.size()), zgrad;
    for (std::size_t i = 0; i < pred.size(); i++) logits[i] = pred[i] * 4.0f - 2.0f;
    dice::SoftParams dsp;
    dsp.activation = DICE_ACTIVATION_SOFTMAX;
    dice::CompoundParams cp;
    auto c = dice::compound_loss(dsp, cp, DiceShape{N, C, S}, logits, dice::labels(labels.data(), labels.size()), zgrad);
    std::printf("compound_ce %.17g %.17g %.17g %zu %.9g\n", c.value.value, c.value.dice, c.value.term, zgrad.size(),
                zgrad[5]);
    expect_throw([&] { dice::compound_loss(params, cp, DiceShape{N, C, S}, logits, dice::labels(labels.data(), labels.size()), zgrad); },
                 DICE_STATUS_INVALID_PARAMETER, "compound without activation");
  }

  {
    std::vector<std::uint8_t> mp(VOX), mg(VOX);
    for (std::size_t i = 0; i < VOX; i++) {
      mp[i] = pred_labels[i] == 1;
      mg[i] = labels[i] == 1;
    }
    DiceGrid g{{10, 10, 1}, {1.0, 2.0, 1.0}};
    auto cc = dice::connected_components(mp, g, DICE_CONNECTIVITY_EIGHT);
    auto lw = dice::lesion_wise(mp, mg, g, DICE_BRATS_CHALLENGE_MET);
    std::printf("cpp_lesions %u %.17g %zu\n", cc.count, lw.scores.dice, lw.lesions.size());
  }

  auto per_label = dice::label_confusion(pred_labels, labels, C);
  std::printf("labels");
  for (const auto& c : per_label) {
    std::printf(" %llu %llu %llu %llu", static_cast<unsigned long long>(c.tp), static_cast<unsigned long long>(c.fp),
                static_cast<unsigned long long>(c.fn_), static_cast<unsigned long long>(c.tn));
  }
  std::printf("\n");
  // Surface distances of every label, and a metric of label 1 under the default policy.
  auto g = dice::grid(10, 10, 1, 1.0, 2.0, 1.0);
  auto surf = dice::label_surface_distances(g, pred_labels, labels, {1.0, 1.0, 2.5});
  std::printf("surface_labels");
  for (const auto& x : surf) {
    std::printf(" %d %llu %llu %.17g %.17g %.17g %.17g %llu", static_cast<int>(x.kind),
                static_cast<unsigned long long>(x.pred_surface), static_cast<unsigned long long>(x.ref_surface),
                x.max_pred_to_ref, x.max_ref_to_pred, x.percentile_pooled, x.mean_pred_to_ref,
                static_cast<unsigned long long>(x.ref_within_tolerance));
  }
  std::printf("\n");
  std::vector<std::uint8_t> m1(VOX), g1(VOX);
  for (std::size_t v = 0; v < VOX; v++) {
    m1[v] = pred_labels[v] == 1;
    g1[v] = labels[v] == 1;
  }
  auto one = dice::surface_distances(g, m1, g1, 95.0, 1.0);
  std::printf("surface_one %.17g 1 %.17g\n", dice::surface_metric(one, g, DICE_SURFACE_METRIC_HAUSDORFF).value_or(-1.0),
              one.mean_ref_to_pred);
  expect_throw([&] { dice::surface_distances(dice::grid(10, 10, 1, 1.0, -2.0, 1.0), m1, g1); },
               DICE_STATUS_INVALID_PARAMETER, "negative spacing");
  auto d = dice::metric(per_label[1], DICE_METRIC_DICE);
  std::printf("metric0_label1 %.17g\n", d.value_or(-1.0));
  auto c = dice::confusion(pred, target, 0.5);
  std::printf("confusion_prob %llu %llu %llu %llu\n", static_cast<unsigned long long>(c.tp), static_cast<unsigned long long>(c.fp),
              static_cast<unsigned long long>(c.fn_), static_cast<unsigned long long>(c.tn));

  // RAII accumulators, moved and merged.
  {
    dice::Accumulator a(C), b(C);
    std::vector<float> chunk_p(C * 50), chunk_g(C * 50);
    for (std::size_t half = 0; half < 2; half++) {
      for (std::size_t ch = 0; ch < C; ch++)
        for (std::size_t s = 0; s < 50; s++) {
          chunk_p[ch * 50 + s] = pred[ch * 100 + half * 50 + s];
          chunk_g[ch * 50 + s] = target[ch * 100 + half * 50 + s];
        }
      (half ? a : b).update(chunk_p.data(), chunk_g.data(), 50);
    }
    dice::Accumulator moved = std::move(a);
    moved.merge(b);
    auto totals = moved.finish();
    std::printf("accumulator_stats");
    for (const auto& s : totals.stats) std::printf(" %.17g %.17g %.17g", s.intersection, s.pred, s.target);
    std::printf("\n");
    expect_throw([&] { moved.update_labels(pred_labels.data(), labels.data(), std::numeric_limits<std::size_t>::max()); },
                 DICE_STATUS_SHAPE_OVERFLOW, "labels overflow");
  }

  // Errors become exceptions with the status and the message.
  expect_throw([&] { dice::Accumulator z(0); }, DICE_STATUS_EMPTY, "zero classes");
  std::vector<float> shorter(LEN - 1);
  expect_throw([&] { dice::confusion(pred, shorter); }, DICE_STATUS_LENGTH_MISMATCH, "container sizes");
  pred[5] = std::nanf("");
  expect_throw([&] { dice::soft_loss(params, DiceShape{N, C, S}, pred, dice::dense(target.data(), target.size())); },
               DICE_STATUS_NON_FINITE, "NaN");
  pred[5] = pred_at(5);
  dice::SoftParams bad;
  bad.score = 1234;
  expect_throw([&] { dice::soft_loss(bad, DiceShape{N, C, S}, pred, dice::dense(target.data(), target.size())); },
               DICE_STATUS_INVALID_ENUM, "score enum");
  std::vector<std::uint8_t> bad_labels = labels;
  bad_labels[3] = 9;
  expect_throw([&] { dice::label_confusion(pred_labels, bad_labels, C); }, DICE_STATUS_LABEL_OUT_OF_RANGE, "label");
  expect_throw(
      [&] { dice::soft_loss(params, DiceShape{std::numeric_limits<std::size_t>::max(), 2, 2}, pred.data(), dice::dense(target.data(), 1)); },
      DICE_STATUS_SHAPE_OVERFLOW, "shape overflow");

  std::printf("failures %d\n", failures);
  return failures;
}
