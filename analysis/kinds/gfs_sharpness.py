"""Report plugin of the kind ``gfs_sharpness`` (analysis/report.py, ``kind_plugin``).

Kreisler, Nacson, Soudry, Carmon, ICML 2023, "Gradient Descent Monotonically Decreases the Sharpness of
Gradient Flow Solutions in Scalar Networks and Beyond" (spec: shared/papers/stability.md §3).

Series are indexed by the GD step t (``step``); ``time`` is η·t. Per task the figure shows:

* (a) the loss: it oscillates (red dots mark the steps where it increased), the edge-of-stability
  signature;
* (b) in units of 2/η: the sharpness η·λ_max(∇²L(w_t))/2, which oscillates, and the GFS sharpness
  η·ϕ(w_t)/2, which falls monotonically; theory (dashed): the edge of stability 1, and for starts near
  the threshold the reflection 2 − ρ₀ (§3.6) dotted; flow-integrated ϕ (T3.1 check) as crosses;
* (c) π(w_t) against y* (scalar networks) or the residual ‖Xβ − y‖ (squared regression);
* (d) the relative change of ϕ per evaluated step, (ϕ_{t+1} − ϕ_t)/ϕ_t: never above the tolerance.

Per experiment: the final η·λ_max/2 against ρ₀ for each (model, D, η, δ), with the reflection line
2 − ρ₀ and the edge 1 (§3.10 T3.3: strictly decreasing in ρ₀ at fixed (D, η, δ); T3.5), and the
η·ϕ/2 curves of all tasks.
"""

import math

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._common import cell as _cell, fmt as _fmt, number as _num, row as _row, series, text as _text

TITLE = "GFS sharpness at the edge of stability (Kreisler, Nacson, Soudry, Carmon 2023, stability.md §3)"


# ---- reading ----------------------------------------------------------------------------------


def _series(task, which, name):
    """(step as float, value) of /tasks/<t>/<which>/<name> (scalar series), or None."""
    s = series(task, which, name, (("step", np.float64),))
    return s if s is not None and s[1].ndim == 1 else None


class _Task:
    def __init__(self, h5file, name):
        self.name = name
        self.g = h5file["tasks"][name]
        g = self.g
        self.experiment = _text(g, "experiment")
        self.sweep_point = _text(g, "sweep_point")
        self.model = _text(g, "model", "?")
        self.method = _text(g, "gfs_method", "?")
        self.depth = _num(g, "depth")
        self.n, self.d = _num(g, "n"), _num(g, "d")
        self.eta = _num(g, "lr")
        self.rho0, self.delta = _num(g, "rho0"), _num(g, "delta")
        self.branch = _text(g, "branch")
        self.verdict = _text(g, "verdict")
        self.detail = _text(g, "verdict_detail")
        self.final = _num(g, "final_sharpness_normalized")
        self.phi0 = _num(g, "phi0_normalized")
        self.steps = _num(g, "steps_taken")
        self.loss_increases = _num(g, "loss_increases")
        self.gfs_increases = _num(g, "gfs_increases")
        self.max_rel = _num(g, "max_gfs_rel_increase")
        self.flow_check = _num(g, "flow_check_phi_error")
        self.converged = _text(g, "converged")
        self.y_star = _num(g, "y_star")

    def obs(self, name):
        return _series(self.g, "observables", name)

    def theory(self, name):
        return _series(self.g, "theory", name)

    def size(self):
        if self.model == "scalar_network":
            return f"D={_fmt(self.depth)}"
        return f"n={_fmt(self.n)}, d={_fmt(self.d)}"

    def group_key(self):
        """(D, η, δ) of §3.10 T3.3; for the regression model η is derived from ρ₀, so (n, d, δ)."""
        if self.model == "scalar_network":
            return (self.experiment, self.model, self.depth, self.eta, self.delta, self.y_star, self.branch)
        return (self.experiment, self.model, self.n, self.d, self.delta)

    def reflection_applies(self):
        return math.isfinite(self.rho0) and self.rho0 <= 1.01 + 1e-9 and abs(self.delta) <= 1e-3 * (1 + 1e-9)


# ---- per-task figure --------------------------------------------------------------------------


