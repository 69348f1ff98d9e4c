/**
 * @file dice.hpp
 * @brief Header-only C++17 wrapper of dice.h: exceptions carrying the status and message,
 * an RAII accumulator, and overloads taking a pointer and a size or a contiguous container.
 */
#ifndef DICE_HPP
#define DICE_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dice.h"

namespace dice {

/** An error from the C API: its ::DiceStatus and dice_last_error_message(). */
class Error : public std::runtime_error {
 public:
  Error(DiceStatus status, const std::string& message) : std::runtime_error(message), status_(status) {}
  /** The status the C function returned. */
  DiceStatus status() const noexcept { return status_; }

 private:
  DiceStatus status_;
};

/** Throws dice::Error unless `status` is ::DICE_STATUS_OK. */
inline void check(DiceStatus status) {
  if (status != DICE_STATUS_OK) {
    throw Error(status, std::string(dice_status_str(static_cast<int32_t>(status))) + ": " + dice_last_error_message());
  }
}

/** The library version, "MAJOR.MINOR.PATCH" (of the library loaded at run time). */
inline const char* version() noexcept { return dice_version(); }

/** The version of this header (see the stability policy in dice.h). */
constexpr int version_major = DICE_VERSION_MAJOR;
constexpr int version_minor = DICE_VERSION_MINOR;
constexpr int version_patch = DICE_VERSION_PATCH;

/** Whether the library loaded at run time is on this header's compatibility line (the same
 *  SONAME) and not older than the header: what the stability policy promises to run. */
inline bool library_is_compatible() noexcept {
  int major = 0, minor = 0, patch = 0;
  const char* v = dice_version();
  int k = 0;
  int* parts[3] = {&major, &minor, &patch};
  for (const char* c = v; *c != '\0' && k < 3; ++c) {
    if (*c == '.') {
      ++k;
    } else if (*c >= '0' && *c <= '9') {
      *parts[k] = *parts[k] * 10 + (*c - '0');
    } else {
      break;
    }
  }
  if (major != version_major) return false;
  if (major == 0 && minor != version_minor) return false;
  if (minor != version_minor) return minor > version_minor;
  return patch >= version_patch;
}

namespace detail {
template <class C>
using element_t = std::remove_const_t<std::remove_pointer_t<decltype(std::data(std::declval<C&>()))>>;

template <class T>
struct label_type;
template <>
struct label_type<std::uint8_t> { static constexpr int32_t value = DICE_LABEL_TYPE_U8; static constexpr int32_t target = DICE_TARGET_KIND_LABELS_U8; };
template <>
struct label_type<std::uint16_t> { static constexpr int32_t value = DICE_LABEL_TYPE_U16; static constexpr int32_t target = DICE_TARGET_KIND_LABELS_U16; };
template <>
struct label_type<std::uint32_t> { static constexpr int32_t value = DICE_LABEL_TYPE_U32; static constexpr int32_t target = DICE_TARGET_KIND_LABELS_U32; };
template <>
struct label_type<std::int32_t> { static constexpr int32_t value = DICE_LABEL_TYPE_I32; static constexpr int32_t target = DICE_TARGET_KIND_LABELS_I32; };
template <>
struct label_type<std::int64_t> { static constexpr int32_t value = DICE_LABEL_TYPE_I64; static constexpr int32_t target = DICE_TARGET_KIND_LABELS_I64; };
}  // namespace detail

/** Soft-loss parameters, initialised to the library defaults (MONAI's). */
struct SoftParams : DiceSoftParams {
  SoftParams() : DiceSoftParams() { check(dice_soft_params_default(this, sizeof(DiceSoftParams))); }
};

/** The default empty policy of hard metrics (reference empty → 0, both empty → skipped). */
inline DiceEmptyPolicy default_policy() {
  DiceEmptyPolicy p{};
  check(dice_empty_policy_default(&p));
  return p;
}

/** A dense target `[N, C, S]` of floats or doubles. */
template <class T>
DiceTarget dense(const T* data, std::size_t len) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "dense targets are float or double");
  return DiceTarget{sizeof(DiceTarget), DICE_TARGET_KIND_DENSE, data, len, 0, 0};
}

