"""Report plugin of the kind ``relu_minima_stability`` (analysis/report.py, ``kind_plugin``).

Nacson, Mulayoff, Ongie, Michaeli, Soudry, ICLR 2023, "The Implicit Bias of Minima Stability in
Multivariate Shallow ReLU Networks" (spec: shared/papers/stability.md §2). Series are indexed by the
GD/SGD step t.

Per task: (A) the training loss; (B) η·λ_max/2 with the stability edge 1 (theory, dashed); (C) the
weighted norm Σ|a|g with the bound 1/η − ½ (theory, dashed); (D) each neuron's contribution
|a_i|·g(u_i, t_i) against its offset t_i.

Per experiment (an η sweep): (left) Σ|a|g against 1/η − ½, with the bound (the diagonal) and
λ_max/2 − ½; (right) η·λ_max/2 against η with the edge 1.
"""

import math

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._common import (
    fmt as _fmt, number as _number, param as _param, param_scalar as _scalar, row as _row, series, text as _text,
)

TITLE = "minima stability of shallow ReLU nets (Nacson, Mulayoff, Ongie, Michaeli, Soudry 2023, stability.md §2)"


# ---- reading ----------------------------------------------------------------------------------


def _series(group, which, name):
    """(step, first component of the value) of /tasks/<t>/<which>/<name>, or None."""
    s = series(group, which, name)
    if s is None:
        return None
    step, value = s
    return step, value.reshape(len(step), -1)[:, 0]


class _Task:
    def __init__(self, f, name):
        g = f["tasks"][name]
        self.name = name
        self.g = g
        self.experiment = _text(g, "experiment")
        self.sweep_point = _text(g, "sweep_point")
        self.lr = _number(g, "lr")
        self.optimizer = _text(g, "optimizer", "gd")
        self.status = _text(g, "train_status", "?")
        self.verdict = _text(g, "verdict")
        self.verdict_detail = _text(g, "verdict_detail")
        for key in ("steps", "final_loss", "lambda_max", "lambda_gauss_newton", "sharpness_ratio",
                    "sharpness_ratio_raw", "weighted_norm", "weighted_norm_raw", "bound", "lambda_bound",
                    "residual_term", "nonint_bound", "tightness", "kink_pairs", "active_neurons",
                    "min_kink_distance", "interpolated", "diverged"):
            setattr(self, key, _scalar(g, key))
        if not math.isfinite(self.bound) and math.isfinite(self.lr) and self.lr > 0:
            self.bound = 1.0 / self.lr - 0.5

    def obs(self, name):
        return _series(self.g, "observables", name)

    def theory(self, name):
        return _series(self.g, "theory", name)


# ---- figures ----------------------------------------------------------------------------------


