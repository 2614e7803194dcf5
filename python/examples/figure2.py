"""The paper's figure 2 from Python: eg of an autoencoder with K = 3 erf units on the spiked
model (spikes 9, 3, 1; D = 1000), the ODE against 4 replicas of SGD from the same weights, and
the ODE from two smaller initial weights: the plateaus sharpen as the weights shrink.

    python python/examples/figure2.py [figure2.png]
"""

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import aedyn
from aedyn import plot

out = sys.argv[1] if len(sys.argv) > 1 else "figure2.png"
common = dict(k=3, spikes=[9, 3, 1], d=1000, t_end=300, t_min=0.05, seed=3)

fig, ax = plt.subplots(figsize=(8, 5))
runs = aedyn.compare(points=40, seeds=4, **common)
plot.eg(runs, ax=ax, label="init std 0.1")
model = aedyn.Model("vanilla", k=3)
for std in (0.01, 0.001):
    options = {key: value for key, value in common.items() if key != "k"}
    df = model.ode(points=200, init_std=std, **options)
    ax.plot(df.t, df.eg, lw=2, label=f"init std {std}: eg (ODE)")
ax.legend(loc="upper right", fontsize="small")
ax.set_title("eg: ODE (lines) and SGD (markers), K = M = 3, erf, D = 1000")
fig.tight_layout()
fig.savefig(out, dpi=120)
print(f"t = 300: eg ODE {runs.eg_ode.iloc[-1]:.4f}, SGD {runs.eg_sgd_mean.iloc[-1]:.4f}; wrote {out}")