/** A label-map target `[N, S]`, optionally with an ignore label. */
template <class L>
DiceTarget labels(const L* data, std::size_t len, std::optional<std::int64_t> ignore_index = std::nullopt) {
  return DiceTarget{sizeof(DiceTarget), detail::label_type<L>::target, data, len, static_cast<std::uint8_t>(ignore_index.has_value()),
                    ignore_index.value_or(0)};
}

/** A soft loss value with the per-(sample, class) statistics it came from. */
struct SoftLossResult {
  DiceLossValue value;
  std::vector<DiceStats> stats;
};

/** Soft loss of `pred` (`N·C·S` floats or doubles); `grad` (NULL, or `N·C·S`) receives the gradient. */
template <class T>
SoftLossResult soft_loss(const DiceSoftParams& params, DiceShape shape, const T* pred, const DiceTarget& target,
                         T* grad = nullptr, const std::uint8_t* mask = nullptr) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "predictions are float or double");
  SoftLossResult r{};
  if (shape.batch != 0 && shape.channels > SIZE_MAX / shape.batch) {
    check(DICE_STATUS_SHAPE_OVERFLOW);
  }
  r.stats.resize(shape.batch * shape.channels);
  const std::size_t grad_len = grad ? shape.batch * shape.channels * shape.spatial : 0;
  if constexpr (std::is_same_v<T, float>) {
    check(dice_soft_loss_f32(&params, shape, pred, &target, mask, r.stats.data(), r.stats.size(), grad, grad_len, &r.value));
  } else {
    check(dice_soft_loss_f64(&params, shape, pred, &target, mask, r.stats.data(), r.stats.size(), grad, grad_len, &r.value));
  }
  return r;
}

/** soft_loss() over containers; the gradient, when asked for, is resized to the prediction's size. */
template <class Pred>
SoftLossResult soft_loss(const DiceSoftParams& params, DiceShape shape, const Pred& pred, const DiceTarget& target,
                         std::vector<detail::element_t<Pred>>* grad = nullptr) {
  if (grad) {
    grad->resize(std::size(pred));
  }
  return soft_loss(params, shape, std::data(pred), target, grad ? grad->data() : nullptr);
}

/** Parameters of the voxel term of a compound loss, initialised to MONAI's `DiceCELoss`. */
struct CompoundParams : DiceCompoundParams {
  CompoundParams() : DiceCompoundParams() { check(dice_compound_params_default(this, sizeof(DiceCompoundParams))); }
};

/** A compound loss value with the Dice statistics it came from. */
struct CompoundLossResult {
  DiceCompoundValue value;
  std::vector<DiceStats> stats;
};

/**
 * Dice plus a voxel term over `logits` (`N·C·S` floats or doubles): `grad` (`N·C·S`) receives
 * ∂loss/∂logits. `dice.activation` must be sigmoid or softmax.
 */
template <class T>
CompoundLossResult compound_loss(const DiceSoftParams& dice, const DiceCompoundParams& params, DiceShape shape,
                                 const T* logits, const DiceTarget& target, T* grad,
                                 const std::uint8_t* mask = nullptr) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "logits are float or double");
  CompoundLossResult r{};
  if (shape.batch != 0 && shape.channels > SIZE_MAX / shape.batch) {
    check(DICE_STATUS_SHAPE_OVERFLOW);
  }
  r.stats.resize(shape.batch * shape.channels);
  const std::size_t len = shape.batch * shape.channels * shape.spatial;
  if constexpr (std::is_same_v<T, float>) {
    check(dice_compound_loss_f32(&dice, &params, shape, logits, &target, mask, r.stats.data(), r.stats.size(), grad, len,
                                 &r.value));
  } else {
    check(dice_compound_loss_f64(&dice, &params, shape, logits, &target, mask, r.stats.data(), r.stats.size(), grad, len,
                                 &r.value));
  }
  return r;
}

