"""Figures and a Markdown summary for one gdlab campaign file.

Usage (from the repository root)::

    /usr/bin/python3 -m analysis.report FILE.h5 --out DIR

For every task of kind ``separable_gd`` with status ``done`` it writes ``DIR/<task>_fig1.png``, the
panels of Fig. 1 of Soudry et al. 2018 (spec: shared/papers/separable.md §1.4):

    (A) the data, the max-margin separator and the GD separator at the last step,
    (B) ‖w(t)‖ normalised to 1 at the last step,
    (C) the loss, log-log, with the theory overlaid,
    (D) the angle gap and (E) the margin gap on a log-t axis, theory dashed.

When two or more such tasks share an experiment it also writes ``DIR/<experiment>_combined.png``
(margin gap, angle gap, loss ratio and residual against t, one line per task). ``DIR/report.md`` has
one table row per task (any kind, any status), the errors of failed tasks, and links to the figures.
A file whose ``gdlab_status`` is not ``complete`` (a partial file left by a crash) is reported as far
as it goes, and the report says so.

Exit status: 0 on success; 2, with a one-line message on stderr, when the file is missing, is not
readable as HDF5, or is not a gdlab campaign file.
"""

import argparse
import importlib
import math
import os
import re
import sys
import textwrap

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (must follow matplotlib.use)

try:
    import h5py
except ImportError:  # pragma: no cover - environment problem, reported like an unreadable file
    h5py = None

SEPARABLE_GD = "separable_gd"
MEASURED_COLOR = "tab:blue"


class ReportError(Exception):
    """A problem with the input file that ends the run with exit status 2."""


# ---- Reading ----------------------------------------------------------------------------------


def as_str(value):
    """An HDF5 string attribute or dataset value (str, bytes, or a 0-d/1-element array) as str."""
    if isinstance(value, np.ndarray):
        if value.size == 1:
            value = value.reshape(-1)[0]
        else:
            return ", ".join(as_str(v) for v in value.reshape(-1))
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def attr_str(obj, name, default=""):
    return as_str(obj.attrs[name]) if name in obj.attrs else default


