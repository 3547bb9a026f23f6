"""Report plugin of the kind ``loss_tails`` (analysis/report.py, ``kind_plugin``).

Nacson, Lee, Gunasekar, Savarese, Srebro, Soudry, AISTATS 2019, "Convergence of Gradient Descent on
Separable Data" (spec: shared/papers/separable.md §3). Series are indexed by the GD step t.

Per task, measured solid and theory dashed:

* super-polynomial tails (poly-exponential exp(−u^ν), exponential, logistic): (A) the margin gap
  with C_ν/g^ν at the measured g = ŵᵀw/‖ŵ‖² (T3.1), and for the NGD schedules the fixed-step
  gap with η = η₀ (T3.3); (B) the angle gap with A_ν/g^{2ν}; (C) g^ν against ln t; (D) the rate
  panel: gap·ln t (fixed step: 1/ln t law), gap·√t/ln t (NGD-√, T3.3 bound 2) or gap·η₀t (NGD-const,
  O(1/t) law); (E) ln L;
* polynomial tails u^{−k} (T3.2): (A) 1 − cos(w, v*) → 0; (B) 1 − cos(w, ŵ) → 1 − cos(v*, ŵ) > 0;
  (C) the normalised margin → min x̃ᵀv* < γ; (E) ln L.

Per experiment: the margin gaps (or, for polynomial tails, the angle gaps) of all its tasks on one
plot with their theory dashed.
"""

import math
import textwrap

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._common import (
    fmt as _fmt, last as _last, number as _number, param as _param, row as _row, series as _series, text as _text,
)

TITLE = "loss tails and normalised steps (Nacson, Lee, Gunasekar, Savarese, Srebro, Soudry 2019, separable.md §3)"


# ---- reading ----------------------------------------------------------------------------------


class _Task:
    def __init__(self, f, name):
        g = f["tasks"][name]
        self.name = name
        self.g = g
        self.experiment = _text(g, "experiment")
        self.sweep_point = _text(g, "sweep_point")
        self.loss = _text(g, "loss", "?")
        self.schedule = _text(g, "schedule", "?")
        self.lr = _number(g, "lr")
        self.nu = _number(g, "tail_nu")
        self.verdict = _text(g, "verdict")
        self.verdict_detail = _text(g, "verdict_detail")
        self.polynomial = self.loss.startswith("polynomial")

    def obs(self, name):
        return _series(self.g, "observables", name)

    def theory(self, name):
        return _series(self.g, "theory", name)

    def label(self):
        return f"{self.loss}, {self.schedule}, η={_fmt(self.lr, 3)}"


# ---- figures ----------------------------------------------------------------------------------


def _curve(series, logy=False):
    if series is None or series[1].ndim != 1:
        return None
    t, v = series
    keep = (t > 0) & np.isfinite(v)
    if logy:
        keep &= v > 0
    return (t[keep].astype(float), v[keep]) if np.any(keep) else None


def _pair(ax, meas, theory, color="tab:blue", label="GD", theory_label="theory", logy=True):
    m, th = _curve(meas, logy), _curve(theory, logy)
    if m is not None:
        ax.plot(m[0], m[1], color=color, linewidth=1.6, label=label)
    if th is not None:
        ax.plot(th[0], th[1], color="black" if theory_label else color, linestyle="--", linewidth=1.2,
                label=theory_label)
    ax.set_xscale("log")
    if logy and (m is not None or th is not None):
        ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.grid(True, which="major", alpha=0.3)


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    if not ax.lines:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)


