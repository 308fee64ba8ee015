//===- OptimRef.h - f64 reference of the optimizers (documented math) -*- C++
//-*-===//
//
// A straightforward double-precision implementation of every optimizer as
// docs/optimizers.md writes it: the torch.optim update of one row of
// values, SparseAdam's arithmetic for lazy Adam rows, the zero-gradient
// catch-up of skipped steps (simulated step by step where the runtime uses
// a closed form), the learning-rate schedule and gradient clipping. It
// shares no code with the runtime.
//
//===----------------------------------------------------------------------===//
#ifndef SPARSEC_TESTS_RUNTIME_OPTIMREF_H
#define SPARSEC_TESTS_RUNTIME_OPTIMREF_H

#include "TestModels.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

namespace sparsec_test {

/// Learning rate of step e + 1: warm-up factor (e + 1) / W, then the
/// schedule from e - W.
inline double refLr(const sparsec_optimizer_desc &d, double base, int64_t e) {
  if (d.warmup_steps > 0) {
    if (e < d.warmup_steps)
      return base * double(e + 1) / double(d.warmup_steps);
    e -= d.warmup_steps;
  }
  if (d.schedule == SPARSEC_SCHED_STEP) {
    double lr = base;
    for (int64_t i = d.step_size; i <= e; i += d.step_size)
      lr *= d.gamma;
    return lr;
  }
  if (d.schedule == SPARSEC_SCHED_COSINE)
    return d.eta_min +
           (base - d.eta_min) *
               (1 + std::cos(3.141592653589793 * double(e) / double(d.t_max))) /
               2;
  return base;
}

/// One tensor's values and optimizer state, split into rows (row-wise
/// Adagrad's rows; embedding rows).
struct RefTensor {
  std::vector<double> p, buf, sum, sq, ga, m, v, vmax, rowSum;
  std::vector<std::pair<int64_t, int64_t>> rows; // value ranges
  std::vector<int> rowInit;                      // SGD buffer set, per row
  std::vector<int64_t> last;                     // catch-up
  int init = 0;                                  // SGD buffer set, tensor

  RefTensor() = default;
  RefTensor(const sparsec_optimizer_desc &d, const std::vector<float> &values,
            std::vector<std::pair<int64_t, int64_t>> rowRanges) {
    p.assign(values.begin(), values.end());
    const size_t n = p.size();
    buf.assign(n, 0);
    sum.assign(n, d.initial_accumulator_value);
    sq.assign(n, 0);
    ga.assign(n, 0);
    m.assign(n, 0);
    v.assign(n, 0);
    vmax.assign(n, 0);
    rows = std::move(rowRanges);
    rowSum.assign(rows.size(), d.initial_accumulator_value);
    rowInit.assign(rows.size(), 0);
    last.assign(rows.size(), 0);
  }
};

struct RefOpt {
  sparsec_optimizer_desc d;

  /// One step (1-based `t`, learning rate `lr`) on row `r` of `T` with
  /// gradient `g` (one value per element of the row). `sparseForm`: lazy
  /// rows (SparseAdam's update for Adam/AdamW).
  void stepRow(RefTensor &T, size_t r, const double *g0, bool init,
               bool sparseForm, int64_t t, double lr) const {
    const auto [lo, hi] = T.rows[r];
    const int64_t n = hi - lo;
    if (n == 0)
      return;
    std::vector<double> g(g0, g0 + n);
    for (int64_t i = 0; i < n; ++i) {
      if (d.maximize)
        g[i] = -g[i];
      if (d.kind != SPARSEC_OPT_ADAMW)
        g[i] += d.weight_decay * T.p[lo + i];
    }
    const double bc1 = 1 - std::pow(d.beta1, double(t)),
                 bc2 = 1 - std::pow(d.beta2, double(t));
    const double clr = lr / (1 + double(t - 1) * d.lr_decay);
    double rowStd = 0;
    if (d.kind == SPARSEC_OPT_ROWWISE_ADAGRAD) {
      double acc = 0;
      for (double x : g)
        acc += x * x;
      T.rowSum[r] += acc / double(n);
      rowStd = std::sqrt(T.rowSum[r]) + d.eps;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t k = lo + i;
      double &p = T.p[k];
      switch (d.kind) {
      case SPARSEC_OPT_SGD: {
        double step = g[i];
        if (d.momentum != 0) {
          T.buf[k] =
              init ? d.momentum * T.buf[k] + (1 - d.dampening) * g[i] : g[i];
          step = d.nesterov ? g[i] + d.momentum * T.buf[k] : T.buf[k];
        }
        p -= lr * step;
        break;
      }
      case SPARSEC_OPT_ADAGRAD:
        T.sum[k] += g[i] * g[i];
        p -= clr * g[i] / (std::sqrt(T.sum[k]) + d.eps);
        break;
      case SPARSEC_OPT_ROWWISE_ADAGRAD:
        p -= clr * g[i] / rowStd;
        break;
      case SPARSEC_OPT_RMSPROP: {
        T.sq[k] = d.alpha * T.sq[k] + (1 - d.alpha) * g[i] * g[i];
        double avg = T.sq[k];
        if (d.centered) {
          T.ga[k] = d.alpha * T.ga[k] + (1 - d.alpha) * g[i];
          avg -= T.ga[k] * T.ga[k];
        }
        avg = std::sqrt(avg) + d.eps;
        if (d.momentum > 0) {
          T.buf[k] = d.momentum * T.buf[k] + g[i] / avg;
          p -= lr * T.buf[k];
        } else {
          p -= lr * g[i] / avg;
        }
        break;
      }
      case SPARSEC_OPT_ADAM:
      case SPARSEC_OPT_ADAMW: {
        if (d.kind == SPARSEC_OPT_ADAMW)
          p *= 1 - lr * d.weight_decay;
        T.m[k] = d.beta1 * T.m[k] + (1 - d.beta1) * g[i];
        T.v[k] = d.beta2 * T.v[k] + (1 - d.beta2) * g[i] * g[i];
        double vv = T.v[k];
        if (d.amsgrad)
          vv = T.vmax[k] = std::max(T.vmax[k], T.v[k]);
        if (sparseForm)
          p -= lr * std::sqrt(bc2) / bc1 * T.m[k] / (std::sqrt(vv) + d.eps);
        else
          p -= lr / bc1 * T.m[k] / (std::sqrt(vv) / std::sqrt(bc2) + d.eps);
        break;
      }
      }
    }
  }