def attr_float(obj, name):
    if name not in obj.attrs:
        return math.nan
    try:
        return float(np.asarray(obj.attrs[name]).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return math.nan


def read_string_dataset(ds):
    value = ds[()]
    return as_str(value)


class Series:
    """One H5MD time series; step/time/value cut to their common length (a crash may leave them
    unequal)."""

    def __init__(self, group):
        step = np.asarray(group["step"][()], dtype=np.int64).reshape(-1)
        time = np.asarray(group["time"][()], dtype=np.float64).reshape(-1) if "time" in group else None
        value = np.asarray(group["value"][()], dtype=np.float64)
        n = min(len(step), value.shape[0] if value.ndim else 0)
        if time is not None:
            n = min(n, len(time))
        self.step = step[:n]
        self.time = time[:n] if time is not None else step[:n].astype(np.float64)
        self.value = value[:n]

    def __len__(self):
        return len(self.step)

    def last(self):
        return self.value[-1] if len(self) else math.nan

    def at_step(self, step):
        """The value at exactly `step`, or NaN."""
        idx = np.nonzero(self.step == step)[0]
        return float(self.value[idx[0]]) if len(idx) and self.value.ndim == 1 else math.nan


def read_series_group(task, which):
    """{name: Series} for /tasks/<t>/<which>/*; malformed series are skipped with a note."""
    out, notes = {}, []
    if which not in task:
        return out, notes
    for name, grp in task[which].items():
        if not isinstance(grp, h5py.Group) or not all(k in grp for k in ("step", "value")):
            notes.append(f"{which}/{name} is not a step/time/value series")
            continue
        try:
            out[name] = Series(grp)
        except (OSError, ValueError, TypeError) as exc:
            notes.append(f"{which}/{name} unreadable: {exc}")
    return out, notes


def read_parameters(task):
    out = {}
    if "parameters" not in task:
        return out
    for name, ds in task["parameters"].items():
        if isinstance(ds, h5py.Dataset):
            try:
                out[name] = np.asarray(ds[()], dtype=np.float64)
            except (OSError, ValueError, TypeError):
                pass
    return out


class Task:
    def __init__(self, name, grp):
        self.name = name
        self.task_id = attr_str(grp, "task_id", "")
        self.kind = attr_str(grp, "kind", "?")
        self.experiment = attr_str(grp, "experiment", "")
        self.experiment_index = attr_str(grp, "experiment_index", "")
        self.sweep_point = attr_str(grp, "sweep_point", "")
        self.status = attr_str(grp, "status", "?")
        self.error = attr_str(grp, "error", "")
        self.verdict = attr_str(grp, "verdict", "")
        self.verdict_detail = attr_str(grp, "verdict_detail", "")
        self.loss_name = attr_str(grp, "loss", "")
        self.lr = attr_float(grp, "lr")
        self.momentum = attr_float(grp, "momentum")
        self.eta_eff = attr_float(grp, "eta_eff")
        self.notes = []
        self.obs, n1 = read_series_group(grp, "observables")
        self.theory, n2 = read_series_group(grp, "theory")
        self.notes += n1 + n2
        self.params = read_parameters(grp) if self.kind == SEPARABLE_GD else {}

    def final_step(self):
        """The last step recorded by any observable (norm preferred)."""
        if "norm" in self.obs and len(self.obs["norm"]):
            return int(self.obs["norm"].step[-1])
        steps = [int(s.step[-1]) for s in self.obs.values() if len(s)]
        return max(steps) if steps else None

    def measured(self, name):
        s = self.obs.get(name)
        return float(s.last()) if s is not None and len(s) and s.value.ndim == 1 else math.nan

    def predicted(self, name):
        """Theory value at the final measured step (NaN when absent)."""
        s, step = self.theory.get(name), self.final_step()
        return s.at_step(step) if s is not None and step is not None else math.nan


def open_campaign(path):
    """(h5py.File, note). Tries a plain read-only open, then SWMR read (a file left by a crashed SWMR
    writer keeps its 'open for write' flag and only opens that way)."""
    if h5py is None:
        raise ReportError("h5py is not installed (use Debian's /usr/bin/python3 with python3-h5py)")
    if not os.path.exists(path):
        raise ReportError(f"{path}: no such file")
    if not os.path.isfile(path) or not os.access(path, os.R_OK):
        raise ReportError(f"{path}: not a readable file")
    try:
        return h5py.File(path, "r"), ""
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    try:
        return h5py.File(path, "r", swmr=True), "opened in SWMR read mode (plain open failed: %s)" % first
    except OSError:
        raise ReportError(f"{path}: cannot open as HDF5: {first}") from None


# ---- Formatting -------------------------------------------------------------------------------


def fmt(x, digits=4):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}g}"


def fmt_pair(meas, pred):
    if not math.isfinite(meas):
        return "—"
    return fmt(meas) if not math.isfinite(pred) else f"{fmt(meas)} ({fmt(pred)})"


def md_cell(s):
    s = str(s).replace("\r", " ").replace("\n", " ").replace("|", "\\|")
    return s if s else " "


def safe_name(s, fallback):
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("._")
    return s or fallback


# ---- Figures ----------------------------------------------------------------------------------


def positive_t(series):
    """Mask of the samples usable on a log-t axis."""
    return series.step > 0


def _line_through(ax, normal, offset, limits, **style):
    """Draws {x in R²: normalᵀx = offset} clipped to `limits` (xmin, xmax, ymin, ymax)."""
    normal = np.asarray(normal, dtype=float)
    nn = float(normal @ normal)
    if not nn > 0:
        return
    p0 = offset * normal / nn
    direction = np.array([-normal[1], normal[0]]) / math.sqrt(nn)
    r = 2 * max(abs(v) for v in limits) + abs(offset) / math.sqrt(nn) + 1
    pts = np.array([p0 - r * direction, p0 + r * direction])
    ax.plot(pts[:, 0], pts[:, 1], **style)


