"""Report plugin of the kind ``async_sgd`` (analysis/report.py, ``kind_plugin``).

Giladi, Nacson, Hoffer, Soudry, ICLR 2020, "At Stability's Edge: How to Adjust Hyperparameters to Preserve
Minima Selection in Asynchronous Training of Neural Networks?" (spec: shared/papers/stability.md §1).

Series are indexed by the update t (``step``); ``time`` is η·t (simulated) or wall seconds (MPI). Per task:

* (a) log‖s_t‖ of the stacked state (parameters, delayed copies, momentum buffers; §0.2) with the
  predicted slope log ρ (constant delay) or the Lyapunov replay (random delays) as a dashed line, or the
  distance to the reference minimum;
* (b) the trajectory w_t (1-D problems, with the minima) or the loss;
* (c) the staleness histogram with the schedule's law (constant τ, or Geometric(1/N) − 1 for a uniformly
  random worker);
* (d) the sharpness λ_max(∇²L(w_t)) against the stability edge h*/η (a minimum is linearly stable at this η
  iff its sharpness is below it).

Per experiment, chosen from what the tasks sweep:

* threshold vs delay: the (τ, η·λ_max) points, stable or unstable by the measured growth rate, against
  h*(τ) = 2 sin(π/(4τ+2)) and its asymptote π/(2τ+1);
* momentum: the effective lr h/(1−γ) of every task against γ, with the charpoly thresholds of PS heavy
  ball and shifted momentum (computed here from the §1.5 polynomials) and the no-momentum value, for
  every delay τ of the experiment, and the measured threshold (the zero crossing of the measured growth
  rate between the bracketing runs) of every (variant, γ, τ);
* random workers (and free-running MPI): the measured growth rate against h with the replay prediction,
  the replay threshold and the constant-delay threshold h*(N−1);
* minima selection: the minimum reached against τ, with the theory bands (sharp stable iff η·λ_s < h*(τ),
  flat stable iff η·λ_f < h*(τ)), and the sharpness reached against τ with the stability edge h*(τ)/η
  (constant 2/η₀ under the lr rule); free-running MPI runs get the prediction of their own replayed
  staleness sequence;
* otherwise: the final distance to the reference minimum against f = η·λ_max/h*.

MPI runs with the forced round-robin order (schedule ``mpi_round_robin``) have the constant delay
τ = k − 1, so they are drawn against the closed forms like the simulated constant delays.
"""

import math

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from analysis.kinds._common import number, text  # noqa: E402

TITLE = "A-SGD stability under delay (Giladi, Nacson, Hoffer, Soudry 2020, stability.md §1)"


# ---- reading ----------------------------------------------------------------------------------


_text = text
_num = number


def _series(task, which, name, column=None):
    """(step, value) of /tasks/<t>/<which>/<name>; value is 1-D (column `column` of a vector series)."""
    if which not in task or name not in task[which]:
        return None
    grp = task[which][name]
    try:
        step = np.asarray(grp["step"][()], dtype=np.float64).reshape(-1)
        value = np.asarray(grp["value"][()], dtype=np.float64)
    except (KeyError, OSError, ValueError, TypeError):
        return None
    if value.ndim == 2:
        if column is None:
            if value.shape[1] != 1:
                return None
            column = 0
        value = value[:, column]
    elif value.ndim != 1:
        return None
    n = min(len(step), len(value))
    return (step[:n], value[:n]) if n else None


def _array(task, name):
    if "parameters" not in task or name not in task["parameters"]:
        return None
    try:
        return np.asarray(task["parameters"][name][()], dtype=np.float64).reshape(-1)
    except (OSError, ValueError, TypeError):
        return None


def _param(task, name):
    v = _array(task, name)
    return float(v[0]) if v is not None and v.size else math.nan


def _fmt(x, digits=4):
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}g}"


def _cell(s):
    s = str(s).replace("\n", " ").replace("|", "\\|")
    return s if s else " "


