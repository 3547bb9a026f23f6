"""Report plugin of the kind ``init_shape`` (analysis/report.py, ``kind_plugin``).

Azulay, Moroshko, Nacson, Woodworth, Srebro, Globerson, Soudry, ICML 2021, "On the Implicit Bias of
Initialization Shape: Beyond Infinitesimal Mirror Descent" (spec: shared/papers/separable.md §5).

Per task with dynamics (GD or the ODE flow), against the flow time (lr·t for GD), measured solid and
theory (``theory/``) dashed:

* (a) ‖β(t) − β_Q‖/‖β_Q‖ and the distances to the controls (shape-blind potential, min-L2
  interpolator, for the neuron the mirror-flow guess) with their predicted limits
  ‖control − β_Q‖/‖β_Q‖: the measured curve goes to 0 for β_Q and to the dashed level for each control;
* (b) train MSE, test MSE and population error ‖β − w*‖², the latter two with the value of β_Q;
* (c) diagonal net: the KKT residual of Theorem 4.1 and the drift of u² − v² (0 for the flow);
  neuron: the null-space ratio c(t) = ‖P_null w̃(t)‖/‖P_null w̃₀‖ with Theorem 6.1's c_Q, the mirror
  guess and the shape-blind value;
* (d) the coordinates of β(T) against β_Q, with the controls.

A closed-form task (§5.10 T5.3) shows β_Q, the controls and w*. Per experiment: the closed-form sweep
as the paper's Section 7 figure (population error against α, one line per s, min-L2 dashed), or the
distance curves of all tasks with the final distances to β_Q and to the controls.
"""

import math

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._common import (
    TIME, fmt as _fmt, header as _table_header, number as _num, param as _param, param_scalar as _param_scalar,
    row as _row, series, text as _text,
)

TITLE = "implicit bias of the initialization shape (Azulay et al. 2021, separable.md §5)"

# separable.md §5.10 T5.3: ‖β_Q − w*‖² of the spec's calibration at d = 1000, N = 100 (their data, so
# only the shape of the curves is comparable); rows α, columns s.
SPEC_T53_SHAPES = (0.0, 0.5, 0.7, 0.9, 0.99)
SPEC_T53 = {1e-5: (0.0136, 0.0151, 0.0177, 0.0290, 0.177),
            1.26e-4: (0.034, 0.048, 0.074, 0.208, 0.792),
            1.58e-3: (0.264, 0.393, 0.558, 0.817, 0.887),
            2e-2: (0.844, 0.871, 0.882, 0.887, 0.888)}
SPEC_T53_MIN_L2 = 0.8876


# ---- reading ----------------------------------------------------------------------------------


def _scalar_series(task, which, name):
    s = series(task, which, name, TIME)
    if s is None or s[1].ndim != 1:
        return None
    t, v = s
    keep = (t > 0) & np.isfinite(v)
    return (t[keep], v[keep]) if np.any(keep) else None


def _last(task, name):
    s = _scalar_series(task, "observables", name)
    return float(s[1][-1]) if s is not None else math.nan


# ---- per-task figures -------------------------------------------------------------------------


def _plot_measured_theory(ax, task, name, color, label, logy=True):
    m = _scalar_series(task, "observables", name)
    th = _scalar_series(task, "theory", name)
    drew = False
    if m is not None:
        t, v = m
        if logy:
            t, v = t[v > 0], v[v > 0]
        if len(t):
            ax.plot(t, v, color=color, linewidth=1.6, label=label)
            drew = True
    if th is not None:
        t, v = th
        if logy and np.all(v <= 0):
            ax.plot([], [], color=color, linestyle="--", label=f"theory {label}: 0 (flow)")
        else:
            if logy:
                t, v = t[v > 0], v[v > 0]
            if len(t):
                ax.plot(t, v, color=color, linestyle="--", linewidth=1.1, label=f"theory {label}")
                drew = True
    return drew


def _finish(ax, title, ylabel, logy=True):
    ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("flow time (lr·t for GD)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no finite data stored", ha="center", va="center", transform=ax.transAxes)
    ax.grid(True, which="major", alpha=0.3)


def _header(task, task_name):
    model, method = _text(task, "model", "?"), _text(task, "method", "?")
    title = f"{task_name}: {_text(task, 'experiment')} [{_text(task, 'sweep_point') or 'no sweep'}]  {model}, {method}"
    alpha, s = _num(task, "alpha"), _num(task, "s")
    if math.isfinite(alpha):
        title += f", α={_fmt(alpha)}, s={_fmt(s)}"
    verdict = _text(task, "verdict")
    if verdict:
        title += f"  verdict: {verdict}"
    return title