def panel_data(ax, task):
    """(A): points, max-margin separator and margins, GD separator at the last step. For d != 2 the
    points are projected on the plane spanned by ŵ and the part of w(T) orthogonal to it."""
    p = task.params
    X, y, w_hat = p.get("X"), p.get("y"), p.get("w_hat")
    problem = None
    if X is None or y is None or w_hat is None:
        problem = "no data stored"
    elif X.ndim != 2 or y.shape != (X.shape[0],) or w_hat.size != X.shape[1] or X.shape[0] == 0:
        problem = "data shapes inconsistent"
    elif not (np.all(np.isfinite(X)) and np.all(np.isfinite(y)) and np.all(np.isfinite(w_hat))
              and np.linalg.norm(w_hat) > 0):
        problem = "data not finite"
    if problem:
        ax.text(0.5, 0.5, problem, ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("(A) data")
        return
    w_hat = w_hat.reshape(-1)
    w_last = None
    if "w" in task.obs and len(task.obs["w"]) and task.obs["w"].value.ndim == 2:
        w_last = task.obs["w"].value[-1]
        if w_last.shape != w_hat.shape or not np.all(np.isfinite(w_last)):
            w_last = None
    d = X.shape[1]
    if d == 2:
        P = np.eye(2)
        xlabel, ylabel = "$x_1$", "$x_2$"
    else:
        e1 = w_hat / np.linalg.norm(w_hat)
        e2 = np.zeros(d)
        if w_last is not None:
            e2 = w_last - (w_last @ e1) * e1
        if not np.linalg.norm(e2) > 1e-12 * max(1.0, np.linalg.norm(w_last if w_last is not None else e1)):
            rest = X - np.outer(X @ e1, e1)
            e2 = np.linalg.svd(rest, full_matrices=False)[2][0] if d > 1 else np.zeros(d)
        n2 = np.linalg.norm(e2)
        e2 = e2 / n2 if n2 > 0 else e2
        P = np.stack([e1, e2], axis=1)
        xlabel, ylabel = r"$x\cdot\hat w/\|\hat w\|$", r"$x\cdot e_2$"
    Z = X @ P
    wh2 = w_hat @ P
    pos, neg = y > 0, y <= 0
    ax.scatter(Z[pos, 0], Z[pos, 1], marker="o", color="tab:blue", s=28, label="$y=+1$", zorder=3)
    ax.scatter(Z[neg, 0], Z[neg, 1], marker="s", color="tab:red", s=28, label="$y=-1$", zorder=3)
    sup = p.get("support")
    if sup is not None and sup.size:
        idx = np.asarray(np.round(sup.reshape(-1)), dtype=int)
        idx = idx[(idx >= 0) & (idx < len(y))]
        ax.scatter(Z[idx, 0], Z[idx, 1], s=110, facecolors="none", edgecolors="black", linewidths=1.2,
                   label="support vectors", zorder=4)
    span = max(float(np.max(np.abs(Z))) if Z.size else 1.0, 1e-9) * 1.15
    limits = (-span, span, -span, span)
    _line_through(ax, wh2, 0.0, limits, color="black", linewidth=1.5, label="max margin")
    for off in (1.0, -1.0):
        _line_through(ax, wh2, off, limits, color="black", linewidth=0.8, linestyle=":")
    if w_last is not None:
        _line_through(ax, w_last @ P, 0.0, limits, color="tab:green", linewidth=1.5, linestyle="--",
                      label="GD at last step")
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("(A) data" + ("" if d == 2 else f" (d={d}, projected)"))


def _curve(series, transform=None):
    """(t, v) of a 1-D series restricted to t > 0 and finite values, or None."""
    if series is None or not len(series) or series.value.ndim != 1:
        return None
    m = positive_t(series)
    t, v = series.step[m].astype(float), series.value[m]
    if transform is not None:
        v = transform(v)
    keep = np.isfinite(v)
    return (t[keep], v[keep]) if np.any(keep) else None


def draw_measured_theory(ax, lines, logy=False):
    """Draws measured curves solid and theory curves dashed against t on a log axis.

    lines: [(measured (t, v) or None, theory (t, v) or None, colour, measured label)].
    logy: True, False or "auto" (log when every measured curve is positive and one spans more than
    two decades). The y range follows the measured curves and the late half (in ln t) of the theory
    curves: w_pred(t) = ŵ ln t + w̃ is an asymptotic prediction and is far off at t ~ 1. A theory
    curve that is round-off (|v| < 1e-12 late on, e.g. w̃ ∥ ŵ on the Fig. 1 data) is labelled ≈ 0.
    Returns True if anything was drawn."""
    meas = [m for m, _, _, _ in lines if m is not None]
    if logy == "auto":
        logy = bool(meas) and all(bool(np.all(v > 0)) for _, v in meas) and \
            any(float(np.max(v)) > 100 * float(np.min(v)) for _, v in meas)
    ax.set_xscale("log")
    ax.set_xlabel("t (iterations)")
    single = len(lines) == 1
    ranged, drew = [], False
    floor = min((float(np.min(v)) for _, v in meas if len(v)), default=0.0) * 1e-3 if logy else -math.inf
    for m, th, color, label in lines:
        for curve, is_meas in ((m, True), (th, False)):
            if curve is None:
                continue
            t, v = curve
            lab = label if is_meas else ("theory" if single else None)
            if not is_meas and lab and float(np.max(np.abs(v[t >= math.sqrt(t[-1])]))) < 1e-12:
                lab += " (≈ 0)"
            if logy:
                t, v = t[v > 0], v[v > 0]
            if not len(t):
                if lab:
                    ax.plot([], [], color=color if not single else "black", linestyle="--",
                            label=lab + (" (≤ 0, not shown)" if logy else ""))
                continue
            if is_meas:
                ax.plot(t, v, color=color, linewidth=1.6, label=lab)
                ranged.append(v)
            else:
                ax.plot(t, v, color="black" if single else color, linestyle="--", linewidth=1.2, label=lab)
                late = v[t >= math.sqrt(t[-1])]
                ranged.append(late[late >= floor])
            drew = True
    values = np.concatenate(ranged) if ranged else np.array([])
    if values.size:
        lo, hi = float(np.min(values)), float(np.max(values))
        if logy:
            llo, lhi = math.log10(lo), math.log10(hi)
            pad = 0.05 * max(lhi - llo, 0.5)
            ax.set_yscale("log")
            ax.set_ylim(10 ** (llo - pad), 10 ** (lhi + pad))
        else:
            pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi), 1e-12) * 0.05
            ax.set_ylim(lo - pad, hi + pad)
    return drew


