#!/usr/bin/env python3
"""Regenerates tests/unit/data/stat_vectors.json: reference p-values from scipy.stats for the
rule engine's tests (pip install scipy). The unit tests compare against these to 1e-6."""
import json
import math
import os
import random

from scipy import stats

random.seed(20261126)
out = {"two_proportion": [], "welch": [], "t_sf": [], "normal_sf": []}
alts = ["greater", "less", "two-sided"]
for _ in range(60):
    n1, n2 = random.randint(20, 20000), random.randint(20, 20000)
    p1, p2 = random.uniform(0.001, 0.6), random.uniform(0.001, 0.6)
    x1, x2 = int(n1 * p1), int(n2 * p2)
    alt = random.choice(alts)
    pool = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pool * (1 - pool) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    p = {"greater": stats.norm.sf(z), "less": stats.norm.cdf(z), "two-sided": 2 * stats.norm.sf(abs(z))}[alt]
    out["two_proportion"].append({"x1": x1, "n1": n1, "x2": x2, "n2": n2, "alternative": alt, "z": z, "p": p})
for _ in range(60):
    n1, n2 = random.randint(2, 5000), random.randint(2, 5000)
    m1, m2 = random.uniform(0.1, 5), random.uniform(0.1, 5)
    s1, s2 = random.uniform(0.05, 3), random.uniform(0.05, 3)
    alt = random.choice(alts)
    r = stats.ttest_ind_from_stats(m1, s1, n1, m2, s2, n2, equal_var=False, alternative=alt)
    out["welch"].append({"mean1": m1, "var1": s1 * s1, "n1": n1, "mean2": m2, "var2": s2 * s2, "n2": n2,
                         "alternative": alt, "t": float(r.statistic), "p": float(r.pvalue)})
for df in [1, 2, 3, 5, 10, 29.5, 100, 1000.3, 1e5]:
    for t in [-4, -1.5, -0.2, 0, 0.3, 1, 2.2, 3.7, 8]:
        out["t_sf"].append({"t": t, "df": df, "p": float(stats.t.sf(t, df))})
for z in [-8, -3, -1, 0, 0.5, 1.96, 3, 5, 8, 12]:
    out["normal_sf"].append({"z": z, "p": float(stats.norm.sf(z))})
path = os.path.join(os.path.dirname(__file__), "..", "tests", "unit", "data", "stat_vectors.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path)