def _plot_closed_form(task, task_name, png_path):
    fig, ax = plt.subplots(figsize=(11, 5), layout="constrained")
    beta_q = _param(task, "beta_q")
    if beta_q is None:
        ax.text(0.5, 0.5, "no beta_Q stored", ha="center", va="center", transform=ax.transAxes)
    else:
        idx = np.arange(beta_q.size)
        for name, style, label in (("w_star", dict(color="black", marker="x", s=40), "w*"),
                                   ("beta_min_l2", dict(color="tab:gray", marker=".", s=8), "min-L2"),
                                   ("beta_shape_blind", dict(color="tab:orange", marker=".", s=8),
                                    "shape-blind (s = 0)"),
                                   ("beta_q", dict(color="tab:blue", marker="o", s=12), r"$\beta_Q$")):
            v = _param(task, name)
            if v is not None and v.size == beta_q.size:
                pe = _param_scalar(task, {"beta_q": "population_error_q", "beta_min_l2": "population_error_min_l2",
                                          "beta_shape_blind": "population_error_shape_blind"}.get(name, ""))
                ax.scatter(idx, v, label=label + (f" (‖·−w*‖² = {_fmt(pe)})" if math.isfinite(pe) else ""),
                           **style)
        ax.set_xlabel("coordinate i")
        ax.set_ylabel(r"$\beta_i$")
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
    ax.set_title("closed-form limit argmin Q(β) s.t. Xβ = y and the controls")
    fig.suptitle(_header(task, task_name), fontsize=10)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def plot_task(h5file, task_name, png_path):
    task = h5file["tasks"][task_name]
    if _text(task, "method") == "closed_form":
        _plot_closed_form(task, task_name, png_path)
        return
    neuron = _text(task, "model") == "single_neuron"
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5), layout="constrained")
    ax_a, ax_b, ax_c, ax_d = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]

    # (a) distances
    _plot_measured_theory(ax_a, task, "distance_q", "tab:blue", r"$\beta_Q$ (Theorem)")
    _plot_measured_theory(ax_a, task, "distance_shape_blind", "tab:orange", "shape-blind")
    _plot_measured_theory(ax_a, task, "distance_min_l2", "tab:gray", "min-L2")
    if neuron:
        _plot_measured_theory(ax_a, task, "distance_mirror", "tab:purple", "mirror guess")
    tol = 5e-3
    ax_a.axhline(tol, color="tab:red", linestyle=":", linewidth=1, label="tolerance 5e-3")
    ax_a.legend(fontsize=7)
    _finish(ax_a, "(a) distance of β(t) to β_Q and to the controls", r"$\|\beta(t)-\cdot\|/\|\beta_Q\|$")

    # (b) errors
    _plot_measured_theory(ax_b, task, "mse", "tab:blue", "train MSE")
    _plot_measured_theory(ax_b, task, "test_mse", "tab:green", "test MSE")
    _plot_measured_theory(ax_b, task, "population_error", "tab:brown", r"$\|\beta-w^*\|^2$")
    _finish(ax_b, "(b) train/test error (theory: value at β_Q)", "error")

    # (c) model-specific
    if neuron:
        _plot_measured_theory(ax_c, task, "null_ratio", "tab:blue", "c(t)", logy=False)
        for name, color, label in (("c_mirror", "tab:purple", "mirror guess"),
                                   ("c_shape_blind", "tab:orange", "shape-blind")):
            v = _param_scalar(task, name)
            if math.isfinite(v):
                ax_c.axhline(v, color=color, linestyle=":", linewidth=1.2, label=f"{label} {_fmt(v)}")
        c_q = _param_scalar(task, "c_q")
        _finish(ax_c, f"(c) null-space ratio c(t) = |a(t)/a₀|, Theorem 6.1: c_Q = {_fmt(c_q, 6)}",
                r"$\|P_{null}\tilde w(t)\|/\|P_{null}\tilde w_0\|$", logy=False)
        lo = [v for v in (c_q, _last(task, "null_ratio")) if math.isfinite(v)]
        if lo:
            ys = [v for v in lo + [_param_scalar(task, "c_mirror"), _param_scalar(task, "c_shape_blind"), 1.0]
                  if math.isfinite(v)]
            ax_c.set_ylim(0.9 * min(ys), 1.1 * max(ys))
    else:
        _plot_measured_theory(ax_c, task, "kkt_residual", "tab:blue", "KKT residual")
        _plot_measured_theory(ax_c, task, "balance_drift", "tab:green", "drift of u²−v²")
        _finish(ax_c, "(c) Theorem 4.1 KKT residual |P_null asinh(β/κ)|/|asinh(β/κ)|", "residual")

    # (d) coordinates
    beta_q = _param(task, "beta_q")
    beta_f = _param(task, "beta_final")
    if beta_q is not None and beta_f is not None and beta_q.shape == beta_f.shape:
        for name, color, marker, label in (("beta_min_l2", "tab:gray", ".", "min-L2"),
                                           ("beta_shape_blind", "tab:orange", ".", "shape-blind")):
            v = _param(task, name)
            if v is not None and v.shape == beta_q.shape:
                ax_d.scatter(beta_q, v, color=color, marker=marker, s=14, label=f"{label} vs β_Q")
        ax_d.scatter(beta_q, beta_f, color="tab:blue", s=16, label="β(T) vs β_Q")
        lo, hi = float(np.min(beta_q)), float(np.max(beta_q))
        pad = 0.05 * (hi - lo if hi > lo else 1.0)
        ax_d.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", linestyle="--", linewidth=1,
                  label="y = x")
        ax_d.set_xlabel(r"$\beta_Q$ coordinate")
        ax_d.set_ylabel("coordinate")
        ax_d.legend(fontsize=7)
        ax_d.grid(True, alpha=0.3)
    else:
        ax_d.text(0.5, 0.5, "no final β stored", ha="center", va="center", transform=ax_d.transAxes)
    ax_d.set_title("(d) β(T) against the closed-form β_Q", fontsize=10)
    fig.suptitle(_header(task, task_name), fontsize=10)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