class _Task:
    def __init__(self, h5file, name):
        self.name = name
        self.g = h5file["tasks"][name]
        g = self.g
        self.experiment = _text(g, "experiment")
        self.sweep_point = _text(g, "sweep_point")
        self.mode = _text(g, "mode", "simulated")
        self.problem = _text(g, "problem", "?")
        self.dim = _num(g, "dim")
        self.schedule = _text(g, "schedule", "?")
        self.variant = _text(g, "variant", "no_momentum")
        self.lr_rule = _text(g, "lr_rule")
        self.eta = _num(g, "lr")
        self.lr_input = _num(g, "lr_input")
        self.tau = _num(g, "tau")
        self.workers = _num(g, "workers")
        self.gamma = _num(g, "momentum")
        self.damp = _num(g, "dampening")
        self.lam = _num(g, "lambda_max")
        self.h_star = _num(g, "h_star")
        self.h_variant = _num(g, "h_star_variant")
        self.threshold = _num(g, "threshold_h")
        self.replay_threshold = _num(g, "replay_threshold")
        self.f = _num(g, "f_run")
        self.growth = _num(g, "growth_rate")
        self.predicted = _num(g, "predicted_growth_rate")
        self.replayed = _num(g, "replay_growth_rate")
        self.outcome = _text(g, "outcome")
        self.reached = _text(g, "minimum_reached")
        self.final_distance = _num(g, "final_distance")
        self.final_sharpness = _num(g, "final_sharpness")
        self.stale_mean = _num(g, "staleness_mean")
        self.stale_max = _num(g, "staleness_max")
        self.verdict = _text(g, "verdict")
        self.detail = _text(g, "verdict_detail")

    def obs(self, name, column=None):
        return _series(self.g, "observables", name, column)

    def theory(self, name):
        return _series(self.g, "theory", name)

    @property
    def h(self):
        return self.eta * self.lam

    @property
    def growth_run(self):
        return math.isfinite(self.growth)

    @property
    def constant_delay(self):
        """True when the delay is constant after warm-up (the closed forms apply)."""
        return self.schedule in ("constant", "round_robin", "mpi_round_robin")

    def delay_label(self):
        if self.schedule == "mpi_round_robin":
            return f"MPI round robin k={_fmt(self.workers)} (τ={_fmt(self.tau)})"
        if self.mode == "mpi":
            return f"MPI k={_fmt(self.workers)}"
        if self.schedule == "constant":
            return f"τ={_fmt(self.tau)}"
        return f"{self.schedule} N={_fmt(self.workers)}"

    def variant_label(self):
        if self.variant == "no_momentum":
            return "no momentum"
        short = "PS heavy ball" if self.variant == "server_momentum" else "shifted"
        label = f"{short} γ={_fmt(self.gamma)}"
        if self.damp > 0:
            label += f" d={_fmt(self.damp)}"
        return label


# ---- theory (stability.md §1.4, §1.5) -----------------------------------------------------------


def h_star(tau):
    return 2.0 * np.sin(np.pi / (4.0 * np.asarray(tau, dtype=float) + 2.0))


def _charpoly(variant, tau, h, gamma, damp):
    """Coefficients, highest degree first, degree τ+2 (as worker/numerics/async_sgd.cc)."""
    n = tau + 2
    c = np.zeros(n + 1)

    def add(power, value):
        c[n - power] += value

    add(n, 1.0)
    if variant == "no_momentum":
        add(tau + 1, -1.0)
        add(1, h)
    elif variant == "server_momentum":
        add(tau + 1, -(1.0 + gamma))
        add(tau, gamma)
        add(1, (1.0 - damp) * h)
    else:
        add(tau + 1, -1.0)
        add(1, (1.0 - damp) * h - gamma)
        add(0, gamma)
    return c


def _rho(variant, tau, h, gamma, damp):
    return float(np.max(np.abs(np.roots(_charpoly(variant, tau, h, gamma, damp)))))


def charpoly_threshold(variant, tau, gamma=0.0, damp=0.0):
    """sup{h : ρ(h) < 1} by a log-grid scan and bisection (§0.1)."""
    if variant == "no_momentum":
        gamma, damp = 0.0, 0.0
    h_hi = 2.0 * (1.0 + gamma) / (1.0 - damp)
    grid = 1.5 * h_hi * 10.0 ** (-9.0 * (1 - np.arange(101) / 100.0))
    lo, hi = 0.0, None
    for h in grid:
        if _rho(variant, tau, h, gamma, damp) >= 1:
            hi = h
            break
        lo = h
    if hi is None:
        return math.nan
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if _rho(variant, tau, mid, gamma, damp) >= 1:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


# ---- per-task figure --------------------------------------------------------------------------