  /// The documented catch-up of row `r` to step count `T0` (skipped steps
  /// last + 1 .. T0), with the lr and bias corrections of step T0 + 1.
  void catchupRow(RefTensor &T, size_t r, int64_t T0, double lr) const {
    const int64_t k = T0 - T.last[r];
    if (k <= 0)
      return;
    const auto [lo, hi] = T.rows[r];
    const int64_t t = T0 + 1;
    for (int64_t e = lo; e < hi; ++e) {
      double &p = T.p[e];
      switch (d.kind) {
      case SPARSEC_OPT_SGD: { // exact: k zero-gradient steps, one by one
        bool init = T.rowInit[r] != 0;
        for (int64_t j = 0; j < k; ++j) {
          const double g = d.weight_decay * p;
          double step = g;
          if (d.momentum != 0) {
            T.buf[e] = init ? d.momentum * T.buf[e] + (1 - d.dampening) * g : g;
            init = true;
            step = d.nesterov ? g + d.momentum * T.buf[e] : T.buf[e];
          }
          p -= lr * step;
        }
        break;
      }
      case SPARSEC_OPT_RMSPROP: // a zero total gradient (no L2 term)
        T.sq[e] *= std::pow(d.alpha, double(k));
        T.ga[e] *= std::pow(d.alpha, double(k));
        if (d.momentum > 0)
          for (int64_t j = 0; j < k; ++j) {
            T.buf[e] *= d.momentum;
            p -= lr * T.buf[e];
          }
        break;
      case SPARSEC_OPT_ADAM:
      case SPARSEC_OPT_ADAMW: {
        const double bc1 = 1 - std::pow(d.beta1, double(t)),
                     bc2 = 1 - std::pow(d.beta2, double(t));
        const double vv = d.amsgrad ? T.vmax[e] : T.v[e];
        const double den = std::sqrt(vv) / std::sqrt(bc2) + d.eps;
        const double U = T.m[e] != 0 && den > 0 ? lr / bc1 * T.m[e] / den : 0;
        double ratio = d.amsgrad     ? d.beta1
                       : d.beta2 > 0 ? d.beta1 / std::sqrt(d.beta2)
                                     : 1.0;
        if (!(ratio < 1))
          ratio = 0;
        const double dec =
            d.kind == SPARSEC_OPT_ADAMW ? 1 - lr * d.weight_decay : 1.0;
        double rj = 1;
        for (int64_t j = 1; j <= k; ++j) {
          rj *= ratio;
          p = dec * p - U * rj;
        }
        T.m[e] *= std::pow(d.beta1, double(k));
        T.v[e] *= std::pow(d.beta2, double(k));
        break;
      }
      default: // Adagrad, row-wise Adagrad: nothing decays
        break;
      }
    }
    if (d.kind == SPARSEC_OPT_SGD && d.momentum != 0)
      T.rowInit[r] = 1;
    T.last[r] = T0;
  }
};

/// Coalesces row gradients: id -> summed row (ascending ids).
inline std::map<int32_t, std::vector<double>>
refCoalesce(const std::vector<int64_t> &ids, const std::vector<float> &rows,
            int64_t dim) {
  std::map<int32_t, std::vector<double>> out;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto &row = out[(int32_t)ids[i]];
    row.resize(dim, 0.0);
    for (int64_t c = 0; c < dim; ++c)
      row[c] += rows[i * dim + c];
  }
  return out;
}

/// Max-norm relative error of `got` against `want` (scale: max |want|).
inline double relErr(const float *got, const std::vector<double> &want) {
  double scale = 0, err = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    scale = std::max(scale, std::fabs(want[i]));
    err = std::max(err, std::fabs(double(got[i]) - want[i]));
  }
  return scale > 0 ? err / scale : err;
}

} // namespace sparsec_test

#endif // SPARSEC_TESTS_RUNTIME_OPTIMREF_H
