// dice-tch's LibTorch shim: one torch::autograd::Function for every soft loss of dice.
//
// CPU tensors: forward and backward call dice's C ABI (dice.h, implemented by dice-core through
// dice-ffi) over the tensors' memory: contiguous float/double are used without a copy,
// half/bfloat16 are upcast to float. Forward computes the loss and its closed-form gradient at
// once and saves only that gradient; backward returns grad_output × gradient. No graph of
// element-wise operations is kept.
//
// Other devices (CUDA): the same closed form with ATen operations on the device. The loss is a
// function of per-(sample, class) statistics (Σp·g, Σp, Σg); the statistics are sums on the
// device, the tiny loss-from-statistics graph gives ∂loss/∂statistics by autograd, and the
// per-element gradient is k_I·g + k_P·∂P/∂p through the activation, again on the device.
// The ATen path also runs on CPU when asked (force_aten), which is how it is tested on
// machines without a GPU.
//
// Double backward raises an error (as PyTorch's @once_differentiable) instead of returning a
// silently wrong second derivative.

#include <torch/csrc/autograd/functions/basic_ops.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "dice.h"

namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check(DiceStatus s) {
  TORCH_CHECK(s == DICE_STATUS_OK, "dice: ", dice_status_str(static_cast<int32_t>(s)), ": ",
              dice_last_error_message());
}

// ---------------------------------------------------------------------------------------------
// Options carried from forward to backward
// ---------------------------------------------------------------------------------------------

struct Options {
  DiceSoftParams params;
  bool has_ignore = false;
  int64_t ignore_index = 0;
  bool force_aten = false;
};

std::string pack(const Options& o) { return std::string(reinterpret_cast<const char*>(&o), sizeof o); }

// LibTorch's intra-op pool lent to dice: the chunks of a pass run under at::parallel_for (one
// task per chunk, grain 1), on as many threads as torch::set_num_threads allows. dice adds the
// chunks' sums in a fixed order, so the loss and gradient have the same bits on any number of
// threads.
void aten_run(void*, size_t tasks, DiceTask task, void* task_context) {
  at::parallel_for(0, static_cast<int64_t>(tasks), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) task(task_context, static_cast<size_t>(i));
  });
}

/// A buffer for a gradient (or the probabilities): like `like`, and for buffers of 32 MiB or
/// more, backed by transparent huge pages where the kernel allows them on request
/// (`/sys/kernel/mm/transparent_hugepage/enabled` = madvise, the common default). A fresh
/// 512 MiB gradient otherwise costs 131 072 page faults, more time than the loss itself; with
/// 2 MiB pages it costs 256. Only this buffer's pages are affected (the 2 MiB-aligned
/// interior); PyTorch's THP_MEM_ALLOC_ENABLE=1 does the same for every large allocation.
Tensor gradient_buffer(const Tensor& like) {
  Tensor t = at::empty_like(like, at::MemoryFormat::Contiguous);
#ifdef __linux__
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const size_t bytes = t.nbytes();
  if (bytes >= (size_t{32} << 20)) {
    const auto begin = reinterpret_cast<uintptr_t>(t.data_ptr());
    const uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1), last = (begin + bytes) & ~(kHuge - 1);
    // Advice only: an error (no THP support) leaves ordinary pages.
    if (last > first) (void)madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
  }
#endif
  return t;
}

/// The executor for a call made on this thread, with torch's current thread count.
const DiceExecutor* aten_pool() {
  thread_local DiceExecutor e{nullptr, 1, aten_run};
  e.threads = static_cast<size_t>(std::max(1, at::get_num_threads()));
  return &e;
}