/** compound_loss() over containers; `grad` is resized to the logits' size. */
template <class Logits>
CompoundLossResult compound_loss(const DiceSoftParams& dice, const DiceCompoundParams& params, DiceShape shape,
                                 const Logits& logits, const DiceTarget& target,
                                 std::vector<detail::element_t<Logits>>& grad) {
  grad.resize(std::size(logits));
  return compound_loss(dice, params, shape, std::data(logits), target, grad.data());
}

/** Confusion counts of `pred ≥ threshold` against `target ≥ threshold`. */
inline DiceConfusion confusion(const float* pred, const float* target, std::size_t len, double threshold = 0.5) {
  DiceConfusion c{};
  check(dice_confusion_from_probabilities_f32(pred, target, len, threshold, &c));
  return c;
}

/** confusion() for doubles. */
inline DiceConfusion confusion(const double* pred, const double* target, std::size_t len, double threshold = 0.5) {
  DiceConfusion c{};
  check(dice_confusion_from_probabilities_f64(pred, target, len, threshold, &c));
  return c;
}

/** Confusion counts of two byte masks (non-zero = positive). */
inline DiceConfusion confusion(const std::uint8_t* pred, const std::uint8_t* target, std::size_t len) {
  DiceConfusion c{};
  check(dice_confusion_from_masks_u8(pred, target, len, &c));
  return c;
}

/** confusion() over two containers of the same size. */
template <class C>
DiceConfusion confusion(const C& pred, const C& target, double threshold = 0.5) {
  if (std::size(pred) != std::size(target)) {
    throw Error(DICE_STATUS_LENGTH_MISMATCH, "length mismatch: prediction and target sizes differ");
  }
  if constexpr (std::is_same_v<detail::element_t<C>, std::uint8_t>) {
    (void)threshold;
    return confusion(std::data(pred), std::data(target), std::size(pred));
  } else {
    return confusion(std::data(pred), std::data(target), std::size(pred), threshold);
  }
}

/** Per-label confusion counts of two label maps (labels `0..num_labels`), in one pass. */
template <class L>
std::vector<DiceConfusion> label_confusion(const L* pred, const L* target, std::size_t len, std::size_t num_labels,
                                           std::optional<std::int64_t> ignore_index = std::nullopt) {
  std::vector<DiceConfusion> out(num_labels);
  check(dice_label_confusion(detail::label_type<L>::value, pred, target, len,
                             static_cast<std::uint8_t>(ignore_index.has_value()), ignore_index.value_or(0), out.data(),
                             out.size(), nullptr));
  return out;
}

/** label_confusion() over two containers. */
template <class C>
std::vector<DiceConfusion> label_confusion(const C& pred, const C& target, std::size_t num_labels,
                                           std::optional<std::int64_t> ignore_index = std::nullopt) {
  if (std::size(pred) != std::size(target)) {
    throw Error(DICE_STATUS_LENGTH_MISMATCH, "length mismatch: prediction and target sizes differ");
  }
  return label_confusion(std::data(pred), std::data(target), std::size(pred), num_labels, ignore_index);
}

/** One hard metric (a ::DiceMetric) of counts under `policy`; empty when the policy skips it. */
inline std::optional<double> metric(const DiceConfusion& counts, int32_t which, DiceEmptyPolicy policy = default_policy()) {
  double value = 0;
  std::uint8_t defined = 0;
  check(dice_metrics(&counts, 1, which, policy, &value, &defined));
  return defined ? std::optional<double>(value) : std::nullopt;
}

/** A grid of `x × y × z` voxels (`z = 1` for 2-D) of `sx × sy × sz` mm. */
inline DiceGrid grid(std::size_t x, std::size_t y, std::size_t z, double sx, double sy, double sz) {
  return DiceGrid{{x, y, z}, {sx, sy, sz}};
}

/** Surface distances of two byte masks on `g` (scratch allocated here, sized by dice_surface_scratch_len());
 *  `elements` a ::DiceSurfaceElements (voxels, or surfels with areas). */