# ---- per-experiment figure --------------------------------------------------------------------


def _closed_form_grid(h5file, task_names):
    """{s: [(alpha, population error of β_Q)]} and the min-L2 errors, from closed-form tasks."""
    curves, l2 = {}, []
    for name in task_names:
        t = h5file["tasks"][name]
        alpha, s = _num(t, "alpha"), _num(t, "s")
        pe = _param_scalar(t, "population_error_q")
        if math.isfinite(alpha) and math.isfinite(s) and math.isfinite(pe):
            curves.setdefault(s, []).append((alpha, pe))
            l2.append(_param_scalar(t, "population_error_min_l2"))
    for s in curves:
        curves[s].sort()
    return curves, [v for v in l2 if math.isfinite(v)]


def _monotone(curves):
    """(increasing in α at every s, increasing in s at every α common to all s)."""
    in_alpha = all(all(b[1] > a[1] for a, b in zip(pts, pts[1:])) for pts in curves.values())
    shapes = sorted(curves)
    alphas = set.intersection(*(set(a for a, _ in curves[s]) for s in shapes)) if shapes else set()
    in_s = True
    for a in alphas:
        vals = [dict(curves[s])[a] for s in shapes]
        in_s = in_s and all(y > x for x, y in zip(vals, vals[1:]))
    return in_alpha, in_s