def _plot_super_polynomial(t, ax_gap, ax_angle, ax_g, ax_rate):
    nu = t.nu if math.isfinite(t.nu) else 1.0
    _pair(ax_gap, t.obs("margin_gap"), t.theory("margin_gap"), label=f"GD ({t.schedule})",
          theory_label=r"$C_\nu/g^\nu$")
    fixed = _curve(t.obs("fixed_step_margin_gap"), logy=True)
    if fixed is not None:
        ax_gap.plot(fixed[0], fixed[1], color="tab:orange", linestyle=":", linewidth=1.6,
                    label=r"fixed step $\eta=\eta_0$")
    ax_gap.set_ylabel(r"$1/\|\hat w\| - \min_n \tilde x_n^\top w/\|w\|$")
    ax_gap.set_title("(A) margin gap")
    _pair(ax_angle, t.obs("angle_gap"), t.theory("angle_gap"), theory_label=r"$A_\nu/g^{2\nu}$")
    ax_angle.set_ylabel(r"$1 - \cos\angle(w, \hat w)$")
    ax_angle.set_title("(B) angle gap")
    g = _curve(t.obs("g"), logy=True)
    if g is not None:
        ax_g.plot(g[0], g[1] ** nu, color="tab:blue", linewidth=1.6, label=r"$g^\nu$, $g=\hat w^\top w/\|\hat w\|^2$")
        if t.schedule == "fixed":
            offset = float(g[1][-1] ** nu - math.log(g[0][-1]))
            ax_g.plot(g[0], np.log(g[0]) + offset, color="black", linestyle="--", linewidth=1.2,
                      label=r"$\ln t$ + const (matched at T)")
        ax_g.set_xscale("log")
        ax_g.set_xlabel("step t")
        ax_g.grid(True, alpha=0.3)
    ax_g.set_title(r"(C) growth of $g^\nu$ (fixed step: $g^\nu \approx \ln t$ + const)")
    gap = _curve(t.obs("margin_gap"), logy=True)
    if gap is not None:
        steps, values = gap
        keep = steps > 1
        steps, values = steps[keep], values[keep]
        if t.schedule == "ngd_sqrt":
            ax_rate.plot(steps, values * np.sqrt(steps) / np.log(steps), color="tab:blue", linewidth=1.6,
                         label=r"gap $\sqrt{t}/\ln t$")
            ax_rate.axhline(2.0, color="tab:red", linestyle=":", label="T3.3 bound 2")
            ax_rate.set_title(r"(D) NGD-sqrt: rate $\ln t/\sqrt{t}$")
        elif t.schedule == "ngd_const":
            ax_rate.plot(steps, values * t.lr * steps, color="tab:blue", linewidth=1.6, label=r"gap $\eta_0 t$")
            ax_rate.set_title(r"(D) NGD-const: gap $\approx$ const$/(\eta_0 t)$")
        else:
            ax_rate.plot(steps, values * np.log(steps), color="tab:blue", linewidth=1.6, label=r"gap $\ln t$")
            ax_rate.set_title(r"(D) fixed step: gap $\sim 1/\ln t$")
        ax_rate.set_xscale("log")
        ax_rate.set_xlabel("step t")
        ax_rate.grid(True, alpha=0.3)


def _plot_polynomial(t, ax_vstar, ax_what, ax_margin):
    _pair(ax_vstar, t.obs("angle_gap_vstar"), None, label=r"$1-\cos(w, v^*)$", theory_label=None)
    ax_vstar.axhline(1e-6, color="tab:red", linestyle=":", label="T3.2 limit 1e-6")
    ax_vstar.set_title(r"(A) direction → $v^* = \arg\min_{\|v\|\leq 1} \sum_n (\tilde x_n^\top v)^{-k}$")
    _pair(ax_what, t.obs("angle_gap"), t.theory("angle_gap"), label=r"$1-\cos(w, \hat w)$",
          theory_label=r"$1-\cos(v^*, \hat w)$")
    ax_what.axhline(3e-3, color="tab:red", linestyle=":", label="T3.2 floor 3e-3")
    ax_what.set_title(r"(B) not the max-margin direction")
    _pair(ax_margin, t.obs("normalized_margin"), t.theory("normalized_margin"), label="normalised margin",
          theory_label=r"$\min_n \tilde x_n^\top v^*$", logy=False)
    w_hat = _param(t.g, "w_hat")
    if w_hat is not None and np.linalg.norm(w_hat) > 0:
        ax_margin.axhline(1 / np.linalg.norm(w_hat), color="tab:green", linestyle=":",
                          label=r"max margin $1/\|\hat w\|$")
    m = _curve(t.obs("normalized_margin"))
    if m is not None:
        late = m[1][m[0] >= math.sqrt(m[0][-1])]
        lo = min(float(np.min(late)), 1 / np.linalg.norm(w_hat) if w_hat is not None else float(np.min(late)))
        hi = max(float(np.max(late)), 1 / np.linalg.norm(w_hat) if w_hat is not None else float(np.max(late)))
        pad = 0.2 * (hi - lo) if hi > lo else 0.01
        ax_margin.set_ylim(lo - pad, hi + pad)
    ax_margin.set_title("(C) normalised margin")