inline DiceSurfaceDistances surface_distances(DiceGrid g, const std::uint8_t* pred, const std::uint8_t* target,
                                              std::size_t len, double percentile = 95.0, double tolerance = 0.0,
                                              int32_t elements = DICE_SURFACE_ELEMENTS_VOXELS) {
  std::size_t need = 0;
  check(dice_surface_scratch_len(elements, g, pred, target, len, &need));
  std::vector<double> scratch(need);
  DiceSurfaceDistances out{};
  check(dice_surface_distances(elements, g, pred, target, len, percentile, tolerance, scratch.data(), scratch.size(),
                               &out));
  return out;
}

/** surface_distances() over two containers of bytes. */
template <class C>
DiceSurfaceDistances surface_distances(DiceGrid g, const C& pred, const C& target, double percentile = 95.0,
                                       double tolerance = 0.0, int32_t elements = DICE_SURFACE_ELEMENTS_VOXELS) {
  if (std::size(pred) != std::size(target)) {
    throw Error(DICE_STATUS_LENGTH_MISMATCH, "length mismatch: prediction and target sizes differ");
  }
  return surface_distances(g, std::data(pred), std::data(target), std::size(pred), percentile, tolerance, elements);
}

/** Surface distances of every label `0..tolerances.size()` of two label maps, one NSD tolerance per label. */
template <class L>
std::vector<DiceSurfaceDistances> label_surface_distances(DiceGrid g, const L* pred, const L* target, std::size_t len,
                                                          const std::vector<double>& tolerances,
                                                          double percentile = 95.0,
                                                          std::optional<std::int64_t> ignore_index = std::nullopt,
                                                          int32_t elements = DICE_SURFACE_ELEMENTS_VOXELS) {
  std::vector<DiceSurfaceDistances> out(tolerances.size());
  check(dice_label_surface_distances(elements, detail::label_type<L>::value, pred, target, len, g,
                                     static_cast<std::uint8_t>(ignore_index.has_value()), ignore_index.value_or(0),
                                     percentile, tolerances.data(), out.data(), out.size()));
  return out;
}

/** label_surface_distances() over two containers. */
template <class C>
std::vector<DiceSurfaceDistances> label_surface_distances(DiceGrid g, const C& pred, const C& target,
                                                          const std::vector<double>& tolerances,
                                                          double percentile = 95.0,
                                                          std::optional<std::int64_t> ignore_index = std::nullopt,
                                                          int32_t elements = DICE_SURFACE_ELEMENTS_VOXELS) {
  if (std::size(pred) != std::size(target)) {
    throw Error(DICE_STATUS_LENGTH_MISMATCH, "length mismatch: prediction and target sizes differ");
  }
  return label_surface_distances(g, std::data(pred), std::data(target), std::size(pred), tolerances, percentile,
                                 ignore_index, elements);
}

/** The default surface policy: the image diagonal with one mask empty, skipped with both, NSD skipped with both. */
inline DiceSurfaceEmptyPolicy default_surface_policy() {
  return DiceSurfaceEmptyPolicy{{DICE_EMPTY_DISTANCE_KIND_DIAGONAL, 0.0}, {DICE_EMPTY_DISTANCE_KIND_SKIP, 0.0},
                                DICE_EMPTY_VALUE_SKIP};
}

/** One surface metric (a ::DiceSurfaceMetric) under `policy`; empty when the policy skips it. */
inline std::optional<double> surface_metric(const DiceSurfaceDistances& d, DiceGrid g, int32_t which,
                                            DiceSurfaceEmptyPolicy policy = default_surface_policy()) {
  double value = 0;
  std::uint8_t defined = 0;
  check(dice_surface_metric(&d, g, which, policy, &value, &defined));
  return defined ? std::optional<double>(value) : std::nullopt;
}

/** Connected components of a mask: one label per voxel (0 background) and their count. */
struct Components {
  std::vector<std::uint32_t> labels;
  std::uint32_t count = 0;
};