def plot_experiment(h5file, experiment, task_names, png_path):
    tasks = [h5file["tasks"][n] for n in task_names]
    if tasks and all(_text(t, "method") == "closed_form" for t in tasks):
        curves, l2 = _closed_form_grid(h5file, task_names)
        fig, ax = plt.subplots(figsize=(9, 6), layout="constrained")
        cmap = plt.get_cmap("viridis")
        shapes = sorted(curves)
        for i, s in enumerate(shapes):
            pts = np.array(curves[s])
            ax.plot(pts[:, 0], pts[:, 1], marker="o", color=cmap(i / max(1, len(curves) - 1)), label=f"s = {s:g}")
        X = _param(tasks[0], "X")
        if X is not None and X.shape == (100, 1000):  # the paper's size: overlay the spec's calibration table
            for i, s in enumerate(shapes):
                if s in SPEC_T53_SHAPES:
                    j = SPEC_T53_SHAPES.index(s)
                    a = sorted(SPEC_T53)
                    ax.plot(a, [SPEC_T53[k][j] for k in a], linestyle="none", marker="x", markersize=8,
                            color=cmap(i / max(1, len(curves) - 1)),
                            label="separable.md T5.3 values (their data)" if i == 0 else None)
            ax.axhline(SPEC_T53_MIN_L2, color="gray", linestyle=":", label=f"T5.3 min-L2 {SPEC_T53_MIN_L2}")
        if l2:
            ax.axhline(float(np.median(l2)), color="black", linestyle="--", label=f"min-L2 interpolator {_fmt(l2[0])}")
        ax.set_xscale("log")
        ax.set_xlabel(r"initialization scale $\alpha = |u_0||v_0|$")
        ax.set_ylabel(r"population error $\|\beta_Q - w^*\|^2$")
        in_alpha, in_s = _monotone(curves)
        ax.set_title(f"{experiment}: Section 7 / T5.3 — increasing in α: {'yes' if in_alpha else 'NO'}, "
                     f"in s: {'yes' if in_s else 'NO'}", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(True, alpha=0.3)
        fig.savefig(png_path, dpi=90)
        plt.close(fig)
        return
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(15, 6), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels, d_q, d_blind, d_l2 = [], [], [], []
    for i, (name, t) in enumerate(zip(task_names, tasks)):
        label = _text(t, "sweep_point") or name
        s = _scalar_series(t, "observables", "distance_q")
        if s is not None:
            ax_l.plot(s[0], s[1], color=colors[i % len(colors)], label=label)
        labels.append(label)
        d_q.append(_last(t, "distance_q"))
        d_blind.append(_last(t, "distance_shape_blind"))
        d_l2.append(_last(t, "distance_min_l2"))
    ax_l.axhline(5e-3, color="tab:red", linestyle=":", label="tolerance 5e-3")
    _finish(ax_l, f"{experiment}: |β(t) − β_Q|/|β_Q|", "relative distance")
    x = np.arange(len(labels))
    w = 0.27
    for off, vals, color, lab in ((-w, d_q, "tab:blue", "to β_Q (theorem)"),
                                  (0, d_blind, "tab:orange", "to shape-blind"),
                                  (w, d_l2, "tab:gray", "to min-L2")):
        v = np.array(vals, dtype=float)
        v = np.where(np.isfinite(v) & (v > 0), v, np.nan)
        ax_r.bar(x + off, v, width=w, color=color, label=lab)
    ax_r.axhline(5e-3, color="tab:red", linestyle=":", label="tolerance 5e-3")
    ax_r.set_yscale("log")
    ax_r.set_xticks(x)
    ax_r.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
    ax_r.set_ylabel("final relative distance")
    ax_r.set_title("final distance: to β_Q below the tolerance, controls above (unless the control equals β_Q)",
                   fontsize=9)
    ax_r.legend(fontsize=7)
    ax_r.grid(True, axis="y", alpha=0.3)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


# ---- table ------------------------------------------------------------------------------------


def table(h5file, task_names):
    header = ["task", "sweep point", "model", "method", "steps", "‖β−β_Q‖/‖β_Q‖", "KKT / c_GD (c_Q)",
              "shape-blind miss (pred)", "min-L2 miss (pred)", "mirror c", "‖β−w*‖² (β_Q)", "verdict"]
    lines = _table_header(header)
    closed = {}
    for name in task_names:
        t = h5file["tasks"][name]
        method, model = _text(t, "method"), _text(t, "model")
        if method == "closed_form":
            closed.setdefault(_text(t, "experiment"), []).append(name)
            row = [name, _text(t, "sweep_point"), model, method, "—", "—",
                   f"KKT {_fmt(_num(t, 'q_stationarity'), 2)}", _fmt(_param_scalar(t, "separation_shape_blind")),
                   _fmt(_param_scalar(t, "separation_min_l2")), "—",
                   f"({_fmt(_param_scalar(t, 'population_error_q'))}; min-L2 "
                   f"{_fmt(_param_scalar(t, 'population_error_min_l2'))})",
                   _text(t, "verdict") or "—"]
        else:
            if model == "single_neuron":
                mid = f"{_fmt(_last(t, 'null_ratio'), 6)} ({_fmt(_param_scalar(t, 'c_q'), 6)})"
                mirror = _fmt(_param_scalar(t, "c_mirror"))
            else:
                mid = f"KKT {_fmt(_last(t, 'kkt_residual'), 3)}"
                mirror = "—"
            pe = _last(t, "population_error")
            row = [name, _text(t, "sweep_point"), model, method, _fmt(_num(t, "steps_taken"), 8),
                   _fmt(_last(t, "distance_q"), 3), mid,
                   f"{_fmt(_last(t, 'distance_shape_blind'), 3)} "
                   f"({_fmt(_param_scalar(t, 'separation_shape_blind'), 3)})",
                   f"{_fmt(_last(t, 'distance_min_l2'), 3)} ({_fmt(_param_scalar(t, 'separation_min_l2'), 3)})",
                   mirror, f"{_fmt(pe)} ({_fmt(_param_scalar(t, 'population_error_q'))})",
                   _text(t, "verdict") or "—"]
        lines.append(_row(row))
    lines += ["", "Tolerances (separable.md §5.10): ‖β−β_Q‖/‖β_Q‖ < 5e-3 and KKT < 5e-3 (T5.1), "
              "|c_GD − c_Q|/c_Q < 1e-3 and cos = 1 (T5.2); a control must miss by more than the tolerance "
              "unless it coincides with β_Q (pred = ‖control − β_Q‖/‖β_Q‖)."]
    for exp, names in closed.items():
        curves, _ = _closed_form_grid(h5file, names)
        if curves:
            in_alpha, in_s = _monotone(curves)
            lines += ["", f"T5.3 ({exp}): population error increasing in α at every s: "
                      f"**{'yes' if in_alpha else 'no'}**; increasing in s at every α: **{'yes' if in_s else 'no'}**."]
    return lines