def _xscale(ax, last):
    ax.set_xlabel("update t")
    ax.grid(True, alpha=0.3)
    if last > 0:
        ax.set_xlim(0, last * 1.02)


def plot_task(h5file, task_name, png_path):
    t = _Task(h5file, task_name)
    fig, axes = plt.subplots(2, 2, figsize=(14, 9.5), layout="constrained")
    ax_a, ax_b, ax_c, ax_d = axes[0, 0], axes[0, 1], axes[1, 0], axes[1, 1]
    ls = t.obs("log_state_norm")
    last = float(ls[0][-1]) if ls is not None else 0.0

    # (a) log‖s_t‖ and its predicted slope
    if ls is not None:
        ok = np.isfinite(ls[1])
        ax_a.plot(ls[0][ok], ls[1][ok], color="tab:blue", linewidth=1.0, label="measured log‖s_t‖")
    th = t.theory("log_state_norm")
    if th is not None:
        src = "log ρ (charpoly)" if t.constant_delay else "Lyapunov replay"
        ax_a.plot(th[0], th[1], color="black", linestyle="--", linewidth=1.2,
                  label=f"theory: slope {_fmt(t.predicted)} ({src})")
    if t.growth_run:
        ax_a.set_title(f"(a) growth rate {_fmt(t.growth)} vs predicted {_fmt(t.predicted)}", fontsize=10)
    else:
        d = t.obs("log_distance")
        if d is not None and ls is None:
            ok = np.isfinite(d[1])
            ax_a.plot(d[0][ok], d[1][ok], color="tab:green", label="log‖w_t − w_ref‖")
        ax_a.set_title(f"(a) f = ηλ_max/h* = {_fmt(t.f)}: {t.outcome}, reached {t.reached or '—'}", fontsize=10)
    ax_a.set_ylabel("log ‖s_t‖ (natural log)")
    if ax_a.get_legend_handles_labels()[0]:
        ax_a.legend(fontsize=8)
    _xscale(ax_a, last)

    # (b) the trajectory or the loss
    w = t.obs("w", column=0) if t.dim == 1 else None
    if w is not None:
        ax_b.plot(w[0], w[1], color="tab:blue", linewidth=0.8, label="w_t")
        if t.problem == "two_minima":
            ax_b.axhline(1, color="tab:red", linestyle="--", linewidth=1, label="sharp minimum (λ_s)")
            ax_b.axhline(-1, color="tab:green", linestyle="--", linewidth=1, label="flat minimum (λ_f)")
            ax_b.axhline(0, color="grey", linestyle=":", linewidth=0.8, label="kink")
        ax_b.set_ylabel("w")
        ax_b.set_title("(b) the trajectory", fontsize=10)
        ax_b.legend(fontsize=8)
    else:
        loss = t.obs("loss")
        if loss is not None:
            keep = np.isfinite(loss[1]) & (loss[1] > 0)
            ax_b.plot(loss[0][keep], loss[1][keep], color="tab:blue", linewidth=1.0, label="loss L(w_t)")
            ax_b.set_yscale("log")
            ax_b.legend(fontsize=8)
        ax_b.set_ylabel("loss")
        ax_b.set_title("(b) the loss", fontsize=10)
    _xscale(ax_b, last)

    # (c) staleness histogram
    hist = _array(t.g, "staleness_histogram")
    if hist is not None and hist.size:
        s = np.arange(hist.size)
        ax_c.bar(s, hist, color="tab:blue", alpha=0.7, label=f"measured (mean {_fmt(t.stale_mean)}, max {_fmt(t.stale_max)})")
        total = hist.sum()
        if t.schedule == "uniform_random" and t.workers > 0:
            p = 1.0 / t.workers
            ax_c.plot(s, total * p * (1 - p) ** s, color="black", marker=".", linestyle="--",
                      label="theory: Geometric(1/N) − 1, mean N − 1")
        elif t.constant_delay:
            ax_c.axvline(t.tau, color="black", linestyle="--", label=f"theory: τ = {_fmt(t.tau)} (after warm-up)")
        ax_c.set_xlabel("staleness τ_t = t − v_t")
        ax_c.set_ylabel("updates")
        if hist.max() > 50 * max(1.0, np.median(hist[hist > 0])):
            ax_c.set_yscale("log")
        ax_c.legend(fontsize=8)
    ax_c.set_title(f"(c) staleness ({t.delay_label()})", fontsize=10)
    ax_c.grid(True, alpha=0.3)

    # (d) sharpness vs the stability edge
    sh = t.obs("sharpness")
    if sh is not None:
        sparse = len(sh[0]) <= 10
        ax_d.plot(sh[0], sh[1], color="tab:orange", marker="o", markersize=6 if sparse else 3,
                  linestyle="none" if sparse else "-", label="sharpness λ_max(∇²L(w_t))")
    edge = t.theory("sharpness_threshold")
    if edge is not None:
        if len(edge[0]) == 1 or (len(edge[0]) <= 10 and last > 0):
            ax_d.axhline(edge[1][-1], color="black", linestyle="--", label=f"theory: h/η = {_fmt(edge[1][-1])} (stable below)")
        else:
            ax_d.plot(edge[0], edge[1], color="black", linestyle="--", label="theory: h/η (stable below)")
    if math.isfinite(t.lam):
        ax_d.axhline(t.lam, color="tab:red", linestyle=":", label=f"λ_max at the reference minimum = {_fmt(t.lam)}")
    ax_d.set_ylabel("sharpness")
    ax_d.set_title(f"(d) sharpness vs the edge h*/η ({t.variant_label()})", fontsize=10)
    if ax_d.get_legend_handles_labels()[0]:
        ax_d.legend(fontsize=8)
    _xscale(ax_d, last)

    head = (f"{task_name}: {t.experiment} [{t.sweep_point or 'no sweep'}]  {t.problem}, {t.delay_label()}, "
            f"{t.variant_label()}, η={_fmt(t.eta)} (ηλ_max={_fmt(t.h)}, h={_fmt(t.threshold)})  verdict: {t.verdict or '—'}")
    fig.suptitle(head, fontsize=10)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