/** Labels the components of `mask` (`grid`'s voxel count, x fastest). */
inline Components connected_components(const std::vector<std::uint8_t>& mask, DiceGrid grid,
                                       int32_t connectivity = DICE_CONNECTIVITY_TWENTY_SIX) {
  std::size_t need = 0;
  check(dice_components_scratch_len(grid, &need));
  Components c;
  c.labels.resize(mask.size());
  std::vector<std::uint32_t> scratch(need);
  check(dice_connected_components(mask.data(), mask.size(), grid, connectivity, c.labels.data(), scratch.data(),
                                  scratch.size(), &c.count));
  return c;
}

/** A region's lesion-wise result with every lesion. */
struct LesionWiseResult {
  DiceLesionWise scores{};
  std::vector<DiceLesion> lesions;
};

/** BraTS lesion-wise Dice and HD95 of two masks of one region (constants of `challenge`). */
inline LesionWiseResult lesion_wise(const std::vector<std::uint8_t>& pred, const std::vector<std::uint8_t>& target,
                                    DiceGrid grid, int32_t challenge = DICE_BRATS_CHALLENGE_GLI) {
  DiceBratsParams p{};
  check(dice_brats_params_default(challenge, &p, sizeof p));
  LesionWiseResult r;
  std::size_t n = 0;
  check(dice_lesion_wise(&p, grid, pred.data(), target.data(), pred.size(), &r.scores, nullptr, 0, &n));
  r.lesions.resize(n);
  check(dice_lesion_wise(&p, grid, pred.data(), target.data(), pred.size(), &r.scores, r.lesions.data(), n, &n));
  return r;
}

/** Per-class soft statistics and hard counts over a volume seen chunk by chunk (RAII). */
class Accumulator {
 public:
  /** `classes` classes; `threshold` binarises probability chunks; `ignore_index` is left out of label chunks. */
  explicit Accumulator(std::size_t classes, double threshold = 0.5, std::optional<std::int64_t> ignore_index = std::nullopt)
      : classes_(classes) {
    check(dice_accumulator_new(classes, threshold, static_cast<std::uint8_t>(ignore_index.has_value()),
                               ignore_index.value_or(0), &handle_));
  }
  ~Accumulator() { dice_accumulator_free(handle_); }
  Accumulator(const Accumulator&) = delete;
  Accumulator& operator=(const Accumulator&) = delete;
  Accumulator(Accumulator&& o) noexcept : handle_(std::exchange(o.handle_, nullptr)), classes_(o.classes_) {}
  Accumulator& operator=(Accumulator&& o) noexcept {
    if (this != &o) {
      dice_accumulator_free(handle_);
      handle_ = std::exchange(o.handle_, nullptr);
      classes_ = o.classes_;
    }
    return *this;
  }

  /** Adds a `[C, voxels]` chunk of probabilities. */
  void update(const float* pred, const float* target, std::size_t voxels) {
    check(dice_accumulator_update_probabilities_f32(handle_, pred, target, voxels));
  }

  /** Adds a chunk of two label maps of `voxels` voxels. */
  template <class L>
  void update_labels(const L* pred, const L* target, std::size_t voxels) {
    check(dice_accumulator_update_labels(handle_, detail::label_type<L>::value, pred, target, voxels));
  }

  /** Adds everything `other` has seen. */
  void merge(const Accumulator& other) { check(dice_accumulator_merge(handle_, other.handle_)); }

  /** The totals. */
  struct Totals {
    std::vector<DiceConfusion> counts;
    std::vector<DiceStats> stats;
  };

  /** Copies the totals out. */
  Totals finish() const {
    Totals t{std::vector<DiceConfusion>(classes_), std::vector<DiceStats>(classes_)};
    check(dice_accumulator_finish(handle_, t.counts.data(), t.stats.data(), classes_));
    return t;
  }

 private:
  DiceAccumulator* handle_ = nullptr;
  std::size_t classes_;
};

}  // namespace dice

#endif  // DICE_HPP