def _plot_pair(ax, task, name, transform=None, logy=False):
    """Measured `name` of one task (solid) and its theory (dashed) against t."""
    return draw_measured_theory(
        ax, [(_curve(task.obs.get(name), transform), _curve(task.theory.get(name), transform),
              MEASURED_COLOR, "GD")], logy)


def panel_text(ax, task):
    ax.axis("off")
    p = task.params
    w_hat = p.get("w_hat")
    sig = p.get("sigma_max")
    lines = [
        f"task        {task.name} (id {task.task_id})",
        f"experiment  {task.experiment} [{task.experiment_index}]",
        f"sweep point {task.sweep_point or '(none)'}",
        f"loss        {task.loss_name or '?'}",
        f"lr          {fmt(task.lr, 6)}   momentum {fmt(task.momentum, 4)}",
        f"eta_eff     {fmt(task.eta_eff, 6)}",
        f"sigma_max   {fmt(float(sig.reshape(-1)[0]) if sig is not None and sig.size else math.nan, 6)}",
        f"|w_hat|     {fmt(float(np.linalg.norm(w_hat)) if w_hat is not None else math.nan, 6)}",
        f"final step  {task.final_step()}",
        f"|w(T)|      {fmt_pair(task.measured('norm'), task.predicted('norm'))}",
        f"loss ratio  {fmt(task.measured('loss_ratio'))}",
        f"margin gap  {fmt_pair(task.measured('margin_gap'), task.predicted('margin_gap'))}",
        f"angle gap   {fmt_pair(task.measured('angle_gap'), task.predicted('angle_gap'))}",
        f"residual    {fmt(task.measured('residual'))}",
        f"verdict     {task.verdict or '—'}",
    ]
    for chunk in textwrap.wrap(task.verdict_detail, 46)[:6]:
        lines.append("  " + chunk)
    ax.text(0.0, 1.0, "\n".join(lines), family="monospace", fontsize=8, va="top", ha="left",
            transform=ax.transAxes)
    ax.set_title("run summary (theory in parentheses)", fontsize=9)