def _plot(ax, series, theory=None, label="measured", theory_label="theory", logy=False, color="tab:blue"):
    if series is not None:
        t, v = series
        keep = np.isfinite(v) & ((v > 0) if logy else True)
        if np.any(keep):
            ax.plot(np.maximum(t[keep], 0), v[keep], color=color, linewidth=1.5, label=label)
    if theory is not None:
        t, v = theory
        keep = np.isfinite(v)
        if np.any(keep):
            ax.plot(t[keep], v[keep], color="black", linestyle="--", linewidth=1.2, label=theory_label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot_task(h5file, task_name, png_path):
    task = _Task(h5file, task_name)
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    (a, b), (c, d) = axes
    _plot(a, task.obs("loss"), label="L(θ_t)", logy=True)
    a.set_title("(A) training loss, (1/2n)Σ(f − y)²")
    _plot(b, task.obs("sharpness_ratio"), task.theory("sharpness_ratio"), label="η·λ_max/2",
          theory_label="stability edge 1 (λ_max = 2/η)")
    b.set_title("(B) η·λ_max(∇²L)/2")
    _plot(c, task.obs("weighted_norm"), task.theory("weighted_norm"), label="Σ|a|g",
          theory_label="bound 1/η − ½")
    lam = task.obs("lambda_max")
    if lam is not None:
        c.plot(lam[0], lam[1] / 2 - 0.5, color="tab:orange", linewidth=1.0, alpha=0.8, label="λ_max/2 − ½")
        c.legend(fontsize=8)
    c.set_title("(C) weighted norm |f|_{V_g} = Σ_j |a_j| g(u_j, t_j)")
    na, nt, ng = _param(task.g, "neuron_a"), _param(task.g, "neuron_t"), _param(task.g, "neuron_g")
    if na is not None and nt is not None and ng is not None:
        contrib = np.abs(na) * ng
        d.scatter(nt, contrib, s=18, color="tab:blue")
        d.set_xlabel("neuron offset t_i = −b_i/‖w_i‖")
        d.set_ylabel("|a_i|·g(u_i, t_i)")
        d.grid(True, alpha=0.3)
    else:
        d.text(0.5, 0.5, "no final network (diverged)", ha="center", va="center", transform=d.transAxes)
    d.set_title("(D) per-neuron contributions at the end")
    fig.suptitle(f"{task.name} ({task.experiment} {task.sweep_point}): {task.optimizer.upper()}, η = {_fmt(task.lr)}, "
                 f"{task.status}; verdict {task.verdict or '—'}", fontsize=10)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def plot_experiment(h5file, experiment, task_names, png_path):
    tasks = sorted((_Task(h5file, n) for n in task_names), key=lambda t: t.lr)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    ok = [t for t in tasks if t.diverged != 1.0 and math.isfinite(t.weighted_norm)]
    interp = [t for t in ok if t.interpolated == 1.0]
    other = [t for t in ok if t.interpolated != 1.0]
    bounds = np.array([t.bound for t in ok]) if ok else np.array([1.0])
    lo, hi = max(min(bounds.min(), 0.1), 1e-3), max(bounds.max(), 1.0)
    xs = np.geomspace(lo * 0.8, hi * 1.25, 100)
    left.fill_between(xs, 0, xs, color="tab:green", alpha=0.08, label="allowed: Σ|a|g ≤ 1/η − ½")
    left.plot(xs, xs, color="black", linestyle="--", linewidth=1.2, label="theory: bound 1/η − ½")
    if ok:
        left.plot([t.bound for t in ok], [t.weighted_norm for t in ok], "-", color="tab:blue", linewidth=1.0)
    if interp:
        left.plot([t.bound for t in interp], [t.weighted_norm for t in interp], "o", color="tab:blue",
                  label="Σ|a|g, interpolated")
    if other:
        left.plot([t.bound for t in other], [t.weighted_norm for t in other], "o", mfc="none", color="tab:blue",
                  label="Σ|a|g, not interpolated")
    if ok:
        left.plot([t.bound for t in ok], [t.lambda_bound for t in ok], "s", ms=4, color="tab:orange",
                  label="λ_max/2 − ½ (measured)")
    for t in ok:
        left.annotate(f"η={_fmt(t.lr, 3)}", (t.bound, t.weighted_norm), fontsize=7, xytext=(3, -9),
                      textcoords="offset points")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("1/η − ½")
    left.set_ylabel("weighted norm Σ_j |a_j| g(u_j, t_j)")
    left.set_title("weighted norm vs the stability bound")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=8)

    etas = [t.lr for t in ok]
    if ok:
        right.plot(etas, [t.sharpness_ratio for t in ok], "o-", color="tab:blue", label="η·λ_max/2 (end of run)")
        for t in interp:
            right.plot([t.lr], [t.sharpness_ratio], "o", color="tab:blue")
        for t in other:
            right.plot([t.lr], [t.sharpness_ratio], "o", mfc="white", color="tab:blue")
    div = [t for t in tasks if t.diverged == 1.0]
    for t in div:
        right.axvline(t.lr, color="tab:red", alpha=0.4, linestyle=":")
    if div:
        right.plot([], [], color="tab:red", linestyle=":", label="diverged")
    right.axhline(1.0, color="black", linestyle="--", linewidth=1.2, label="theory: edge of stability 1")
    right.set_xlabel("step size η")
    right.set_ylabel("η·λ_max/2")
    right.set_title("sharpness at the end of training (filled: interpolated)")
    right.grid(True, alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle(f"{experiment}: Nacson et al. 2023, stable minima obey Σ|a|g ≤ 1/η − ½", fontsize=11)
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


# ---- table ------------------------------------------------------------------------------------


def table(h5file, task_names):
    tasks = [_Task(h5file, n) for n in task_names]
    lines = [
        "Per task: the end-of-run values (limit-point kink convention; `raw` = 1[z > 0] on the iterate as is). "
        "Predictions: η·λ_max/2 ≤ 1 at a stable minimum, Σ|a|g ≤ 1/η − ½ (interpolating) and "
        "Σ|a|g ≤ λ_max/2 − ½ + (R+1)√(2L) (any θ). Tightness = Σ|a|g/(1/η − ½).",
        "",
        "| task | sweep point | opt | status | steps | final L | η·λ_max/2 (≤ 1) | raw | Σ\\|a\\|g | "
        "1/η − ½ | λ_max/2 − ½ | tightness | kink pairs | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in sorted(tasks, key=lambda t: (t.experiment, t.lr)):
        lines.append(_row([
            t.name, t.sweep_point, t.optimizer, t.status, _fmt(t.steps, 6), _fmt(t.final_loss, 3),
            _fmt(t.sharpness_ratio), _fmt(t.sharpness_ratio_raw), _fmt(t.weighted_norm), _fmt(t.bound),
            _fmt(t.lambda_bound), _fmt(t.tightness, 3), _fmt(t.kink_pairs, 3), t.verdict or "—"]))
    # T2.4 (iv): Σ|a|g non-increasing in η over the edge-of-stability runs that reached a minimum.
    by_exp = {}
    for t in tasks:
        by_exp.setdefault(t.experiment, []).append(t)
    notes = []
    for exp, group in sorted(by_exp.items()):
        eos = sorted((t for t in group if t.diverged != 1.0 and math.isfinite(t.weighted_norm)
                      and t.sharpness_ratio >= 0.9 and t.final_loss < 1e-4), key=lambda t: t.lr)
        if len(eos) >= 2:
            values = [t.weighted_norm for t in eos]
            mono = all(a >= b for a, b in zip(values, values[1:]))
            notes.append(f"- `{exp}`: Σ|a|g over the edge-of-stability runs (η·λ_max/2 ≥ 0.9, L < 1e-4), "
                         f"η = {', '.join(_fmt(t.lr, 3) for t in eos)}: "
                         f"{', '.join(_fmt(v) for v in values)} — non-increasing (T2.4 iv): "
                         f"{'yes' if mono else 'NO'}")
    if notes:
        lines += ["", *notes]
    return lines