def _xscale(ax, last_step):
    if last_step > 5000:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, last_step * 1.05)
    ax.set_xlabel("GD step t")
    ax.grid(True, alpha=0.3)


def plot_task(h5file, task_name, png_path):
    t = _Task(h5file, task_name)
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5), layout="constrained")
    ax_a, ax_b, ax_c, ax_d = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    loss = t.obs("loss")
    last_step = float(loss[0][-1]) if loss is not None else 0.0

    # (a) the loss
    if loss is not None:
        step, value = loss
        keep = value > 0
        ax_a.plot(step[keep], value[keep], color="tab:blue", linewidth=1.0, label="loss L(w_t)")
        up = t.obs("loss_increased")
        if up is not None and len(up[0]) == len(step):
            mask = (up[1] > 0.5) & keep
            ax_a.scatter(step[mask], value[mask], color="tab:red", s=8, zorder=3,
                         label=f"loss increased ({_fmt(t.loss_increases)} steps in all)")
        ax_a.set_yscale("log")
        ax_a.legend(fontsize=8)
    else:
        ax_a.text(0.5, 0.5, "no loss stored", ha="center", va="center", transform=ax_a.transAxes)
    ax_a.set_ylabel("loss")
    ax_a.set_title("(a) the loss is not monotone (edge of stability): it grows while w oscillates, then falls",
                   fontsize=10)
    _xscale(ax_a, last_step)

    # (b) sharpness and GFS sharpness in units of 2/η
    s = t.obs("sharpness_normalized")
    if s is not None:
        ax_b.plot(s[0], s[1], color="tab:orange", linewidth=0.8, alpha=0.8, label=r"sharpness $\eta\lambda_{max}(w_t)/2$")
    p = t.obs("gfs_sharpness_normalized")
    if p is not None:
        ax_b.plot(p[0], p[1], color="tab:blue", linewidth=2.0, label=r"GFS sharpness $\eta\phi(w_t)/2$")
    pf = t.obs("gfs_sharpness_flow_normalized")
    if pf is not None:
        ax_b.scatter(pf[0], pf[1], color="black", marker="x", s=25, zorder=4, label="ϕ by integrated flow (T3.1)")
    th = t.theory("gfs_sharpness_normalized") or t.theory("sharpness_normalized")
    if th is not None:
        ax_b.plot(th[0], th[1], color="black", linestyle="--", linewidth=1.2, label="theory: edge 2/η (= 1)")
    if t.reflection_applies():
        ax_b.axhline(2 - t.rho0, color="tab:green", linestyle=":", linewidth=1.4,
                     label=f"theory: reflection 2 − ρ₀ = {_fmt(2 - t.rho0)}")
    if math.isfinite(t.final):
        ax_b.axhline(t.final, color="tab:purple", linestyle="-.", linewidth=0.8,
                     label=f"final η·λ_max/2 = {_fmt(t.final)}")
    ax_b.set_ylabel("in units of 2/η")
    lo = [v for v in (np.nanmin(p[1]) if p is not None else math.nan, t.final, 1.0) if math.isfinite(v)]
    hi = [v for v in (np.nanmax(p[1]) if p is not None else math.nan, 1.0) if math.isfinite(v)]
    if lo and hi:
        pad = 0.15 * (max(hi) - min(lo) + 1e-3)
        ax_b.set_ylim(min(lo) - pad, max(hi) + pad)
    ax_b.legend(fontsize=7, loc="upper right")
    ax_b.set_title("(b) ϕ falls monotonically to ≲ 2/η while λ_max oscillates", fontsize=10)
    _xscale(ax_b, last_step)

    # (c) π or the residual
    if t.model == "scalar_network":
        pi = t.obs("pi")
        if pi is not None:
            ax_c.plot(pi[0], pi[1], color="tab:blue", linewidth=1.0, label="π(w_t)")
        thp = t.theory("pi")
        if thp is not None:
            ax_c.plot(thp[0], thp[1], color="black", linestyle="--", linewidth=1.0, label="theory: y* (minimisers)")
        ax_c.set_ylabel("π(w) = Π w_i")
        ax_c.set_title("(c) the product overshoots around y*", fontsize=10)
    else:
        r = t.obs("residual_norm")
        if r is not None:
            keep = r[1] > 0
            ax_c.plot(r[0][keep], r[1][keep], color="tab:blue", linewidth=1.0, label="‖X(w⊙w) − y‖")
            ax_c.set_yscale("log")
        ax_c.set_ylabel("residual norm")
        ax_c.set_title("(c) the residual (squared regression model)", fontsize=10)
    if ax_c.get_legend_handles_labels()[0]:
        ax_c.legend(fontsize=8)
    _xscale(ax_c, last_step)

    # (d) relative change of ϕ per evaluated step
    phi = t.obs("gfs_sharpness")
    tol = 1e-9 if t.method == "closed_form" else 1e-6
    if phi is not None and len(phi[1]) > 1:
        step, value = phi
        change = np.diff(value) / np.abs(value[:-1])
        ok = np.isfinite(change)
        ax_d.plot(step[1:][ok], change[ok], color="tab:blue", linewidth=0.8, marker=".", markersize=2,
                  label=r"$(\phi_{t+1} - \phi_t)/\phi_t$ between recorded steps")
        ax_d.axhline(tol, color="tab:red", linestyle=":", label=f"tolerance +{tol:g}")
        ax_d.axhline(0, color="black", linewidth=0.6)
        ax_d.set_yscale("symlog", linthresh=1e-12)
        ax_d.legend(fontsize=8)
    else:
        ax_d.text(0.5, 0.5, "fewer than two ϕ values", ha="center", va="center", transform=ax_d.transAxes)
    ax_d.set_ylabel("relative change of ϕ")
    ax_d.set_title(f"(d) ϕ never increases: {_fmt(t.gfs_increases)} increases, max change {_fmt(t.max_rel, 3)}",
                   fontsize=10)
    _xscale(ax_d, last_step)

    head = f"{task_name}: {t.experiment} [{t.sweep_point or 'no sweep'}]  {t.model} {t.size()}, η={_fmt(t.eta)}"
    if math.isfinite(t.rho0):
        head += f", ρ₀={_fmt(t.rho0)}, δ={_fmt(t.delta)}"
        if t.branch == "small_b":
            head += " (small-b branch)"
    head += f", ϕ by {t.method}  verdict: {t.verdict or '—'}"
    fig.suptitle(head, fontsize=10)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