def plot_task(task, path):
    fig = plt.figure(figsize=(15, 9), layout="constrained")
    gs = fig.add_gridspec(2, 3)
    ax_a = fig.add_subplot(gs[0, 0])
    ax_txt = fig.add_subplot(gs[1, 0])
    ax_b = fig.add_subplot(gs[0, 1])
    ax_c = fig.add_subplot(gs[0, 2])
    ax_d = fig.add_subplot(gs[1, 1])
    ax_e = fig.add_subplot(gs[1, 2])

    panel_data(ax_a, task)

    norm_last = task.measured("norm")
    if math.isfinite(norm_last) and norm_last > 0:
        _plot_pair(ax_b, task, "norm", transform=lambda v: v / norm_last)
    ax_b.set_ylabel(r"$\|w(t)\| \,/\, \|w(T)\|$")
    ax_b.set_title(r"(B) normalised $\|w(t)\|$")

    _plot_pair(ax_c, task, "loss", logy=True)
    w_hat, eta = task.params.get("w_hat"), task.eta_eff
    loss = task.obs.get("loss")
    if w_hat is not None and math.isfinite(eta) and eta > 0 and loss is not None and len(loss):
        t = loss.step[loss.step > 0].astype(float)
        if len(t):
            ax_c.plot(t, float(w_hat.reshape(-1) @ w_hat.reshape(-1)) / (eta * t), color="tab:orange",
                      linestyle=":", linewidth=1.2, label=r"$\|\hat w\|^2/(\eta_{\rm eff}\,t)$")
    ax_c.set_ylabel(r"$L(w(t))$")
    ax_c.set_title(r"(C) loss $\sim t^{-1}$")

    _plot_pair(ax_d, task, "angle_gap", logy="auto")
    ax_d.set_ylabel(r"$1 - \cos\angle(w, \hat w)$")
    ax_d.set_title("(D) angle gap")

    _plot_pair(ax_e, task, "margin_gap", logy="auto")
    ax_e.set_ylabel(r"$1/\|\hat w\| - \min_n \tilde x_n^\top w/\|w\|$")
    ax_e.set_title("(E) margin gap")

    for ax in (ax_b, ax_c, ax_d, ax_e):
        if not ax.lines:
            ax.text(0.5, 0.5, "no finite data stored", ha="center", va="center", transform=ax.transAxes)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
    panel_text(ax_txt, task)
    title = f"{task.name}: {task.experiment}"
    if task.sweep_point:
        title += f"  [{task.sweep_point}]"
    if task.verdict:
        title += f"  verdict: {task.verdict}"
    fig.suptitle(title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_experiment(experiment, tasks, path):
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), layout="constrained")
    panels = [
        (axes[0, 0], "margin_gap", "auto", "margin gap"),
        (axes[0, 1], "angle_gap", "auto", "angle gap"),
        (axes[1, 0], "loss_ratio", False, r"loss ratio $t\,\eta_{\rm eff} L/\|\hat w\|^2$"),
        (axes[1, 1], "residual", True, r"residual $\|w - \hat w \ln t - \tilde w\|$"),
    ]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, name, logy, title in panels:
        lines = []
        for i, task in enumerate(tasks):
            lines.append((_curve(task.obs.get(name)), _curve(task.theory.get(name)),
                          colors[i % len(colors)], task.sweep_point or task.name))
        draw_measured_theory(ax, lines, logy)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if handles:
        axes[0, 0].legend(handles, labels, fontsize=7, ncol=1 if len(handles) <= 8 else 2,
                          title="solid: measured, dashed: theory", title_fontsize=7)
    fig.suptitle(f"experiment {experiment}: {len(tasks)} tasks")
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- Report -----------------------------------------------------------------------------------

