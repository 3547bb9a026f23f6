"""Report plugin of the kind ``random_interpolator`` (analysis/report.py, ``kind_plugin``).

Buzaglo, Harel, Nacson, Brutzkus, Srebro, Soudry, ICML 2024 (random interpolators generalize with
a narrow teacher) and Chiang et al., ICLR 2023 (guess-and-check vs SGD); spec
shared/papers/interpolators.md.

Per task: (a) the learning curve ε̄_N ± SE of guess-and-check interpolators, with the Bayes-identity
estimate 1 − C_{N+1}/C_N and the theory bound (ln(1/p*) + 1)/N dashed (spec §2.4 (A)), and the SGD
baseline's test error when the task has one (continuous prior); (b) E[ln 1/p(S_N)] and the
cumulative Gibbs error Σ_{n<N} ε̄_n against ln(1/p*) (the cumulative bound, saturation).
Per experiment: the learning curves of every task (e.g. one per student width) on one plot with
each task's bound dashed — the paper's claim that width barely matters with a narrow teacher —
and, when tasks carry an SGD baseline, G&C against SGD side by side.
"""

import math

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ._common import fmt as _fmt, number as _num, series, text as _text

TITLE = "random interpolators: guess-and-check learning curves (Buzaglo et al. 2024; Chiang et al. 2023)"


class _Task:
    def __init__(self, h5file, name):
        g = h5file["tasks"][name]
        self.name = name
        self.experiment = _text(g, "experiment")
        self.sweep_point = _text(g, "sweep_point")
        self.student = _text(g, "student")
        self.verdict = _text(g, "verdict")
        self.detail = _text(g, "verdict_detail")
        self.ln_p_star = _num(g, "ln_inverse_p_star")
        self.p_star_source = _text(g, "ln_inverse_p_star_source")
        self.counting = _num(g, "ln_inverse_p_star_counting")
        self.mc = _num(g, "ln_inverse_p_star_mc")
        self.total_guesses = _num(g, "total_guesses")
        self.err = series(g, "observables", "test_error")
        self.bayes = series(g, "observables", "bayes_error")
        self.lnp = series(g, "observables", "ln_inverse_acceptance")
        self.cum = series(g, "observables", "cumulative_error")
        self.sgd = series(g, "observables", "sgd_test_error")
        self.bound = series(g, "theory", "error_bound")
        self.label = self.sweep_point or self.experiment

    def error_at(self, n):
        if self.err is None:
            return math.nan
        hit = np.nonzero(self.err[0] == n)[0]
        return float(self.err[1][hit[0], 0]) if hit.size else math.nan


def _curve(ax, t, color, label_prefix=""):
    if t.err is not None:
        n, v = t.err
        ax.errorbar(n, v[:, 0], yerr=v[:, 1], color=color, marker="o", markersize=4, capsize=2,
                    label=f"{label_prefix}G&C ε̄_N ± SE")
    if t.sgd is not None:
        n, v = t.sgd
        ax.errorbar(n, v[:, 0], yerr=v[:, 1], color=color, marker="s", markersize=4, capsize=2, linestyle=":",
                    label=f"{label_prefix}SGD test error")
    if t.bound is not None:
        ax.plot(t.bound[0], t.bound[1], color=color, linestyle="--", linewidth=1.0,
                label=f"{label_prefix}bound (ln 1/p* + 1)/N")