# ---- per-experiment figure --------------------------------------------------------------------


def _groups(tasks):
    groups = {}
    for t in tasks:
        if math.isfinite(t.rho0) and math.isfinite(t.final):
            groups.setdefault(t.group_key(), []).append(t)
    for key in groups:
        groups[key].sort(key=lambda t: t.rho0)
    return groups


def _label(t):
    if t.model == "scalar_network":
        return f"D={_fmt(t.depth)}, η={_fmt(t.eta)}, δ={_fmt(t.delta)}"
    return f"regression n={_fmt(t.n)}, d={_fmt(t.d)}, δ={_fmt(t.delta)}"


def _strictly_decreasing(group):
    finals = [t.final for t in group]
    return len(finals) >= 2 and all(b < a for a, b in zip(finals, finals[1:]))


def plot_experiment(h5file, experiment, task_names, png_path):
    tasks = [_Task(h5file, n) for n in task_names]
    fig, (ax_l, ax_r) = plt.subplots(1, 2, figsize=(15, 6), layout="constrained")
    cmap = plt.get_cmap("tab20")
    groups = _groups(tasks)
    for i, (key, group) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
        rho = [t.rho0 for t in group]
        fin = [t.final for t in group]
        ax_l.plot(rho, fin, marker="o", color=cmap(i % 20), linewidth=1.0, label=_label(group[0]))
    if groups:
        rho_all = sorted({t.rho0 for g in groups.values() for t in g})
        r = np.linspace(1.0, max(1.05, min(1.1, max(rho_all))), 30)
        ax_l.plot(r, 2 - r, color="black", linestyle=":", label="reflection 2 − ρ₀ (near the threshold, §3.6)")
        ax_l.axhline(1, color="black", linestyle="--", label="edge of stability 1")
        ax_l.set_xlabel(r"$\rho_0 = \eta\phi(s)/2$ of the start minimiser")
        ax_l.set_ylabel(r"final $\eta\lambda_{max}(w_\infty)/2$")
        ax_l.legend(fontsize=6, ncol=2)
        ax_l.grid(True, alpha=0.3)
        ok = sum(_strictly_decreasing(g) for g in groups.values())
        ax_l.set_title(f"{experiment}: final sharpness vs ρ₀ — strictly decreasing in {ok}/{len(groups)} groups",
                       fontsize=10)
    else:
        ax_l.text(0.5, 0.5, "no edge-start tasks", ha="center", va="center", transform=ax_l.transAxes)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    last = 0.0
    for i, t in enumerate(tasks):
        p = t.obs("gfs_sharpness_normalized")
        if p is None:
            continue
        ax_r.plot(p[0] + 1, p[1], color=colors[i % len(colors)], linewidth=1.0,
                  label=(t.sweep_point or t.name) if len(tasks) <= 12 else None)
        last = max(last, float(p[0][-1]))
    ax_r.axhline(1, color="black", linestyle="--", label="theory: edge 2/η (= 1)")
    ax_r.set_xscale("log")
    ax_r.set_xlabel("GD step t + 1")
    ax_r.set_ylabel(r"$\eta\phi(w_t)/2$")
    ax_r.set_title("GFS sharpness of every task (monotone, ending at or below the edge)", fontsize=10)
    ax_r.legend(fontsize=7)
    ax_r.grid(True, alpha=0.3)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