TABLE_HEADER = ["task", "kind", "experiment", "sweep point", "status", "final step", "‖w‖ meas (pred)",
                "loss ratio", "margin gap meas (pred)", "angle gap meas (pred)", "residual", "verdict"]


def table_row(task):
    if task.kind != SEPARABLE_GD:
        step = task.final_step()
        return [task.name, task.kind, task.experiment, task.sweep_point, task.status,
                "—" if step is None else str(step), "—", "—", "—", "—", "—",
                (task.verdict or "—") + ("" if kind_plugin(task.kind) else " (kind without report plugin)")]
    step = task.final_step()
    return [
        task.name, task.kind, task.experiment, task.sweep_point, task.status,
        "—" if step is None else str(step),
        fmt_pair(task.measured("norm"), task.predicted("norm")),
        fmt(task.measured("loss_ratio")),
        fmt_pair(task.measured("margin_gap"), task.predicted("margin_gap")),
        fmt_pair(task.measured("angle_gap"), task.predicted("angle_gap")),
        fmt(task.measured("residual")),
        task.verdict or "—",
    ]


def task_sort_key(name):
    m = re.search(r"(\d+)$", name)
    return (int(m.group(1)) if m else math.inf, name)


def read_campaign(path):
    """(header items, gdlab_status, campaign name, open note, [Task], [problem]) of a campaign file;
    ReportError when it cannot be opened or read at all."""
    f, open_note = open_campaign(path)
    try:
        with f:
            if "tasks" not in f and "h5md" not in f:
                raise ReportError(f"{path}: not a gdlab campaign file (no /h5md and no /tasks group)")
            status = attr_str(f, "gdlab_status", "(missing)")
            params = f["parameters"] if "parameters" in f else None
            campaign = attr_str(params, "campaign_name", "") if params is not None else ""
            header = [
                ("file", os.path.abspath(path)),
                ("gdlab_status", status),
                ("gdlab_version", attr_str(f, "gdlab_version", "?")),
                ("created", attr_str(f, "created", "?")),
            ]
            if params is not None:
                header += [("spec_file", attr_str(params, "spec_file", "?")),
                           ("campaign_seed", attr_str(params, "campaign_seed", "?")),
                           ("schema_version", attr_str(params, "schema_version", "?"))]
            tasks, problems = [], []
            names = sorted(f["tasks"].keys(), key=task_sort_key) if "tasks" in f else []
            for name in names:
                try:
                    grp = f["tasks"][name]
                    if not isinstance(grp, h5py.Group):
                        problems.append(f"/tasks/{name} is not a group")
                        continue
                    tasks.append(Task(name, grp))
                except (OSError, ValueError, TypeError, KeyError) as exc:
                    problems.append(f"/tasks/{name} unreadable: {exc}")
    except OSError as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ReportError(f"{path}: read error: {msg}") from None
    return header, status, campaign, open_note, tasks, problems


