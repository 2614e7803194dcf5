"""Plots of aedyn's tables with matplotlib (optional: ``pip install matplotlib``).

``eg(df)`` draws the ODE's eg as a line, the SGD replicas' mean as markers with error bars
(one standard deviation) and the PCA errors as labelled reference lines, on log axes.
``order_parameters(df)`` draws the diagonal order parameters of every unit, ODE lines and SGD
markers in one colour per quantity. Both return the Axes.
"""

from __future__ import annotations

import re
from typing import Any, Optional, Sequence


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError(
            "aedyn.plot needs matplotlib: pip install matplotlib (or pip install 'aedyn[plot]')"
        ) from None
    return plt


def _axes(ax):
    return ax if ax is not None else _pyplot().subplots(figsize=(7, 4.5))[1]


# Each PCA rank its own grey and dash pattern, as in the command line's plots.
_PCA_STYLES = [("0.25", (0, (7, 2))), ("0.4", (0, (3, 2))), ("0.55", (0, (1, 1.5))), ("0.65", (0, (9, 3, 2, 3)))]


def eg(df, ax: Optional[Any] = None, label: str = ""):
    """eg against t from an ``ode``, ``compare`` or ``sgd`` table."""
    ax = _axes(ax)
    prefix = f"{label}: " if label else ""
    t = df["t"]
    line = None
    for column in ("eg_ode", "eg"):
        if column in df:
            (line,) = ax.plot(t, df[column], lw=2, label=f"{prefix}eg (ODE)")
            break
    if "eg_sgd_mean" in df:
        color = line.get_color() if line is not None else None
        ax.errorbar(t, df["eg_sgd_mean"], yerr=df.get("eg_sgd_std"), fmt="o", ms=4, color=color, label=f"{prefix}eg (SGD)")
    ranks = sorted(int(m.group(1)) for c in df.columns if (m := re.fullmatch(r"eg_pca_(\d+)", c)))
    for i, rank in enumerate(ranks):
        shade, dash = _PCA_STYLES[i % len(_PCA_STYLES)]
        ax.axhline(df[f"eg_pca_{rank}"].iloc[0], color=shade, ls=dash, lw=1.2, label=f"PCA rank {rank}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t (SGD steps / D)")
    ax.set_ylabel("eg")
    ax.legend(loc="best", fontsize="small")
    return ax


def order_parameters(df, ax: Optional[Any] = None, quantities: Sequence[str] = ("Q", "T")):
    """The diagonal entries ``X_k_k`` of each quantity in ``quantities``: ODE lines (``_ode``,
    or plain columns of an ``ode`` table) and SGD markers (``_sgd``), units counted from 1."""
    ax = _axes(ax)
    t = df["t"]
    drawn = 0
    for quantity in quantities:
        pattern = re.compile(rf"{re.escape(quantity)}_(\d+)_(\d+)(_ode|_sgd)?")
        for column in df.columns:
            m = pattern.fullmatch(column)
            if not m or m.group(1) != m.group(2):
                continue
            unit = int(m.group(1)) + 1
            color = f"C{(drawn // 2) % 10}" if m.group(3) else f"C{drawn % 10}"
            if m.group(3) == "_sgd":
                ax.plot(t, df[column], "o", ms=4, color=color, label=f"{quantity}_kk, unit {unit} (SGD)")
            else:
                ax.plot(t, df[column], lw=2, color=color, label=f"{quantity}_kk, unit {unit} (ODE)")
            drawn += 1
    if drawn == 0:
        raise ValueError(f"no diagonal columns of {', '.join(quantities)} in this table")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("t (SGD steps / D)")
    ax.set_ylabel("order parameter")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    return ax