# ---- table ------------------------------------------------------------------------------------


def table(h5file, task_names):
    tasks = [_Task(h5file, n) for n in task_names]
    lines = [
        "Criteria of stability.md §3.10 at the end of each run: ϕ never increases (relative 1e-9 closed "
        "form, 1e-6 flow), the loss increases at least once, the loss falls below 1e-20, "
        "η·λ_max(w_∞)/2 ≤ 1 + 1e-6, and for ρ₀ ≤ 1.01 with |δ| ≤ 1e-3 the reflection "
        "|η·λ_max(w_∞)/2 − (2 − ρ₀)| ≤ 0.01 (T3.5); with a flow check (T3.1) |ϕ_closed − ϕ_flow| ≤ 1e-6.",
        "",
        "| task | experiment | sweep point | model | ϕ by | η | ρ₀ | δ | steps | loss increases | "
        "ϕ increases (max rel. change) | η·ϕ(w₀)/2 | final η·λ_max/2 (predicted) | flow check \\|Δϕ\\| | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        if t.reflection_applies():
            predicted = f"≤ 1; ≈ {_fmt(2 - t.rho0)}"
        else:
            predicted = "≤ 1"
        row = [t.name, t.experiment, t.sweep_point, f"{t.model} {t.size()}", t.method, _fmt(t.eta),
               _fmt(t.rho0), _fmt(t.delta), _fmt(t.steps, 7), _fmt(t.loss_increases, 7),
               f"{_fmt(t.gfs_increases)} ({_fmt(t.max_rel, 2)})", _fmt(t.phi0), f"{_fmt(t.final)} ({predicted})",
               _fmt(t.flow_check, 2), t.verdict or "—"]
        lines.append(_row(row))
    groups = _groups(tasks)
    rows = []
    for key, group in sorted(groups.items(), key=lambda kv: str(kv[0])):
        if len(group) < 2:
            continue
        scalar = group[0].model == "scalar_network"
        finals = ", ".join(f"{_fmt(t.rho0)}: {_fmt(t.final)}" for t in group)
        ok = _strictly_decreasing(group)
        status = ("pass" if ok else "fail") if scalar else ("yes" if ok else "no") + " (informational)"
        rows.append(f"| {_cell(group[0].experiment)} | {_cell(_label(group[0]))} | {finals} | {status} |")
    if rows:
        lines += ["", "T3.3 across tasks: at fixed (D, η, δ) the final η·λ_max/2 must strictly decrease over ρ₀ "
                  "(a scalar-network criterion; for the squared regression model, where η is derived from ρ₀, it "
                  "is only reported).", "",
                  "| experiment | group | ρ₀: final η·λ_max/2 | strictly decreasing |", "|---|---|---|---|"] + rows
    return lines