def kind_plugin(kind):
    """The report module of an experiment kind (analysis/kinds/<kind>.py), or None.

    A plugin defines TITLE, plot_task(h5file, task_name, png_path), optionally
    plot_experiment(h5file, experiment, task_names, png_path), and table(h5file, task_names) ->
    Markdown lines comparing measured values with the paper's predictions."""
    if not kind or not kind.replace("_", "").isalnum():
        return None
    try:
        return importlib.import_module(f"analysis.kinds.{kind}")
    except ModuleNotFoundError:
        return None


def plugin_reports(path, tasks, out_dir, fig_notes):
    """Figures and tables of the kinds that have a plugin; returns (markdown lines, paths written)."""
    lines, written = [], []
    by_kind = {}
    for task in tasks:
        if task.kind != SEPARABLE_GD:
            by_kind.setdefault(task.kind, []).append(task)
    if not by_kind:
        return lines, written
    with h5py.File(path, "r") as f:
        for kind, group in sorted(by_kind.items()):
            plugin = kind_plugin(kind)
            if plugin is None:
                fig_notes.append(f"kind `{kind}` is not known to this report; no figure "
                                 f"({len(group)} tasks)")
                continue
            done = [t.name for t in group if t.status == "done"]
            lines += ["", f"## {kind}: {plugin.TITLE}", ""]
            try:
                lines += plugin.table(f, done)
            except Exception as exc:  # noqa: BLE001  (one bad kind must not stop the report)
                fig_notes.append(f"kind {kind}: table failed: {exc}")
            for name in done:
                fname = f"{safe_name(name, 'task')}_{kind}.png"
                try:
                    with np.errstate(all="ignore"):
                        plugin.plot_task(f, name, os.path.join(out_dir, fname))
                except Exception as exc:  # noqa: BLE001
                    plt.close("all")
                    fig_notes.append(f"{name}: figure failed: {exc}")
                    continue
                written.append(os.path.join(out_dir, fname))
                lines += ["", f"![{name}]({fname})"]
            if hasattr(plugin, "plot_experiment"):
                experiments = {}
                for t in group:
                    if t.status == "done":
                        experiments.setdefault(t.experiment, []).append(t.name)
                for exp, names in experiments.items():
                    fname = f"{safe_name(exp, 'experiment')}_{kind}.png"
                    try:
                        with np.errstate(all="ignore"):
                            plugin.plot_experiment(f, exp, names, os.path.join(out_dir, fname))
                    except Exception as exc:  # noqa: BLE001
                        plt.close("all")
                        fig_notes.append(f"experiment {exp}: figure failed: {exc}")
                        continue
                    written.append(os.path.join(out_dir, fname))
                    lines += ["", f"![{exp}]({fname})"]
    return lines, written