# ---- per-experiment figures -------------------------------------------------------------------


def _plot_threshold_vs_delay(ax, tasks, experiment):
    taus = sorted({t.tau for t in tasks if math.isfinite(t.tau)})
    stable = [t for t in tasks if t.growth_run and t.growth < 0]
    unstable = [t for t in tasks if t.growth_run and t.growth >= 0]
    ax.scatter([t.tau for t in stable], [t.h for t in stable], marker="o", color="tab:green", s=30, zorder=3,
               label="measured: converges (growth < 0)")
    ax.scatter([t.tau for t in unstable], [t.h for t in unstable], marker="x", color="tab:red", s=40, zorder=3,
               label="measured: diverges (growth > 0)")
    # Measured bracket per τ: between the largest stable and the smallest unstable h.
    for tau in taus:
        hs = [t.h for t in stable if t.tau == tau]
        hu = [t.h for t in unstable if t.tau == tau]
        if hs and hu:
            ax.plot([tau, tau], [max(hs), min(hu)], color="tab:purple", linewidth=4, alpha=0.4)
    x = np.linspace(0, max(taus) if taus else 8, 200)
    ax.plot(x, h_star(x), color="black", linewidth=1.5, label="theory: h*(τ) = 2 sin(π/(4τ+2))")
    xs = x[x >= 0.5]
    ax.plot(xs, np.pi / (2 * xs + 1), color="grey", linestyle=":", label="asymptote π/(2τ+1) (lr ∝ 1/delay)")
    ax.set_yscale("log")
    ax.set_xlabel("delay τ")
    ax.set_ylabel("η·λ_max")
    ax.set_title(f"{experiment}: the stability threshold of delayed GD (purple: measured bracket)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, which="both")


def _measured_threshold(points):
    """Zero crossing in h of the measured growth rate between the largest stable and the smallest
    unstable point of [(h, growth)], linear in h; nan without a bracket."""
    stable = [p for p in points if p[1] < 0]
    unstable = [p for p in points if p[1] > 0]
    if not stable or not unstable:
        return math.nan
    (h1, g1), (h2, g2) = max(stable), min(unstable)
    if h2 <= h1:
        return math.nan
    return h1 - g1 * (h2 - h1) / (g2 - g1)


def _plot_momentum(ax, tasks, experiment):
    taus = sorted({int(t.tau) for t in tasks if math.isfinite(t.tau)}) or [1]
    damp = next((t.damp for t in tasks if math.isfinite(t.damp)), 0.0)
    g = np.linspace(0.0, 0.97, 40)
    eff = lambda h, x: h * (1 - damp) / (1 - x)  # noqa: E731  (effective lr h/(1−γ), undamped units)
    styles = ["-", "--", ":", "-."]
    for i, tau in enumerate(taus):
        ls = styles[i % len(styles)]
        hb = np.array([charpoly_threshold("server_momentum", tau, x, damp) for x in g])
        sh = np.array([charpoly_threshold("shifted_momentum", tau, x, damp) for x in g])
        ax.plot(g, eff(hb, g), color="tab:blue", linestyle=ls, label=f"theory τ={tau}: PS heavy ball h*/(1−γ)")
        ax.plot(g, eff(sh, g), color="tab:orange", linestyle=ls, label=f"theory τ={tau}: shifted momentum h*/(1−γ)")
        ax.axhline(float(h_star(tau)), color="black", linestyle=ls, linewidth=0.9,
                   label=f"theory τ={tau}: no momentum h*({tau}) = {_fmt(float(h_star(tau)))}")
    colors = {"server_momentum": "tab:blue", "shifted_momentum": "tab:orange"}
    groups = {}
    for t in tasks:
        if not t.growth_run:
            continue
        gam = t.gamma if t.variant != "no_momentum" else 0.0
        marker = "o" if t.growth < 0 else "x"
        ax.scatter([gam], [t.h * (1 - t.damp) / (1 - gam)], color=colors.get(t.variant, "black"), marker=marker, s=30,
                   zorder=3, alpha=0.6)
        groups.setdefault((t.variant, gam, t.tau), []).append((t.h, t.growth))
    first = True
    for (variant, gam, tau), pts in sorted(groups.items()):
        h0 = _measured_threshold(pts)
        if math.isfinite(h0):
            ax.scatter([gam], [h0 * (1 - damp) / (1 - gam)], color=colors.get(variant, "black"), marker="*", s=140,
                       edgecolors="black", linewidths=0.6, zorder=4,
                       label="measured threshold (growth rate = 0 between the bracketing runs)" if first else None)
            first = False
    ax.scatter([], [], color="grey", marker="o", label="measured: converges")
    ax.scatter([], [], color="grey", marker="x", label="measured: diverges")
    ax.set_yscale("log")
    ax.set_xlabel("momentum γ")
    ax.set_ylabel("effective lr η·λ_max·(1−d)/(1−γ)")
    where = "MPI parameter server, forced round robin" if any(t.mode == "mpi" for t in tasks) else "round robin"
    ax.set_title(f"{experiment}: momentum under delay τ ∈ {{{', '.join(str(x) for x in taus)}}} ({where}, "
                 f"N = τ + 1)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, alpha=0.3, which="both")


def _plot_random(ax, tasks, experiment):
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, n in enumerate(sorted({t.workers for t in tasks})):
        group = sorted([t for t in tasks if t.workers == n and t.growth_run], key=lambda t: t.h)
        if not group:
            continue
        c = colors[i % len(colors)]
        ax.plot([t.h for t in group], [t.growth for t in group], marker="o", linestyle="none", color=c,
                label=f"N = {_fmt(n)}: measured growth rate")
        ax.plot([t.h for t in group], [t.replayed for t in group], linestyle="--", color=c,
                label=f"N = {_fmt(n)}: theory (Lyapunov replay)")
        rt = np.nanmedian([t.replay_threshold for t in group])
        if math.isfinite(rt):
            ax.axvline(rt, color=c, linestyle="-", alpha=0.5, label=f"N = {_fmt(n)}: replay threshold {_fmt(rt)}")
        ax.axvline(float(h_star(n - 1)), color=c, linestyle=":", label=f"N = {_fmt(n)}: constant delay h*(N−1) = "
                   f"{_fmt(float(h_star(n - 1)))}")
    ax.axhline(0, color="black", linewidth=0.7)
    ax.set_xlabel("h = η·λ_max")
    ax.set_ylabel("growth rate (top Lyapunov exponent)")
    who = "free-running MPI workers" if any(t.mode == "mpi" for t in tasks) else "uniformly random workers"
    ax.set_title(f"{experiment}: {who} — the threshold is the replay's, not h*(mean staleness)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.3)


def _predicted_minimum(eta, lam_s, lam_f, h):
    """Where a run started at the sharp minimum ends by linear stability with threshold h (§1.4)."""
    if eta * lam_s < h:
        return 1.0
    if eta * lam_f < h:
        return -1.0
    return 2.0


def _plot_selection(axes, tasks, experiment):
    ax, ax2 = axes
    code = {"sharp": 1.0, "flat": -1.0, "none": 0.0, "diverged": 2.0}
    colors = {"sharp": "tab:red", "flat": "tab:green", "none": "grey", "diverged": "black"}
    taus = sorted({t.tau for t in tasks if math.isfinite(t.tau)})
    free_mpi = any(t.mode == "mpi" and not t.constant_delay for t in tasks)
    rule = bool(tasks) and tasks[0].lr_rule == "delay_scaled"
    lam_s = _param(tasks[0].g, "sharp_curvature")
    lam_f = _param(tasks[0].g, "flat_curvature")
    for i, t in enumerate(sorted(tasks, key=lambda t: t.name)):
        if t.reached not in code:
            continue
        jitter = (i % 7 - 3) * 0.03
        ax.scatter([t.tau + jitter], [code[t.reached]], color=colors[t.reached], s=40, zorder=3)
        sharp = t.final_sharpness if math.isfinite(t.final_sharpness) else float("nan")
        if t.reached == "diverged" or not math.isfinite(sharp):
            ax2.scatter([t.tau + jitter], [1.3 * lam_s], marker="x", color="black", s=40, zorder=3)
        else:
            ax2.scatter([t.tau + jitter], [sharp], color=colors[t.reached], s=40, zorder=3)
        if free_mpi and math.isfinite(t.threshold):
            # This run's own prediction: the threshold of its replayed staleness sequence (§1.9.2).
            ax.scatter([t.tau + jitter], [_predicted_minimum(t.eta, lam_s, lam_f, t.threshold)], marker="s", s=110,
                       facecolors="none", edgecolors="black", zorder=2)
            ax2.scatter([t.tau + jitter], [t.threshold / t.eta], marker="_", s=200, color="black", zorder=2)
    if taus and math.isfinite(lam_s) and math.isfinite(lam_f):
        # The delay is an integer: the theory is drawn at τ = 0, 1, ..., max τ.
        x = np.arange(0, int(max(taus)) + 1, dtype=float)
        eta = tasks[0].lr_input * h_star(x) / 2 if rule else np.full_like(x, tasks[0].eta)
        if not free_mpi:
            predicted = np.where(eta * lam_s < h_star(x), 1.0, np.where(eta * lam_f < h_star(x), -1.0, 2.0))
            for i, (xi, yi) in enumerate(zip(x, predicted)):
                ax.plot([xi - 0.3, xi + 0.3], [yi, yi], color="black", linestyle="--", linewidth=1.5,
                        label="theory: stays at the sharp minimum if η·λ_s < h*(τ), else the flat one if "
                              "η·λ_f < h*(τ), else diverges" if i == 0 else None)
            ax2.plot(x, h_star(x) / eta, color="black", linestyle="--", marker="D", markersize=5, linewidth=1.2,
                     label="theory: stability edge h*(τ)/η (minima sharper than this are unstable)"
                           + (" = 2/η₀ for every τ" if rule else ""))
        else:
            ax.scatter([], [], marker="s", s=110, facecolors="none", edgecolors="black",
                       label="theory: the run's replayed staleness sequence (threshold h of §1.9.2)")
            ax2.scatter([], [], marker="_", s=200, color="black", label="theory: edge h/η of the run's replayed sequence")
            ax2.plot(x, h_star(x) / eta, color="grey", linestyle=":", marker="D", markersize=4, linewidth=1.0,
                     label="constant delay τ = k − 1: h*(τ)/η (not this run's delays)")
        ax2.axhline(lam_s, color="tab:red", linestyle=":", linewidth=1, label=f"sharp minimum λ_s = {_fmt(lam_s)}")
        ax2.axhline(lam_f, color="tab:green", linestyle=":", linewidth=1, label=f"flat minimum λ_f = {_fmt(lam_f)}")
    ax.set_yticks([-1, 0, 1, 2])
    ax.set_yticklabels(["flat (−1)", "none", "sharp (+1)", "diverged"])
    mpi = any(t.mode == "mpi" for t in tasks)
    xlabel = "delay τ" if not mpi else ("τ = k − 1 (k workers, forced round robin)" if not free_mpi
                                         else "k − 1 (k free-running workers)")
    ax.set_xlabel(xlabel)
    ax2.set_xlabel(xlabel)
    what = "lr rule η_τ = η₀ sin(π/(4τ+2))" if rule else f"fixed η = {_fmt(tasks[0].eta)}"
    ax.set_title(f"{experiment}: minimum reached from the sharp minimum ({what})", fontsize=10)
    ax.set_ylim(-1.5, 2.4)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(True, alpha=0.3)
    ax2.set_yscale("log")
    ax2.set_ylabel("sharpness λ_max(∇²L) reached (x: diverged)")
    ax2.set_title(f"{experiment}: sharpness reached vs the stability edge", fontsize=10)
    ax2.set_ylim(0.6, 2.2 * max(lam_s, 1.0) if math.isfinite(lam_s) else None)
    ax2.legend(fontsize=7, loc="upper right")
    ax2.grid(True, alpha=0.3, which="both")


def _plot_generic(ax, tasks, experiment):
    for t in tasks:
        if not math.isfinite(t.f):
            continue
        marker = "x" if t.outcome == "diverged" else "o"
        y = t.final_distance if math.isfinite(t.final_distance) and t.final_distance > 0 else 1e-16
        ax.scatter([t.f], [y], marker=marker, s=40, color="tab:red" if t.outcome == "diverged" else "tab:blue")
    ax.axvline(1, color="black", linestyle="--", label="theory: f = 1 (η·λ_max = h*)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("f = η·λ_max / h*")
    ax.set_ylabel("final distance to the reference minimum")
    ax.set_title(f"{experiment}: stability of the reference minimum (x: diverged)", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3, which="both")


def plot_experiment(h5file, experiment, task_names, png_path):
    tasks = [_Task(h5file, n) for n in task_names]
    if not tasks:
        return
    problems = {t.problem for t in tasks}
    variants = {t.variant for t in tasks}
    if problems == {"two_minima"}:
        fig, axes = plt.subplots(1, 2, figsize=(16, 6.5), layout="constrained")
        _plot_selection(axes, tasks, experiment)
        fig.savefig(png_path, dpi=80)
        plt.close(fig)
        return
    fig, ax = plt.subplots(1, 1, figsize=(10, 6.5), layout="constrained")
    if all(t.growth_run for t in tasks) and any(not t.constant_delay for t in tasks):
        _plot_random(ax, tasks, experiment)
    elif all(t.growth_run for t in tasks) and (variants != {"no_momentum"} or len({t.tau for t in tasks}) == 1):
        _plot_momentum(ax, tasks, experiment)
    elif all(t.growth_run for t in tasks):
        _plot_threshold_vs_delay(ax, tasks, experiment)
    else:
        _plot_generic(ax, tasks, experiment)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


# ---- table ------------------------------------------------------------------------------------


def table(h5file, task_names):
    tasks = [_Task(h5file, n) for n in task_names]
    lines = [
        "Criteria of stability.md §1.11: noise-free quadratics compare the growth rate of the stacked state with "
        "log ρ of the characteristic polynomial (constant delay) or with the Lyapunov replay of the staleness "
        "sequence (random / MPI delays): |meas − pred| ≤ 0.02·|pred| + 2e-4 and the same sign (T1.2, T1.5, T1.7; "
        "MPI 1-D: ≤ 1e-9, T1.4). Other problems: f = η·λ_max/h < 1 − margin ⇒ the run converges to (stays near) "
        "the reference minimum, f > 1 + margin ⇒ it leaves it (two minima: T1.6).",
        "",
        "| task | experiment | sweep point | problem | delays | optimiser | η | η·λ_max | threshold h | f | "
        "growth rate (predicted) | outcome / minimum | staleness mean/max | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        growth = f"{_fmt(t.growth)} ({_fmt(t.predicted)})" if t.growth_run else "—"
        outcome = t.outcome + (f" / {t.reached}" if t.reached else "")
        row = [t.name, t.experiment, t.sweep_point, t.problem, t.delay_label(), t.variant_label(), _fmt(t.eta),
               _fmt(t.h), _fmt(t.threshold), _fmt(t.f), growth, outcome,
               f"{_fmt(t.stale_mean, 3)}/{_fmt(t.stale_max)}", t.verdict or "—"]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines
