"""Report plugin of the kind ``lexicographic_margin`` (analysis/report.py, ``kind_plugin``).

Nacson, Gunasekar, Lee, Srebro, Soudry, ICML 2019, "Lexicographic and Depth-Sensitive Margins in
Homogeneous and Non-Homogeneous Deep Models" (spec: shared/papers/separable.md §4).

A task either runs GD (series indexed by the step t) or traces the norm-constrained path (series
indexed by the radius: ``time`` holds c for the L1 methods and B for the parameter sphere). The
figures show, measured solid and theory (from ``theory/``) dashed:

* depth-2 net on the §4.5 data: s against c = ‖β‖₁ with the exact path s(c) = 0.4 + ln1.5/(2.5c)
  and the lexicographic s* = 0.4 (for GD, the trajectory in the (c, s) plane: it leaves the path,
  T4.2), the sorted normalised margins against the lexicographic (1, 1.6, 1.6), and |s − s(c)|;
* the ensemble aᵀx + (u∘v)ᵀx: ‖a‖ with √2, margin/B² with 0.5 + 1/B² → 0.5, the norms of the
  parts, and the deep part's direction (T4.3);
* any other model: the smallest normalised margin, the loss and the norm.
"""

import math
import textwrap

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._common import STEP, TIME, cell as _cell, header as _header, row as _row, series, text as _text

TITLE = "lexicographic and depth-sensitive margins (Nacson et al. 2019, separable.md §4)"

LEXICOGRAPHIC_S = 0.4
LEXICOGRAPHIC_MARGINS = (1.0, 1.6, 1.6)
SHALLOW_NORM_LIMIT = math.sqrt(2.0)
MARGIN_RATIO_LIMIT = 0.5


# ---- reading ----------------------------------------------------------------------------------


def _series(task, which, name):
    """(step, time, value) arrays of /tasks/<t>/<which>/<name>, cut to a common length, or None."""
    return series(task, which, name, STEP + TIME)


class _Task:
    def __init__(self, f, name):
        g = f["tasks"][name]
        self.name = name
        self.g = g
        self.experiment = _text(g, "experiment")
        self.sweep_point = _text(g, "sweep_point")
        self.method = _text(g, "method", "?")
        self.depths = _text(g, "depths", "?")
        self.dataset = _text(g, "dataset", "?")
        self.verdict = _text(g, "verdict")
        self.verdict_detail = _text(g, "verdict_detail")
        self.is_gd = self.method == "gd"
        self.is_ensemble = "+" in self.depths

    def obs(self, name):
        return _series(self.g, "observables", name)

    def theory(self, name):
        return _series(self.g, "theory", name)

    def x(self, series):
        """The x axis: the step t for GD, the radius for a constrained path."""
        step, time, _ = series
        return step.astype(float) if self.is_gd else time

    def x_label(self):
        if self.is_gd:
            return "t (GD steps)"
        return "B (parameter radius)" if self.method == "projected_sphere" else "c (L1 radius of β = u∘v)"

    def last(self, which, name, column=None):
        s = self.obs(name) if which == "obs" else self.theory(name)
        if s is None:
            return math.nan
        v = s[2][-1]
        if column is not None:
            v = v.reshape(-1)[column] if v.size > column else math.nan
        return float(v)


# ---- drawing ----------------------------------------------------------------------------------


def _setup_x(ax, task, x):
    if task.is_gd or (len(x) > 1 and np.all(x > 0) and x.max() / x.min() > 20):
        ax.set_xscale("log")
    ax.set_xlabel(task.x_label())


def _pair(ax, task, name, label, color="tab:blue", column=None, marker=None):
    """Measured `name` solid and its theory dashed; returns True if anything was drawn."""
    drew = False
    for which, style in (("obs", {"linestyle": "-", "linewidth": 1.6}),
                         ("theory", {"linestyle": "--", "linewidth": 1.2})):
        s = task.obs(name) if which == "obs" else task.theory(name)
        if s is None:
            continue
        x = task.x(s)
        v = s[2] if column is None else s[2][:, column]
        keep = np.isfinite(v) & (x > 0 if task.is_gd else np.isfinite(x))
        if not np.any(keep):
            continue
        lab = label if which == "obs" else f"{label} theory"
        if which == "obs":
            ax.plot(x[keep], v[keep], color=color, marker=marker if not task.is_gd else None, markersize=4,
                    label=lab, **style)
        else:
            ax.plot(x[keep], v[keep], color="black" if column is None else color, label=lab, **style)
        _setup_x(ax, task, x[keep])
        drew = True
    return drew