Options unpack(const std::string& s, const Tensor& weights) {
  Options o;
  TORCH_INTERNAL_ASSERT(s.size() == sizeof o);
  std::memcpy(&o, s.data(), sizeof o);
  o.params.executor = aten_pool();
  if (weights.defined() && weights.numel() > 0) {
    o.params.class_weights = weights.data_ptr<double>();
    o.params.class_weights_len = static_cast<size_t>(weights.numel());
  } else {
    o.params.class_weights = nullptr;
    o.params.class_weights_len = 0;
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Input checks and layout
// ---------------------------------------------------------------------------------------------

struct Layout {
  int64_t n, c, s;
};

Layout layout(const Tensor& input) {
  TORCH_CHECK(input.dim() >= 2, "dice: input must be [N, C, ...]; got shape ", input.sizes());
  TORCH_CHECK(input.numel() > 0, "dice: input is empty: ", input.sizes());
  TORCH_CHECK(at::isFloatingType(input.scalar_type()), "dice: input must be floating point; got ",
              input.scalar_type());
  const int64_t n = input.size(0), c = input.size(1);
  return Layout{n, c, input.numel() / (n * c)};
}

bool is_dense(const Tensor& input, const Tensor& target) {
  if (at::isFloatingType(target.scalar_type())) return true;
  // A boolean target with the input's size is a one-hot/multi-label mask.
  return target.scalar_type() == at::kBool && target.numel() == input.numel();
}

void check_target(const Tensor& input, const Tensor& target, const Tensor& mask, const Layout& l) {
  TORCH_CHECK(target.device() == input.device(), "dice: target is on ", target.device(), " but input on ",
              input.device());
  if (is_dense(input, target)) {
    TORCH_CHECK(target.numel() == input.numel(), "dice: a dense target must have the input's shape ",
                input.sizes(), "; got ", target.sizes());
  } else {
    TORCH_CHECK(at::isIntegralType(target.scalar_type(), /*includeBool=*/false),
                "dice: target must be floating (dense) or integer (a label map); got ", target.scalar_type());
    TORCH_CHECK(target.numel() == l.n * l.s, "dice: a label map must have N·S = ", l.n * l.s,
                " elements ([N, 1, ...] or [N, ...]); got ", target.sizes());
  }
  if (mask.defined()) {
    TORCH_CHECK(mask.device() == input.device(), "dice: mask is on ", mask.device(), " but input on ", input.device());
    TORCH_CHECK(mask.numel() == l.n * l.s, "dice: the mask must have N·S = ", l.n * l.s, " elements; got ",
                mask.sizes());
  }
}

/// The compute dtype: float and double as they are, half and bfloat16 upcast to float.
Tensor compute_input(const Tensor& input) {
  auto st = input.scalar_type();
  Tensor x = (st == at::kFloat || st == at::kDouble) ? input : input.to(at::kFloat);
  return x.contiguous();
}

struct CpuView {
  Tensor input, target, mask;
  DiceShape shape;
  DiceTarget t;
};

CpuView cpu_view(const Tensor& input, const Tensor& target, const Tensor& mask, const Options& o) {
  const Layout l = layout(input);
  check_target(input, target, mask, l);
  CpuView v;
  v.input = compute_input(input);
  v.shape = DiceShape{static_cast<size_t>(l.n), static_cast<size_t>(l.c), static_cast<size_t>(l.s)};
  int32_t kind = DICE_TARGET_KIND_DENSE;
  if (is_dense(input, target)) {
    v.target = target.to(v.input.scalar_type()).contiguous();
  } else {
    auto lt = target.scalar_type();
    v.target = (lt == at::kByte || lt == at::kInt || lt == at::kLong) ? target.contiguous()
                                                                         : target.to(at::kLong).contiguous();
    lt = v.target.scalar_type();
    kind = lt == at::kByte ? DICE_TARGET_KIND_LABELS_U8 : lt == at::kInt ? DICE_TARGET_KIND_LABELS_I32
                                                                        : DICE_TARGET_KIND_LABELS_I64;
  }
  if (mask.defined()) v.mask = mask.to(at::kByte).contiguous();
  v.t = DiceTarget{sizeof(DiceTarget), kind, v.target.data_ptr(), static_cast<size_t>(v.target.numel()),
                   static_cast<uint8_t>(o.has_ignore), o.ignore_index};
  return v;
}

const uint8_t* mask_ptr(const Tensor& m) { return m.defined() ? m.data_ptr<uint8_t>() : nullptr; }

/// The shape of a reduction-NONE result: [N, C'], [C'] with batch, [N] or [1] for generalized Dice.
std::vector<int64_t> group_shape(const Options& o, int64_t n, int64_t groups) {
  if (o.params.score == DICE_SCORE_GENERALIZED || o.params.batch) return {groups};
  return {n, groups / n};
}

// ---------------------------------------------------------------------------------------------
// The ATen path: the same closed form with tensor operations on the input's device
// ---------------------------------------------------------------------------------------------

/// The soft-label intersection applies (with squared moments both forms are Σp·g).
bool soft_label(const Options& o) { return o.params.soft_label && !o.params.squared_pred; }

/// ∂I/∂p per element: g, or for soft labels (1 − sign(p − g))/2 with g at p = g (dice-core's
/// subgradient, the classic form's gradient there).
Tensor intersection_slope(const Tensor& prob, const Tensor& g, const Options& o) {
  if (!soft_label(o)) return g;
  return at::where(prob.lt(g), at::ones_like(g), at::where(prob.gt(g), at::zeros_like(g), g));
}

struct AtenStats {
  Tensor prob, g, valid;  // [N, C, S] probabilities and target, [N, 1, S] validity (or undefined)
  Tensor i, p, gs;        // [N, C] Σp·g, Σp (or Σp²), Σg (or Σg²)
};

AtenStats aten_stats(const Tensor& input, const Tensor& target, const Tensor& mask, const Options& o) {
  const Layout l = layout(input);
  check_target(input, target, mask, l);
  const auto& p = o.params;
  Tensor x = compute_input(input).reshape({l.n, l.c, l.s});
  AtenStats r;
  r.prob = p.activation == DICE_ACTIVATION_SIGMOID ? x.sigmoid()
           : p.activation == DICE_ACTIVATION_SOFTMAX ? x.softmax(1)
                                                     : x;
  Tensor valid;
  if (is_dense(input, target)) {
    r.g = target.reshape({l.n, l.c, l.s}).to(x.scalar_type());
  } else {
    Tensor lab = target.reshape({l.n, l.s}).to(at::kLong);
    Tensor counted = o.has_ignore ? lab.ne(o.ignore_index) : at::ones_like(lab, at::kBool);
    Tensor in_range = lab.ge(0).logical_and(lab.lt(l.c));
    TORCH_CHECK(in_range.logical_or(counted.logical_not()).all().item<bool>(),
                "dice: the label map holds a label outside 0..", l.c, " that is not the ignore label");
    r.g = lab.unsqueeze(1).eq(at::arange(l.c, lab.options()).view({1, l.c, 1})).to(x.scalar_type());
    if (o.has_ignore) valid = counted;
  }
  if (mask.defined()) {
    Tensor m = mask.reshape({l.n, l.s}).to(at::kBool);
    valid = valid.defined() ? valid.logical_and(m) : m;
  }
  if (valid.defined()) r.valid = valid.unsqueeze(1).to(x.scalar_type());
  Tensor pm = r.valid.defined() ? r.prob * r.valid : r.prob;
  Tensor gm = r.valid.defined() ? r.g * r.valid : r.g;
  r.p = p.squared_pred ? (pm * r.prob).sum(2) : pm.sum(2);
  r.gs = p.squared_pred ? (gm * r.g).sum(2) : gm.sum(2);
  if (soft_label(o)) {
    // I = (P + G − Σ|p − g|)/2: right for soft targets, Σp·g for binary ones.
    Tensor d = (r.prob - r.g).abs();
    if (r.valid.defined()) d = d * r.valid;
    r.i = (0.5 * (r.p + r.gs - d.sum(2))).clamp_min(0);
  } else {
    r.i = (pm * r.g).sum(2);
  }
  return r;
}

/// Group losses from statistics [N, C] (differentiable in i and p), and which groups count.
struct GroupLosses {
  Tensor loss;     // one per group
  Tensor defined;  // bool, one per group
};

GroupLosses aten_group_losses(const Tensor& i_all, const Tensor& p_all, const Tensor& g_all, const Options& o,
                              const Tensor& weights) {
  const auto& p = o.params;
  const int64_t c = i_all.size(1), first = p.include_background ? 0 : 1;
  TORCH_CHECK(c > first, "dice: excluding the background of a single-channel prediction leaves no class");
  Tensor I = i_all.narrow(1, first, c - first), P = p_all.narrow(1, first, c - first),
         G = g_all.narrow(1, first, c - first);
  if (p.batch) {
    I = I.sum(0, true);
    P = P.sum(0, true);
    G = G.sum(0, true);
  }
  Tensor num, den;
  switch (p.score) {
    case DICE_SCORE_DICE:
      num = 2 * I + p.smooth_nr;
      den = P + G + p.smooth_dr;
      break;
    case DICE_SCORE_JACCARD:
      num = 2 * I + p.smooth_nr;
      den = 2 * (P + G - I) + p.smooth_dr;
      break;
    case DICE_SCORE_TVERSKY:
      num = I + p.smooth_nr;
      den = I + p.alpha * (P - I) + p.beta * (G - I) + p.smooth_dr;
      break;
    case DICE_SCORE_GENERALIZED: {
      Tensor present = G.gt(0);
      Tensor safe = at::where(present, G, at::ones_like(G));
      Tensor w = p.weighting == DICE_WEIGHTING_SQUARE   ? 1.0 / (safe * safe)
                 : p.weighting == DICE_WEIGHTING_SIMPLE ? 1.0 / safe
                                                        : at::ones_like(G);
      if (p.weighting != DICE_WEIGHTING_UNIFORM) {
        Tensor raw = at::where(present, w, at::zeros_like(w));
        Tensor fill = at::where(present.any(1, true), std::get<0>(raw.max(1, true)), at::ones_like(raw.narrow(1, 0, 1)));
        w = at::where(present, w, fill.expand_as(w));
      }
      w = w.detach();
      num = (2 * w * I).sum(1, true) + p.smooth_nr;
      den = (w * (P + G)).sum(1, true) + p.smooth_dr;
      break;
    }
    default:
      TORCH_CHECK(false, "dice: unknown score ", p.score);
  }
  Tensor zero = den.eq(0);
  Tensor score = num / at::where(zero, at::ones_like(den), den);
  Tensor defined = at::ones_like(zero);
  if (p.zero_denominator == DICE_EMPTY_VALUE_SKIP) {
    defined = zero.logical_not();
  } else {
    double v = p.zero_denominator == DICE_EMPTY_VALUE_NAN    ? std::numeric_limits<double>::quiet_NaN()
               : p.zero_denominator == DICE_EMPTY_VALUE_ONE ? 1.0
                                                            : 0.0;
    score = at::where(zero, at::full_like(score, v), score);
  }
  Tensor loss;
  if (p.form == DICE_LOSS_FORM_NEGATIVE) {
    TORCH_CHECK(p.gamma == 1.0, "dice: the focal exponent needs a non-negative loss: not with the form -score");
    loss = -score;
  } else if (p.form == DICE_LOSS_FORM_NEG_LOG) {
    Tensor bad = score.le(0).logical_and(defined);
    TORCH_CHECK(!bad.any().item<bool>(), "dice: -ln(score) is undefined for a score <= 0: set smooth_nr > 0");
    loss = -at::where(defined, score, at::ones_like(score)).log();
  } else {
    loss = 1 - score;
  }
  if (p.gamma != 1.0) {
    Tensor pos = loss.gt(0);
    loss = at::where(pos, at::where(pos, loss, at::ones_like(loss)).pow(p.gamma), at::zeros_like(loss));
  }
  if (weights.defined() && weights.numel() > 0 && p.score != DICE_SCORE_GENERALIZED) {
    loss = loss * weights.to(loss.options()).narrow(0, first, c - first).view({1, c - first});
  }
  return GroupLosses{loss.reshape({-1}), defined.reshape({-1})};
}

Tensor reduce(const GroupLosses& gl, int32_t reduction) {
  Tensor kept = at::where(gl.defined, gl.loss, at::zeros_like(gl.loss));
  if (reduction == DICE_REDUCTION_MEAN) return kept.sum() / gl.defined.sum().clamp_min(1).to(kept.scalar_type());
  if (reduction == DICE_REDUCTION_SUM) return kept.sum();
  return at::where(gl.defined, gl.loss, at::full_like(gl.loss, std::numeric_limits<double>::quiet_NaN()));
}

/// ∂(Σ upstream·loss)/∂input by the closed form, on the input's device.
Tensor aten_gradient(const Tensor& input, const Tensor& target, const Tensor& mask, const Options& o,
                     const Tensor& weights, const Tensor& upstream) {
  AtenStats st = aten_stats(input, target, mask, o);
  Tensor ki, kp;
  {
    torch::AutoGradMode enable(true);
    Tensor i = st.i.detach().requires_grad_(true), p = st.p.detach().requires_grad_(true);
    GroupLosses gl = aten_group_losses(i, p, st.gs.detach(), o, weights);
    Tensor reduced = reduce(gl, o.params.reduction);
    Tensor objective = o.params.reduction == DICE_REDUCTION_NONE
                           ? at::where(gl.defined, gl.loss * upstream.to(gl.loss.options()).reshape({-1}),
                                       at::zeros_like(gl.loss))
                                 .sum()
                           : reduced * upstream.to(reduced.options()).reshape({});
    auto grads = torch::autograd::grad({objective}, {i, p}, {}, false, false, true);
    ki = grads[0].defined() ? grads[0] : at::zeros_like(st.i);
    kp = grads[1].defined() ? grads[1] : at::zeros_like(st.p);
  }
  Tensor dp = ki.unsqueeze(2) * intersection_slope(st.prob, st.g, o) +
              (o.params.squared_pred ? 2 * kp.unsqueeze(2) * st.prob : kp.unsqueeze(2));
  if (st.valid.defined()) dp = dp * st.valid;
  Tensor dz = o.params.activation == DICE_ACTIVATION_SIGMOID ? dp * st.prob * (1 - st.prob)
              : o.params.activation == DICE_ACTIVATION_SOFTMAX
                  ? st.prob * (dp - (st.prob * dp).sum(1, true))
                  : dp;
  return dz.reshape(input.sizes()).to(input.scalar_type());
}

// ---------------------------------------------------------------------------------------------
// The autograd function
// ---------------------------------------------------------------------------------------------

enum Saved : int64_t { kScalarGrad = 0, kCpuNone = 1, kAten = 2 };

/// Returns `g` connected to an error node: differentiating it again raises (once_differentiable).
Tensor once_differentiable(const Tensor& g) {
  auto node = std::make_shared<torch::autograd::DelayedError>(
      "dice-tch: double backward is not supported: the loss's backward is not differentiable (it "
      "returns grad_output times a closed-form gradient); compute second-order terms with another loss",
      1);
  Tensor leaf = g.detach().requires_grad_(true);
  return (*node)({leaf})[0];
}

/// The C view of tensors saved by forward (already contiguous, in the compute dtype).
struct SavedView {
  DiceShape shape;
  DiceTarget t;
};

SavedView saved_view(const Tensor& input, const Tensor& target, const Options& o) {
  const int64_t n = input.size(0), c = input.size(1);
  int32_t kind = DICE_TARGET_KIND_DENSE;
  if (!at::isFloatingType(target.scalar_type())) {
    kind = target.scalar_type() == at::kByte  ? DICE_TARGET_KIND_LABELS_U8
           : target.scalar_type() == at::kInt ? DICE_TARGET_KIND_LABELS_I32
                                              : DICE_TARGET_KIND_LABELS_I64;
  }
  return SavedView{
      DiceShape{static_cast<size_t>(n), static_cast<size_t>(c), static_cast<size_t>(input.numel() / (n * c))},
      DiceTarget{sizeof(DiceTarget), kind, target.data_ptr(), static_cast<size_t>(target.numel()), static_cast<uint8_t>(o.has_ignore),
                 o.ignore_index}};
}

/// The gradient of a scalar reduction again, for a second backward through a retained graph.
Tensor recompute_gradient(const variable_list& saved, const std::string& packed) {
  const Tensor &input = saved[0], &target = saved[1], &mask = saved[2], &weights = saved[3];
  const Options o = unpack(packed, weights);
  const SavedView sv = saved_view(input, target, o);
  const DiceShape& shape = sv.shape;
  const DiceTarget& t = sv.t;
  const int64_t n = input.size(0), c = input.size(1);
  const size_t pairs = static_cast<size_t>(n * c), len = static_cast<size_t>(input.numel());
  Tensor stats = at::empty({static_cast<int64_t>(pairs * sizeof(DiceStats))}, at::kByte);
  auto* st = reinterpret_cast<DiceStats*>(stats.data_ptr());
  Tensor grad = gradient_buffer(input);
  DiceLossValue value{};
  check(input.scalar_type() == at::kDouble
            ? dice_soft_loss_f64(&o.params, shape, input.data_ptr<double>(), &t, mask_ptr(mask), st, pairs,
                                 grad.data_ptr<double>(), len, &value)
            : dice_soft_loss_f32(&o.params, shape, input.data_ptr<float>(), &t, mask_ptr(mask), st, pairs,
                                 grad.data_ptr<float>(), len, &value));
  return grad;
}

struct DiceFunction : public torch::autograd::Function<DiceFunction> {
  // `mask` and `weights` are optional and never differentiated: passed as std::optional so that
  // autograd does not track them (it cannot track an undefined tensor).
  static Tensor forward(AutogradContext* ctx, Tensor input, Tensor target, std::optional<Tensor> mask_opt,
                        std::optional<Tensor> weights_opt, std::string packed) {
    const Tensor mask = mask_opt.value_or(Tensor()), weights = weights_opt.value_or(Tensor());
    const Options o = unpack(packed, weights);
    ctx->saved_data["options"] = packed;
    ctx->saved_data["input_dtype"] = static_cast<int64_t>(input.scalar_type());
    ctx->saved_data["input_sizes"] = input.sizes().vec();
    const Layout l = layout(input);
    if (o.force_aten || !input.is_cpu()) {
      AtenStats st = aten_stats(input, target, mask, o);
      GroupLosses gl = aten_group_losses(st.i, st.p, st.gs, o, weights);
      Tensor out = reduce(gl, o.params.reduction);
      ctx->saved_data["mode"] = static_cast<int64_t>(kAten);
      ctx->save_for_backward({input, target, mask, weights});
      if (o.params.reduction == DICE_REDUCTION_NONE) out = out.reshape(group_shape(o, l.n, out.numel()));
      return out.to(input.scalar_type());
    }
    CpuView v = cpu_view(input, target, mask, o);
    const size_t pairs = v.shape.batch * v.shape.channels, len = static_cast<size_t>(v.input.numel());
    Tensor stats = at::empty({static_cast<int64_t>(pairs * sizeof(DiceStats))}, at::kByte);
    auto* st = reinterpret_cast<DiceStats*>(stats.data_ptr());
    const bool f64 = v.input.scalar_type() == at::kDouble;
    DiceLossValue value{};
    if (o.params.reduction != DICE_REDUCTION_NONE) {
      Tensor grad = gradient_buffer(v.input);
      check(f64 ? dice_soft_loss_f64(&o.params, v.shape, v.input.data_ptr<double>(), &v.t, mask_ptr(v.mask), st, pairs,
                                     grad.data_ptr<double>(), len, &value)
                : dice_soft_loss_f32(&o.params, v.shape, v.input.data_ptr<float>(), &v.t, mask_ptr(v.mask), st, pairs,
                                     grad.data_ptr<float>(), len, &value));
      ctx->saved_data["mode"] = static_cast<int64_t>(kScalarGrad);
      // The gradient is moved out by the first backward, so that autograd can take it as the
      // input's .grad without a copy. The (prepared) inputs are kept by reference, no copy, for
      // a second backward through a retained graph, which recomputes.
      ctx->saved_data["grad"] = grad.view(input.sizes());
      ctx->save_for_backward({v.input, v.target, v.mask, weights});
      return at::scalar_tensor(value.value, input.options());
    }
    // Reduction NONE: one loss per group; backward needs the upstream of each group, so keep the
    // (prepared) inputs and the statistics instead of a gradient.
    Tensor scratch = o.params.activation != DICE_ACTIVATION_NONE ? gradient_buffer(v.input) : Tensor();
    check(f64 ? dice_soft_loss_f64(&o.params, v.shape, v.input.data_ptr<double>(), &v.t, mask_ptr(v.mask), st, pairs,
                                   scratch.defined() ? scratch.data_ptr<double>() : nullptr, scratch.defined() ? len : 0,
                                   &value)
              : dice_soft_loss_f32(&o.params, v.shape, v.input.data_ptr<float>(), &v.t, mask_ptr(v.mask), st, pairs,
                                   scratch.defined() ? scratch.data_ptr<float>() : nullptr, scratch.defined() ? len : 0,
                                   &value));
    size_t groups = 0;
    check(dice_soft_group_count(&o.params, v.shape, &groups));
    Tensor values = at::empty({static_cast<int64_t>(groups)}, at::kDouble);
    Tensor defined = at::empty({static_cast<int64_t>(groups)}, at::kByte);
    check(dice_soft_loss_from_stats(&o.params, v.shape, st, pairs, values.data_ptr<double>(), defined.data_ptr<uint8_t>(),
                                    groups, &value));
    ctx->saved_data["mode"] = static_cast<int64_t>(kCpuNone);
    ctx->save_for_backward({v.input, v.target, v.mask, stats, weights});
    return values.reshape(group_shape(o, l.n, static_cast<int64_t>(groups))).to(input.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const int64_t mode = ctx->saved_data["mode"].toInt();
    const auto input_dtype = static_cast<at::ScalarType>(ctx->saved_data["input_dtype"].toInt());
    const std::string packed = ctx->saved_data["options"].toStringRef();
    Tensor go = grad_outputs[0];
    Tensor result;
    if (mode == kScalarGrad) {
      Tensor g;
      auto it = ctx->saved_data.find("grad");
      if (it != ctx->saved_data.end() && it->second.isTensor()) {
        g = std::move(it->second).toTensor();
        it->second = c10::IValue();
      } else {
        g = recompute_gradient(saved, packed);
      }
      // The common case, loss.backward(): grad_output is exactly 1 and the gradient is returned
      // as it is; being its only owner, autograd stores it as .grad without copying it.
      const bool unit = go.numel() == 1 && go.is_cpu() && go.item<double>() == 1.0;
      result = unit ? std::move(g) : g * go.to(g.scalar_type());
    } else if (mode == kCpuNone) {
      const Tensor &input = saved[0], &target = saved[1], &mask = saved[2], &stats = saved[3], &weights = saved[4];
      const Options o = unpack(packed, weights);
      const SavedView sv = saved_view(input, target, o);
      const DiceShape& shape = sv.shape;
      const DiceTarget& t = sv.t;
      const int64_t n = input.size(0), c = input.size(1);
      Tensor up = go.to(at::kDouble).contiguous().cpu();
      Tensor grad = gradient_buffer(input);
      const auto* st = reinterpret_cast<const DiceStats*>(stats.data_ptr());
      const size_t pairs = static_cast<size_t>(n * c), len = static_cast<size_t>(input.numel());
      check(input.scalar_type() == at::kDouble
                ? dice_soft_gradient_f64(&o.params, shape, input.data_ptr<double>(), &t, mask_ptr(mask), st, pairs,
                                         up.data_ptr<double>(), static_cast<size_t>(up.numel()), grad.data_ptr<double>(), len)
                : dice_soft_gradient_f32(&o.params, shape, input.data_ptr<float>(), &t, mask_ptr(mask), st, pairs,
                                         up.data_ptr<double>(), static_cast<size_t>(up.numel()), grad.data_ptr<float>(), len));
      result = grad;
    } else {
      const Tensor &input = saved[0], &target = saved[1], &mask = saved[2], &weights = saved[3];
      const Options o = unpack(packed, weights);
      result = aten_gradient(input, target, mask, o, weights, go);
    }
    if (result.scalar_type() != input_dtype) result = result.to(input_dtype);
    const auto sizes = ctx->saved_data["input_sizes"].toIntVector();
    if (result.sizes() != c10::IntArrayRef(sizes)) result = result.view(sizes);
    if (at::GradMode::is_enabled()) result = once_differentiable(result);
    return {result, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// ---------------------------------------------------------------------------------------------
// Dice + cross-entropy / focal: a second autograd function
// ---------------------------------------------------------------------------------------------

struct CompoundOptions {
  Options dice;
  DiceCompoundParams term;
};

std::string pack_compound(const CompoundOptions& o) {
  return std::string(reinterpret_cast<const char*>(&o), sizeof o);
}

CompoundOptions unpack_compound(const std::string& s, const Tensor& dice_weights, const Tensor& term_weights) {
  CompoundOptions o;
  TORCH_INTERNAL_ASSERT(s.size() == sizeof o);
  std::memcpy(&o, s.data(), sizeof o);
  o.dice = unpack(pack(o.dice), dice_weights);
  if (term_weights.defined() && term_weights.numel() > 0) {
    o.term.weights = term_weights.data_ptr<double>();
    o.term.weights_len = static_cast<size_t>(term_weights.numel());
  } else {
    o.term.weights = nullptr;
    o.term.weights_len = 0;
  }
  return o;
}

/// The voxel term's value and closed-form gradient (times `scale_out`) with ATen operations on
/// the input's device: the formulas of dice-core's compound module.
std::pair<Tensor, Tensor> aten_term(const AtenStats& st, const Tensor& x, bool labels, const CompoundOptions& o,
                                    const Tensor& term_weights) {
  const auto& t = o.term;
  const int64_t n = x.size(0), c = x.size(1);
  TORCH_CHECK(t.lambda_term >= 0 && std::isfinite(t.lambda_term), "dice: lambda_term must be finite and >= 0");
  Tensor valid = st.valid.defined() ? st.valid : at::ones({n, 1, x.size(2)}, x.options());
  Tensor w = at::ones({c}, x.options());
  if (term_weights.defined() && term_weights.numel() > 0) {
    TORCH_CHECK(term_weights.numel() == c, "dice: the term's weights must have one entry per channel (", c, "); got ",
                term_weights.numel());
    TORCH_CHECK(term_weights.ge(0).all().item<bool>() && term_weights.isfinite().all().item<bool>(),
                "dice: the term's weights must be finite and >= 0");
    w = term_weights.to(x.options());
  }
  w = w.view({1, c, 1});
  const bool sum = o.dice.params.reduction == DICE_REDUCTION_SUM;
  const Tensor& g = st.g;
  Tensor value, grad, divisor;
  if (t.term == DICE_TERM_KIND_CROSS_ENTROPY && c >= 2) {
    TORCH_CHECK(t.label_smoothing >= 0 && t.label_smoothing <= 1, "dice: label_smoothing must be in [0, 1]");
    const double eps = t.label_smoothing;
    Tensor logp = x.log_softmax(1);
    Tensor q = w * ((1 - eps) * g + eps / static_cast<double>(c)) * valid;
    value = -(q * logp).sum();
    grad = logp.exp() * q.sum(1, true) - q;
    divisor = labels ? (w * g * valid).sum() : valid.sum();
  } else if (t.term == DICE_TERM_KIND_CROSS_ENTROPY || t.term == DICE_TERM_KIND_BINARY_CROSS_ENTROPY) {
    value = ((w * g * at::softplus(-x) + (1 - g) * at::softplus(x)) * valid).sum();
    grad = ((1 - g) * x.sigmoid() - w * g * (-x).sigmoid()) * valid;
    divisor = valid.sum() * static_cast<double>(c);
  } else {
    TORCH_CHECK(t.term == DICE_TERM_KIND_FOCAL, "dice: unknown term ", t.term);
    TORCH_CHECK(t.gamma >= 0 && std::isfinite(t.gamma), "dice: gamma must be finite and >= 0");
    TORCH_CHECK(!t.has_alpha || (t.alpha >= 0 && t.alpha <= 1), "dice: alpha must be in [0, 1]");
    const int64_t first = o.dice.params.include_background ? 0 : 1;
    Tensor channel = at::arange(c, x.options()).ge(static_cast<double>(first)).to(x.scalar_type()).view({1, c, 1});
    Tensor a = w * channel * valid;
    if (t.has_alpha) a = a * (t.alpha * g + (1 - t.alpha) * (1 - g));
    Tensor bce = at::softplus(x) - x * g;
    Tensor u = x * (1 - 2 * g);
    Tensor m = t.gamma == 0 ? at::ones_like(x) : at::exp(-t.gamma * at::softplus(-u));
    Tensor per = a * m * bce;
    grad = a * m * ((x.sigmoid() - g) + t.gamma * bce * (-u).sigmoid() * (1 - 2 * g));
    if (sum) {
      // MONAI's FocalLoss(reduction="sum"): per-(sample, class) means over the voxels, summed.
      Tensor kept = valid.sum({1, 2}, true);
      Tensor safe = at::where(kept.gt(0), kept, at::ones_like(kept));
      Tensor scale = at::where(kept.gt(0), 1.0 / safe, at::zeros_like(kept));
      return {(per * scale).sum(), grad * scale * t.lambda_term};
    }
    value = per.sum();
    divisor = valid.sum() * static_cast<double>(c - first);
  }
  if (sum) return {value, grad * t.lambda_term};
  const double d = divisor.item<double>();
  if (d <= 0) return {at::zeros({}, x.options()), at::zeros_like(x)};
  return {value / d, grad * (t.lambda_term / d)};
}

struct CompoundFunction : public torch::autograd::Function<CompoundFunction> {
  static Tensor forward(AutogradContext* ctx, Tensor input, Tensor target, std::optional<Tensor> mask_opt,
                        std::optional<Tensor> dice_weights_opt, std::optional<Tensor> term_weights_opt,
                        std::string packed) {
    const Tensor mask = mask_opt.value_or(Tensor()), dice_weights = dice_weights_opt.value_or(Tensor()),
                 term_weights = term_weights_opt.value_or(Tensor());
    const CompoundOptions o = unpack_compound(packed, dice_weights, term_weights);
    TORCH_CHECK(o.dice.params.activation != DICE_ACTIVATION_NONE,
                "dice: a compound loss takes logits: set sigmoid or softmax");
    TORCH_CHECK(o.dice.params.reduction != DICE_REDUCTION_NONE,
                "dice: a compound loss needs reduction mean or sum: the voxel term has no groups");
    ctx->saved_data["input_dtype"] = static_cast<int64_t>(input.scalar_type());
    ctx->saved_data["input_sizes"] = input.sizes().vec();
    Tensor grad;
    double value = 0;
    if (o.dice.force_aten || !input.is_cpu()) {
      TORCH_CHECK(o.term.lambda_dice >= 0 && std::isfinite(o.term.lambda_dice),
                  "dice: lambda_dice must be finite and >= 0");
      AtenStats st = aten_stats(input, target, mask, o.dice);
      const Layout l = layout(input);
      Tensor x = compute_input(input).reshape({l.n, l.c, l.s});
      GroupLosses gl = aten_group_losses(st.i, st.p, st.gs, o.dice, dice_weights);
      Tensor dice_value = reduce(gl, o.dice.params.reduction);
      auto [term_value, term_grad] = aten_term(st, x, !is_dense(input, target), o, term_weights);
      Tensor up = at::scalar_tensor(o.term.lambda_dice, x.options());
      Tensor dice_grad = o.term.lambda_dice == 0 ? at::zeros_like(x)
                                                 : aten_gradient(input, target, mask, o.dice, dice_weights, up)
                                                       .reshape({l.n, l.c, l.s})
                                                       .to(x.scalar_type());
      grad = (dice_grad + term_grad).reshape(input.sizes());
      Tensor total = o.term.lambda_dice * dice_value + o.term.lambda_term * term_value;
      ctx->saved_data["grad"] = grad;
      return total.to(input.scalar_type());
    }
    CpuView v = cpu_view(input, target, mask, o.dice);
    const size_t pairs = v.shape.batch * v.shape.channels, len = static_cast<size_t>(v.input.numel());
    Tensor stats = at::empty({static_cast<int64_t>(pairs * sizeof(DiceStats))}, at::kByte);
    auto* stp = reinterpret_cast<DiceStats*>(stats.data_ptr());
    grad = gradient_buffer(v.input);
    DiceCompoundValue cv{};
    check(v.input.scalar_type() == at::kDouble
              ? dice_compound_loss_f64(&o.dice.params, &o.term, v.shape, v.input.data_ptr<double>(), &v.t,
                                       mask_ptr(v.mask), stp, pairs, grad.data_ptr<double>(), len, &cv)
              : dice_compound_loss_f32(&o.dice.params, &o.term, v.shape, v.input.data_ptr<float>(), &v.t,
                                       mask_ptr(v.mask), stp, pairs, grad.data_ptr<float>(), len, &cv));
    value = cv.value;
    ctx->saved_data["grad"] = grad.view(input.sizes());
    return at::scalar_tensor(value, input.options());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto input_dtype = static_cast<at::ScalarType>(ctx->saved_data["input_dtype"].toInt());
    Tensor g = ctx->saved_data["grad"].toTensor();
    Tensor go = grad_outputs[0];
    Tensor result = g * go.to(g.scalar_type());
    if (result.scalar_type() != input_dtype) result = result.to(input_dtype);
    const auto sizes = ctx->saved_data["input_sizes"].toIntVector();
    if (result.sizes() != c10::IntArrayRef(sizes)) result = result.view(sizes);
    if (at::GradMode::is_enabled()) result = once_differentiable(result);
    return {result, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

void write_error(char* err, size_t err_len, const std::string& msg) {
  if (err && err_len > 0) {
    const size_t k = std::min(err_len - 1, msg.size());
    std::memcpy(err, msg.data(), k);
    err[k] = '\0';
  }
}

}  // namespace

extern "C" {

/// Applies the dice autograd function: `*out` receives a new tensor (the loss, differentiable
/// with respect to `input`). Returns 0, or 1 with a message in `err`.
int32_t dice_tch_loss(const DiceSoftParams* params, const Tensor* input, const Tensor* target, const Tensor* mask,
                      const Tensor* weights, uint8_t has_ignore, int64_t ignore_index, uint8_t force_aten, Tensor** out,
                      char* err, size_t err_len) {
  try {
    TORCH_CHECK(params && input && target && out, "dice: NULL argument");
    Options o;
    o.params = *params;
    o.params.class_weights = nullptr;
    o.params.class_weights_len = 0;
    o.has_ignore = has_ignore != 0;
    o.ignore_index = ignore_index;
    o.force_aten = force_aten != 0;
    std::optional<Tensor> m, w;
    if (mask) m = *mask;
    if (weights) w = weights->to(at::kDouble).contiguous().cpu();
    *out = new Tensor(DiceFunction::apply(*input, *target, m, w, pack(o)));
    return 0;
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
    return 1;
  }
}

/// Applies the compound (Dice + voxel term) autograd function; as dice_tch_loss().
int32_t dice_tch_compound_loss(const DiceSoftParams* params, const DiceCompoundParams* term, const Tensor* input,
                               const Tensor* target, const Tensor* mask, const Tensor* dice_weights,
                               const Tensor* term_weights, uint8_t has_ignore, int64_t ignore_index,
                               uint8_t force_aten, Tensor** out, char* err, size_t err_len) {
  try {
    TORCH_CHECK(params && term && input && target && out, "dice: NULL argument");
    CompoundOptions o;
    o.dice.params = *params;
    o.dice.params.class_weights = nullptr;
    o.dice.params.class_weights_len = 0;
    o.dice.has_ignore = has_ignore != 0;
    o.dice.ignore_index = ignore_index;
    o.dice.force_aten = force_aten != 0;
    o.term = *term;
    o.term.weights = nullptr;
    o.term.weights_len = 0;
    std::optional<Tensor> m, dw, tw;
    if (mask) m = *mask;
    if (dice_weights) dw = dice_weights->to(at::kDouble).contiguous().cpu();
    if (term_weights) tw = term_weights->to(at::kDouble).contiguous().cpu();
    *out = new Tensor(CompoundFunction::apply(*input, *target, m, dw, tw, pack_compound(o)));
    return 0;
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
    return 1;
  }
}

}  // extern "C"