def plot_task(h5file, task_name, png_path):
    t = _Task(h5file, task_name)
    fig, axes = plt.subplots(2, 3, figsize=(15, 9), layout="constrained")
    (ax_a, ax_b, ax_c), (ax_d, ax_e, ax_txt) = axes
    if t.polynomial:
        _plot_polynomial(t, ax_a, ax_b, ax_c)
        ax_d.axis("off")
    else:
        _plot_super_polynomial(t, ax_a, ax_b, ax_c, ax_d)
    log_loss = _curve(t.obs("log_loss"))
    if log_loss is not None:
        ax_e.plot(log_loss[0], log_loss[1], color="tab:blue", linewidth=1.6, label=r"$\ln L(w)$")
        ax_e.set_xscale("log")
        ax_e.set_xlabel("step t")
        ax_e.grid(True, alpha=0.3)
    ax_e.set_title("(E) log loss (finite where L underflows)")
    for ax in (ax_a, ax_b, ax_c, ax_d, ax_e):
        if ax.axison:
            _legend(ax)

    ax_txt.axis("off")
    lines = [
        f"task       {t.name}",
        f"experiment {t.experiment}",
        f"sweep      {t.sweep_point or '(none)'}",
        f"loss       {t.loss}",
        f"schedule   {t.schedule}   eta {_fmt(t.lr, 5)}",
        f"margin gap {_fmt(_last(t.obs('margin_gap')))} ({_fmt(_last(t.theory('margin_gap')))})",
        f"angle gap  {_fmt(_last(t.obs('angle_gap')))} ({_fmt(_last(t.theory('angle_gap')))})",
    ]
    if t.polynomial:
        lines.append(f"1-cos(w,v*) {_fmt(_last(t.obs('angle_gap_vstar')))}")
    if t.obs("fixed_step_margin_gap") is not None:
        lines.append(f"fixed-step gap {_fmt(_last(t.obs('fixed_step_margin_gap')))}")
    lines.append(f"verdict    {t.verdict or '—'}")
    for chunk in textwrap.wrap(t.verdict_detail, 52)[:10]:
        lines.append("  " + chunk)
    ax_txt.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=8, va="top", ha="left",
                transform=ax_txt.transAxes)
    ax_txt.set_title("summary (theory in parentheses)", fontsize=9)
    fig.suptitle(f"{t.name}: {t.label()} (Nacson et al. 2019, separable.md §3)")
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def plot_experiment(h5file, experiment, task_names, png_path):
    tasks = [_Task(h5file, n) for n in task_names]
    fig, ax = plt.subplots(1, 1, figsize=(8, 5.5), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    polynomial = all(t.polynomial for t in tasks)
    fixed_drawn = set()
    for i, t in enumerate(tasks):
        color = colors[i % len(colors)]
        label = t.sweep_point or t.name
        if polynomial:
            _pair(ax, t.obs("angle_gap"), t.theory("angle_gap"), color=color, label=f"{label}: 1-cos(w, ŵ)",
                  theory_label="")
            _pair(ax, t.obs("angle_gap_vstar"), None, color=color, label=f"{label}: 1-cos(w, v*)", theory_label="")
            ax.lines[-1].set_linestyle("-.")
        else:
            _pair(ax, t.obs("margin_gap"), t.theory("margin_gap"), color=color, label=label, theory_label="")
            fixed = _curve(t.obs("fixed_step_margin_gap"), logy=True)
            key = _fmt(t.lr, 6)
            if fixed is not None and key not in fixed_drawn:
                fixed_drawn.add(key)
                ax.plot(fixed[0], fixed[1], color=color, linestyle=":", linewidth=1.6,
                        label=f"fixed step η = {_fmt(t.lr, 3)}")
    ax.plot([], [], color="black", linestyle="--", label="theory (dashed)")
    ax.set_ylabel("angle gaps" if polynomial else "margin gap")
    ax.legend(fontsize=7)
    ax.set_title(f"{experiment}: " + ("1−cos(w, ŵ) → 1−cos(v*, ŵ) and 1−cos(w, v*) → 0" if polynomial
                                       else "margin gap, theory C_ν/g^ν dashed"))
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


# ---- table --------------------------------------------------------------------------------------


def table(h5file, task_names):
    tasks = [_Task(h5file, n) for n in task_names]
    lines = [
        "Values at the last step T; theory in parentheses: C_ν/g^ν and A_ν/g^{2ν} at the measured "
        "g = ŵᵀw/‖ŵ‖² for super-polynomial tails (T3.1, also the NGD law), the constants of v* for "
        "polynomial tails (T3.2). The fixed-step gap is GD with η = η₀ on the same data (T3.3).",
        "",
        "| task | experiment | sweep point | loss | schedule | η or η₀ | margin gap (theory) | fixed-step gap | "
        "angle gap (theory) | 1−cos(w, v*) | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        row = [t.name, t.experiment, t.sweep_point, t.loss, t.schedule, _fmt(t.lr),
               f"{_fmt(_last(t.obs('margin_gap')))} ({_fmt(_last(t.theory('margin_gap')))})",
               _fmt(_last(t.obs("fixed_step_margin_gap"))),
               f"{_fmt(_last(t.obs('angle_gap')))} ({_fmt(_last(t.theory('angle_gap')))})",
               _fmt(_last(t.obs("angle_gap_vstar"))), t.verdict or "—"]
        lines.append(_row(row))
    return lines
