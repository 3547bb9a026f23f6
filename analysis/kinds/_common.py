"""Helpers shared by the report plugins (analysis/kinds/<kind>.py): reading a task's attributes,
series and parameters with h5py, and formatting Markdown table cells.

Every reader returns a placeholder (``""``, NaN or None) instead of raising when the item is
missing or unreadable, so that one odd task does not stop a plugin's figure or table."""

import math

import numpy as np

# ---- reading ----------------------------------------------------------------------------------

STEP = (("step", np.int64),)
TIME = (("time", np.float64),)


def text(obj, name, default=""):
    """The attribute ``name`` of an h5py object as a str, or ``default`` when absent."""
    if name not in obj.attrs:
        return default
    value = obj.attrs[name]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0] if value.size else ""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8", errors="replace")
    return str(value)


def number(obj, name):
    """The attribute ``name`` of an h5py object as a float, or NaN."""
    if name not in obj.attrs:
        return math.nan
    try:
        return float(np.asarray(obj.attrs[name]).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return math.nan


def series(task, which, name, axes=STEP):
    """The axis arrays then the value array of /tasks/<t>/<which>/<name>, cut to a common length,
    or None when absent, unreadable or empty.

    ``axes`` lists the (dataset name, dtype) of each axis to read, in the order returned: STEP
    (the default) gives (step, value), TIME gives (time, value)."""
    if which not in task or name not in task[which]:
        return None
    grp = task[which][name]
    try:
        columns = [np.asarray(grp[key][()], dtype=dtype).reshape(-1) for key, dtype in axes]
        value = np.asarray(grp["value"][()], dtype=np.float64)
    except (KeyError, OSError, ValueError, TypeError):
        return None
    n = min(*(len(c) for c in columns), value.shape[0] if value.ndim else 0)
    if n == 0:
        return None
    return (*(c[:n] for c in columns), value[:n])


def last(s):
    """The last value of a scalar series (axis, value), or NaN."""
    if s is None or s[1].ndim != 1:
        return math.nan
    return float(s[1][-1])


def param(task, name):
    """The array /tasks/<t>/parameters/<name> as float64, or None."""
    if "parameters" not in task or name not in task["parameters"]:
        return None
    try:
        return np.asarray(task["parameters"][name][()], dtype=np.float64)
    except (OSError, ValueError, TypeError):
        return None


def param_scalar(task, name):
    """The first entry of /tasks/<t>/parameters/<name>, or NaN."""
    p = param(task, name)
    if p is None or p.size == 0:
        return math.nan
    return float(p.reshape(-1)[0])


# ---- Markdown tables --------------------------------------------------------------------------


def fmt(x, digits=4):
    """A finite int or float with ``digits`` significant digits, else an em dash."""
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}g}"


def cell(s):
    """s as one Markdown table cell: no newline, escaped pipes, never empty."""
    s = str(s).replace("\n", " ").replace("|", "\\|")
    return s if s else " "


def row(cells):
    """A Markdown table row of the cells, each through cell()."""
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def header(names):
    """The header line and the separator line of a Markdown table with these column names."""
    return ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