def build_report(path, out_dir):
    """Writes the figures and report.md; returns the paths written."""
    header, status, campaign, open_note, tasks, problems = read_campaign(path)
    written = []
    os.makedirs(out_dir, exist_ok=True)
    figures = {}  # task name -> file name
    fig_notes = []
    plugin_lines, plugin_written = plugin_reports(path, tasks, out_dir, fig_notes)
    written += plugin_written
    for task in tasks:
        if task.kind != SEPARABLE_GD:
            continue
        if task.status != "done":
            continue
        if not task.obs:
            fig_notes.append(f"{task.name}: status done but no observables stored; no figure")
            continue
        fname = safe_name(task.name, "task") + "_fig1.png"
        try:
            with np.errstate(all="ignore"):
                plot_task(task, os.path.join(out_dir, fname))
        except Exception as exc:  # noqa: BLE001  (one bad task must not stop the report)
            plt.close("all")
            fig_notes.append(f"{task.name}: figure failed: {exc}")
            print(f"report: {task.name}: figure failed: {exc}", file=sys.stderr)
            continue
        figures[task.name] = fname
        written.append(os.path.join(out_dir, fname))

    by_exp = {}
    for task in tasks:
        if task.kind == SEPARABLE_GD and task.status == "done" and task.obs:
            by_exp.setdefault(task.experiment, []).append(task)
    combined = {}
    for exp, group in by_exp.items():
        if len(group) < 2:
            continue
        fname = safe_name(exp, "experiment") + "_combined.png"
        try:
            with np.errstate(all="ignore"):
                plot_experiment(exp, group, os.path.join(out_dir, fname))
        except Exception as exc:  # noqa: BLE001
            plt.close("all")
            fig_notes.append(f"experiment {exp}: combined figure failed: {exc}")
            print(f"report: experiment {exp}: combined figure failed: {exc}", file=sys.stderr)
            continue
        combined[exp] = fname
        written.append(os.path.join(out_dir, fname))

    lines = [f"# gdlab report: {campaign or os.path.basename(path)}", ""]
    if status == "failed":
        lines += ["> **Campaign failed.** `gdlab_status` is `failed`: the coordinator gave up on the "
                  "campaign. This report shows what the file holds; tasks may be missing or unfinished.", ""]
    elif status != "complete":
        lines += [
            f"> **Partial file.** `gdlab_status` is `{status}`, not `complete`: the campaign did not "
            "finish (the writer crashed, was killed, or is still running). This report shows what was "
            "flushed to the file; tasks may be unfinished and series may stop early.",
            "",
        ]
    if open_note:
        lines += [f"> Note: {open_note}.", ""]
    for key, val in header:
        lines.append(f"- {key}: `{val}`")
    counts = {}
    for task in tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    lines.append("- tasks: %d (%s)" % (len(tasks), ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                                          if counts else "none"))
    lines += ["", "## Tasks", "",
              "Theory values (in parentheses) are those of w_pred(t) = ŵ ln t + w̃ at the final step.", "",
              "| " + " | ".join(TABLE_HEADER) + " |",
              "|" + "|".join("---" for _ in TABLE_HEADER) + "|"]
    for task in tasks:
        lines.append("| " + " | ".join(md_cell(c) for c in table_row(task)) + " |")
    if not tasks:
        lines += ["", "No task groups in the file."]

    failed = [t for t in tasks if t.status == "failed"]
    if failed:
        lines += ["", "## Failed tasks", ""]
        for t in failed:
            where = t.experiment + (f" [{t.sweep_point}]" if t.sweep_point else "")
            lines.append(f"- **{t.name}** ({t.kind}, {where}): {md_cell(t.error or '(no error message)')}")
    unfinished = [t for t in tasks if t.status not in ("done", "failed")]
    if unfinished:
        lines += ["", "## Unfinished tasks", ""]
        for t in unfinished:
            step = t.final_step()
            lines.append(f"- {t.name} ({t.kind}, {t.experiment}): status `{t.status}`"
                         + (f", data up to step {step}" if step is not None else ", no data"))
    details = [t for t in tasks if t.verdict_detail]
    if details:
        lines += ["", "## Verdict details", ""]
        for t in details:
            lines.append(f"- {t.name}: **{t.verdict or '?'}**: {md_cell(t.verdict_detail)}")
    lines += plugin_lines
    notes = problems + fig_notes + [f"{t.name}: {n}" for t in tasks for n in t.notes]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if combined:
        lines += ["", "## Experiments", ""]
        for exp, fname in combined.items():
            lines += [f"### {exp}", "", f"![{exp}]({fname})", ""]
    if figures:
        lines += ["", "## Figures (Soudry et al. 2018, Fig. 1 panels)", ""]
        for name, fname in figures.items():
            lines += [f"### {name}", "", f"![{name}]({fname})", ""]
    md_path = os.path.join(out_dir, "report.md")
    with open(md_path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines).rstrip() + "\n")
    written.append(md_path)
    return written


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m analysis.report",
                                 description="Figures and a Markdown report for one gdlab campaign file.")
    ap.add_argument("file", help="campaign HDF5 file")
    ap.add_argument("--out", required=True, help="output directory (created if needed)")
    args = ap.parse_args(argv)
    try:
        written = build_report(args.file, args.out)
    except ReportError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the output side: directory not writable, disk full
        print(f"report: error: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 1
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
