"""Fitted models against the paper's reference bank (both seeds): the issue's targets (~35 s)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from neuroana.hmmglm import HMMGLM


def _evaluate(m, d):
    tr, te = d["spikes"][:30], d["spikes"][30:]
    C = np.zeros((5, 5))
    np.add.at(C, (d["states"][:30].ravel(), m.predict_states(tr).values.ravel()), 1)
    perm = linear_sum_assignment(-C)[1]
    acc = (np.argsort(perm)[m.predict_states(te).values] == d["states"][30:]).mean()
    adj = (m.adjacency_.values[perm] == d["adjacency"]).mean()
    padj = (m.prior_adjacency_.values == d["anatomical_adjacency"]).mean()
    return m.score(te), acc, adj, padj


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("prior", ["none", "gaussian", "onehot"])
def test_fit_meets_reference_targets(shared_dir, seed, prior):
    ref = shared_dir / "hmmglm_reference"
    d = np.load(ref / f"seed{seed}.npz")
    js = json.loads((ref / f"seed{seed}.json").read_text())
    true_ll = js["true_parameters"]["test_ll_per_bin"]
    m = HMMGLM(5, prior=prior, link="sigmoid", n_restarts=4, random_state=0, device="cpu")
    m.fit(d["spikes"][:30])
    ll, acc, adj, padj = _evaluate(m, d)
    assert ll > true_ll - 0.03
    assert (
        ll
        > js["paper_fits"][{"none": "HG", "gaussian": "GHG", "onehot": "OHG"}[prior]][
            "test_ll_per_bin"
        ]
    )
    assert acc >= 0.975
    if prior == "onehot":
        trivial = (d["adjacency"] == 0).mean()
        assert adj >= 0.90 and adj > trivial
        assert padj >= 0.85