def _hline(ax, y, label, color="tab:gray"):
    ax.axhline(y, color=color, linestyle=":", linewidth=1.2, label=label)


def _finish(ax, title):
    if not ax.lines:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    elif ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.grid(True, which="major", alpha=0.3)
    ax.set_title(title, fontsize=10)


def _panel_s(ax, task):
    _pair(ax, task, "s", "s", marker="o")
    _hline(ax, LEXICOGRAPHIC_S, "lexicographic s* = 0.4")
    ax.set_ylabel("s = β₁/‖β‖₁")
    _finish(ax, "position on the max-margin edge" + (" (theory: s(c) at c = ‖β(t)‖₁)" if task.is_gd else ""))


def _panel_s_vs_c(ax, task):
    """GD's trajectory in the (c, s) plane against the exact constrained path s(c) (T4.2)."""
    s, th, c = task.obs("s"), task.theory("s"), task.obs("deep_beta_l1")
    if s is not None and c is not None:
        keep = c[2] > 0.3
        ax.plot(c[2][keep], s[2][keep], color="tab:blue", linewidth=1.6, label="GD: s against ‖β(t)‖₁")
        if th is not None:
            ax.plot(c[2][keep], th[2][keep], color="black", linestyle="--", label="constrained path s(c)")
    _hline(ax, LEXICOGRAPHIC_S, "lexicographic s* = 0.4")
    ax.set_xlabel("c = ‖β‖₁")
    ax.set_ylabel("s")
    _finish(ax, "GD vs the constrained path (T4.2)")


def _panel_margins(ax, task, lexicographic):
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    s = task.obs("normalized_margins")
    if s is not None and s[2].ndim == 2:
        for j in range(min(s[2].shape[1], len(colors))):
            _pair(ax, task, "normalized_margins", f"margin #{j + 1}", color=colors[j], column=j, marker="o")
    if lexicographic:
        for j, y in enumerate(sorted(set(LEXICOGRAPHIC_MARGINS))):
            _hline(ax, y, "lexicographic (1, 1.6, 1.6)" if j == 0 else None)
    ax.set_ylabel("sorted normalised margins")
    _finish(ax, "sorted margins / ‖β‖₁" if not task.is_ensemble else "sorted margins / ‖θ‖^D")


def _panel_s_error(ax, task):
    s, th = task.obs("s"), task.theory("s")
    if s is not None and th is not None:
        x = task.x(s)
        err = np.abs(s[2] - th[2])
        floor = 1e-16
        ax.semilogy(x, np.maximum(err, floor), color="tab:blue", marker="o", label="|s − s(c)|")
        ax.axhline(1e-3, color="tab:red", linestyle=":", label="T4.1 tolerance 1e-3")
        _setup_x(ax, task, x)
        ax.set_xlabel(task.x_label())
    ax.set_ylabel("|s_num − s(c)|")
    _finish(ax, "error against the exact path (T4.1)")


def _panel_loss(ax, task):
    s = task.obs("log_loss")
    if s is not None:
        x = task.x(s)
        keep = x > 0
        ax.plot(x[keep], s[2][keep] / math.log(10), color="tab:blue", label="log10 L")
        _setup_x(ax, task, x[keep])
    ax.set_ylabel("log10 L")
    _finish(ax, "loss")


def _panel_ensemble_norms(ax, task):
    drew = _pair(ax, task, "shallow_param_norm", "‖a‖ (shallow)", color="tab:blue", marker="o")
    drew |= _pair(ax, task, "deep_param_norm", "‖(u,v)‖ (deep)", color="tab:orange", marker="o")
    drew |= _pair(ax, task, "deep_beta_l1", "‖u∘v‖₁", color="tab:green", marker="o")
    if drew:
        ax.set_yscale("log")
    _hline(ax, SHALLOW_NORM_LIMIT, "√2")
    ax.set_ylabel("norm")
    _finish(ax, "norms of the parts")


def _panel_shallow(ax, task):
    _pair(ax, task, "shallow_param_norm", "‖a‖", marker="o")
    a, norm = task.obs("shallow_param_norm"), task.obs("norm")
    if a is not None and norm is not None:
        x = task.x(a)
        keep = (x > 0) if task.is_gd else np.isfinite(x)
        ax.plot(x[keep], a[2][keep] / norm[2][keep], color="tab:purple", marker=None if task.is_gd else "s",
                markersize=4, label="‖a‖/‖θ‖ (share of the norm)")
    top = max([line.get_ydata().max() for line in ax.lines if len(line.get_ydata())] + [SHALLOW_NORM_LIMIT])
    ax.set_ylim(0, 1.15 * top)  # full scale, so a bounded ‖a‖ reads as flat
    ax.set_ylabel("‖a‖,  ‖a‖/‖θ‖")
    _finish(ax, "shallow part ‖a‖ (theory √2) and its share")