def plot_task(h5file, task_name, png_path):
    t = _Task(h5file, task_name)
    fig, (ax_a, ax_b) = plt.subplots(1, 2, figsize=(14, 5.5), layout="constrained")
    _curve(ax_a, t, "tab:blue")
    if t.bayes is not None:
        n, v = t.bayes
        vv = v[:, 0] if v.ndim > 1 else v
        ok = np.isfinite(vv)
        ax_a.plot(n[ok], vv[ok], color="tab:orange", marker="x", linestyle="none",
                  label="Bayes identity 1 − C_{N+1}/C_N")
    ax_a.axhline(0.5, color="gray", linewidth=0.6)
    ax_a.set_ylim(-0.02, 0.6)
    ax_a.set_xlabel("training-set size N")
    ax_a.set_ylabel("test error")
    ax_a.set_title(f"(a) learning curve — {t.label}", fontsize=10)
    ax_a.legend(fontsize=8)
    if t.lnp is not None:
        ax_b.plot(t.lnp[0], t.lnp[1], color="tab:blue", marker="o", markersize=4, label="E[ln 1/p(S_N)] (measured)")
    if t.cum is not None:
        ax_b.plot(t.cum[0], t.cum[1], color="tab:green", marker="^", markersize=4, label="Σ_{n<N} ε̄_n (Bayes estimate)")
    if math.isfinite(t.ln_p_star):
        ax_b.axhline(t.ln_p_star, color="black", linestyle="--", linewidth=1.0,
                     label=f"ln 1/p* = {_fmt(t.ln_p_star)} ({t.p_star_source})")
    if math.isfinite(t.counting) and t.counting != t.ln_p_star:
        ax_b.axhline(t.counting, color="gray", linestyle=":", linewidth=1.0,
                     label=f"counting bound {_fmt(t.counting)}")
    ax_b.set_xlabel("training-set size N")
    ax_b.set_ylabel("nats")
    ax_b.set_title("(b) cumulative bound Σ ε̄_n ≤ E[ln 1/p(S_N)] ≤ ln 1/p* (saturation)", fontsize=10)
    ax_b.legend(fontsize=8)
    fig.suptitle(f"{task_name}: {t.student} — verdict {t.verdict}", fontsize=10)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def plot_experiment(h5file, experiment, task_names, png_path):
    tasks = [_Task(h5file, n) for n in task_names]
    if not tasks:
        return
    with_sgd = any(t.sgd is not None for t in tasks)
    fig, axes = plt.subplots(1, 2 if with_sgd else 1, figsize=(15 if with_sgd else 9, 6), layout="constrained",
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ax = axes[0, 0]
    for i, t in enumerate(tasks):
        c = colors[i % len(colors)]
        if t.err is not None:
            n, v = t.err
            ax.errorbar(n, v[:, 0], yerr=v[:, 1], color=c, marker="o", markersize=4, capsize=2,
                        label=f"{t.label} G&C")
        if t.bound is not None:
            ax.plot(t.bound[0], t.bound[1], color=c, linestyle="--", linewidth=0.9, label=f"{t.label} bound")
    ax.set_ylim(-0.02, 0.6)
    ax.set_xlabel("training-set size N")
    ax.set_ylabel("test error of random interpolators")
    ax.set_title(f"{experiment}: learning curves (dashed: (ln 1/p* + 1)/N)", fontsize=10)
    ax.legend(fontsize=8)
    if with_sgd:
        ax = axes[0, 1]
        for i, t in enumerate(tasks):
            c = colors[i % len(colors)]
            if t.err is not None:
                ax.errorbar(t.err[0], t.err[1][:, 0], yerr=t.err[1][:, 1], color=c, marker="o", capsize=2,
                            label=f"{t.label} guess-and-check")
            if t.sgd is not None:
                ax.errorbar(t.sgd[0], t.sgd[1][:, 0], yerr=t.sgd[1][:, 1], color=c, marker="s", capsize=2,
                            linestyle=":", label=f"{t.label} SGD")
        ax.set_xlabel("training-set size N")
        ax.set_ylabel("test error")
        ax.set_title("guess-and-check vs SGD (Chiang et al. 2023)", fontsize=10)
        ax.legend(fontsize=8)
    fig.savefig(png_path, dpi=80)
    plt.close(fig)


def table(h5file, task_names):
    tasks = [_Task(h5file, n) for n in task_names]
    lines = [
        "Criteria (interpolators.md §2.4 (A), §7.3): N·ε̄_N ≤ ln(1/p*) + 1, Σ_{n<N} ε̄_n ≤ E[ln 1/p(S_N)] ≤ "
        "ln(1/p*) + 0.2, the Bayes identity 1 − C_{N+1}/C_N ≈ ε̄_N, and ε̄_N non-increasing, within the task's "
        "tolerance and 3 standard errors.",
        "",
        "| task | experiment | sweep point | student | ε̄ at first N | ε̄ at last N | SGD at last N | ln 1/p* (source) | "
        "guesses | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for t in tasks:
        first = _fmt(t.err[1][0, 0]) if t.err is not None else "—"
        last = _fmt(t.err[1][-1, 0]) if t.err is not None else "—"
        sgd = _fmt(t.sgd[1][-1, 0]) if t.sgd is not None else "—"
        row = [t.name, t.experiment, t.sweep_point or "—", t.student, first, last, sgd,
               f"{_fmt(t.ln_p_star)} ({t.p_star_source})", _fmt(t.total_guesses), t.verdict or "—"]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return lines