def _panel_ratio(ax, task):
    _pair(ax, task, "margin_over_norm_pow", "margin/B²", marker="o")
    _hline(ax, MARGIN_RATIO_LIMIT, "limit 0.5")
    ax.set_ylabel("min margin / ‖θ‖²")
    _finish(ax, "margin/B² (theory 0.5 + 1/B²)")


def _panel_direction(ax, task):
    s = task.obs("deep_direction")
    if s is not None and s[2].ndim == 2:
        x = task.x(s)
        keep = x > 0 if task.is_gd else np.isfinite(x)
        for j in range(min(s[2].shape[1], 6)):
            ax.plot(x[keep], s[2][keep, j], marker=None if task.is_gd else "o", markersize=4,
                    label=f"β_deep[{j}]/‖β_deep‖₁")
        th = task.theory("deep_direction")
        if th is not None and th[2].ndim == 2:
            for j in range(min(th[2].shape[1], 6)):
                ax.plot(task.x(th), th[2][:, j], color="black", linestyle="--", linewidth=1.0,
                        label="theory (ŵ/‖ŵ‖₁)" if j == 0 else None)
        _setup_x(ax, task, x[keep])
    _hline(ax, LEXICOGRAPHIC_S, "0.4 (lexicographic)")
    ax.set_ylabel("deep direction")
    _finish(ax, "direction of the deep part")


def _panel_generic(ax, task, name, ylabel):
    _pair(ax, task, name, name, marker="o")
    ax.set_ylabel(ylabel)
    _finish(ax, name.replace("_", " "))


def _summary(ax, task):
    ax.axis("off")
    lines = [f"task      {task.name}", f"experiment {task.experiment}", f"sweep     {task.sweep_point or '(none)'}",
             f"method    {task.method}", f"depths    {task.depths}", f"dataset   {task.dataset}",
             f"verdict   {task.verdict or '—'}"]
    chunks = textwrap.wrap(task.verdict_detail, 62)
    lines += ["  " + chunk for chunk in chunks[:22]]
    if len(chunks) > 22:
        lines.append("  … (full text: verdict_detail attribute / report.md)")
    ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=6.5, va="top", ha="left", transform=ax.transAxes)


def plot_task(h5file, task_name, png_path):
    task = _Task(h5file, task_name)
    edge = task.dataset == "nacson2019_edge"
    fig, axes = plt.subplots(2, 3, figsize=(16, 9), layout="constrained")
    ax = axes.reshape(-1)
    if task.is_ensemble:
        _panel_shallow(ax[0], task)
        _panel_ratio(ax[1], task)
        _panel_ensemble_norms(ax[2], task)
        _panel_direction(ax[3], task)
        _panel_loss(ax[4], task)
    elif task.theory("s") is not None:
        _panel_s(ax[0], task)
        if task.is_gd:
            _panel_s_vs_c(ax[1], task)
        else:
            _panel_s_error(ax[1], task)
        _panel_margins(ax[2], task, lexicographic=edge)
        _panel_generic(ax[3], task, "deep_beta_l1", "c = ‖β‖₁")
        _panel_loss(ax[4], task)
    else:
        _panel_generic(ax[0], task, "min_normalized_margin", "smallest normalised margin")
        _panel_margins(ax[1], task, lexicographic=False)
        _panel_direction(ax[2], task)
        _panel_generic(ax[3], task, "norm", "‖θ‖")
        _panel_loss(ax[4], task)
    _summary(ax[5], task)
    title = f"{task.name}: {task.experiment} ({task.method}, depths {task.depths})"
    if task.sweep_point:
        title += f" [{task.sweep_point}]"
    if task.verdict:
        title += f"  verdict: {task.verdict}"
    fig.suptitle(title)
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def plot_experiment(h5file, experiment, task_names, png_path):
    """Tasks of one experiment on one plot: s (or ‖a‖, or the smallest normalised margin)."""
    tasks = [_Task(h5file, n) for n in task_names]
    fig, ax = plt.subplots(1, 1, figsize=(8, 5.5), layout="constrained")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    name = "s"
    if not any(t.obs("s") is not None and t.theory("s") is not None for t in tasks):
        name = "shallow_param_norm" if any(t.obs("shallow_param_norm") is not None for t in tasks) \
            else "min_normalized_margin"
    for i, t in enumerate(tasks):
        if t.is_gd and name == "s" and t.obs("deep_beta_l1") is not None:
            c, s, th = t.obs("deep_beta_l1"), t.obs("s"), t.theory("s")
            keep = c[2] > 0.3
            ax.plot(c[2][keep], s[2][keep], color=colors[i % len(colors)], label=f"GD {t.sweep_point or t.name}")
            if th is not None and i == 0:
                ax.plot(c[2][keep], th[2][keep], color="black", linestyle="--", label="constrained path s(c)")
            ax.set_xlabel("c = ‖β(t)‖₁")
        else:
            _pair(ax, t, name, t.sweep_point or t.name, color=colors[i % len(colors)], marker="o")
    if name == "s":
        _hline(ax, LEXICOGRAPHIC_S, "lexicographic s* = 0.4")
        ax.set_ylabel("s = β₁/‖β‖₁")
    else:
        ax.set_ylabel(name.replace("_", " "))
    _finish(ax, f"experiment {experiment}: {name} ({len(tasks)} tasks; dashed: theory)")
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


# ---- table ------------------------------------------------------------------------------------


def _fmt(x, digits=5):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def _rows(task):
    """[(point, quantity, measured, predicted)] for the key quantities of one task."""
    rows = []
    s_obs, s_th = task.obs("s"), task.theory("s")
    if task.is_gd:
        where = lambda series: f"t={int(series[0][-1])}"  # noqa: E731
    else:
        where = lambda series: f"r={_fmt(float(series[1][-1]))}"  # noqa: E731
    if task.is_ensemble:
        for name, label in (("shallow_param_norm", "‖a‖"), ("margin_over_norm_pow", "margin/B²")):
            o, th = task.obs(name), task.theory(name)
            if o is None:
                continue
            if task.is_gd:
                # Informational (§4.7 T4.3): the constrained path's value at the same norm; GD
                # discards the shallow part only logarithmically slowly.
                rows.append((where(o), label, _fmt(float(o[2][-1])),
                             f"{_fmt(float(th[2][-1]))} (constrained path)" if th is not None else "—"))
            else:
                for i in range(len(o[1])):
                    rows.append((f"B={_fmt(float(o[1][i]))}", label, _fmt(float(o[2][i])),
                                 _fmt(float(th[2][i])) if th is not None else "—"))
        o = task.obs("deep_beta_l1")
        if o is not None and task.is_gd:
            rows.append((where(o), "‖u∘v‖₁", _fmt(float(o[2][-1])), "—"))
    elif s_obs is not None and s_th is not None:
        if task.is_gd:
            rows.append((where(s_obs), "s", _fmt(float(s_obs[2][-1])), f"{_fmt(float(s_th[2][-1]))} (path), 0.4 (lex.)"))
            nm = task.obs("normalized_margins")
            if nm is not None and nm[2].ndim == 2 and nm[2].shape[1] >= 2:
                rows.append((where(nm), "smallest normalised margin", _fmt(float(nm[2][-1, 0])), "1"))
                rows.append((where(nm), "second normalised margin", _fmt(float(nm[2][-1, 1])), "< 1.6 (lex. 1.6)"))
        else:
            for i in range(len(s_obs[1])):
                rows.append((f"r={_fmt(float(s_obs[1][i]))}", "s", _fmt(float(s_obs[2][i]), 7), _fmt(float(s_th[2][i]), 7)))
    else:
        o, th = task.obs("min_normalized_margin"), task.theory("min_normalized_margin")
        if o is not None:
            rows.append((where(o), "smallest normalised margin", _fmt(float(o[2][-1])),
                         _fmt(float(th[2][-1])) if th is not None else "—"))
    return rows


def table(h5file, task_names):
    header = ["task", "experiment", "sweep point", "method", "depths", "point", "quantity", "measured",
              "predicted", "verdict"]
    lines = ["Predicted: the exact constrained path s(c) = 0.4 + ln1.5/(2.5c) (for GD: at c = ‖β(T)‖₁), "
             "‖a‖ → √2 and margin/B² = 0.5 + 1/B² for the ensemble (separable.md §4.5, §4.7).", "",
             *_header(header)]
    for name in task_names:
        try:
            task = _Task(h5file, name)
            rows = _rows(task)
        except (KeyError, OSError, ValueError, TypeError, IndexError) as exc:
            lines.append(f"| {name} | unreadable: {_cell(exc)} |" + " |" * (len(header) - 2))
            continue
        if not rows:
            rows = [("—", "—", "—", "—")]
        for point, quantity, measured, predicted in rows:
            lines.append(_row((
                task.name, task.experiment, task.sweep_point, task.method, task.depths, point, quantity, measured,
                predicted, task.verdict or "—")))
    return lines
