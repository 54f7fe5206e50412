"""Bad input to the numerical library: every kind gives an InputError naming the study, field and problem.

Trial files (tests/test_trials.py), CSV files (tests/test_cli_pool.py) and report output folders
(tests/test_report.py) have their own tables; README.md lists them all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import metabac as mb

Y, V = [0.1, 0.4, 0.2], [0.02, 0.03, 0.05]

CASES = [
    ("empty input", lambda: mb.pool([], []), r"yi/vi: no studies \(empty input\)"),
    ("mismatched lengths", lambda: mb.pool(Y, V[:2]), r"yi/vi: lengths differ \(yi=3, vi=2\)"),
    ("NaN effect size", lambda: mb.pool([0.1, math.nan], [0.1, 0.1]), r"study 2: yi: must be finite, got nan"),
    ("infinite variance", lambda: mb.pool([0.1, 0.2], [0.1, math.inf]), r"study 2: vi: must be finite, got inf"),
    ("zero variance", lambda: mb.pool(Y, [0.02, 0, 0.05]), r"study 2: vi: must be positive, got 0"),
    ("negative variance", lambda: mb.pool(Y, [0.02, 0.03, -1], labels=["a", "b", "c"]),
     r'study 3 \("c"\): vi: must be positive, got -1'),
    ("text in a number", lambda: mb.pool([0.1, "x"], [0.1, 0.1]), r"study 2: yi: not a number: 'x'"),
    ("unknown method", lambda: mb.pool(Y, V, method="XX"), r"method: unknown value 'XX'; choose one of EE, FE"),
    ("unknown test", lambda: mb.pool(Y, V, test="t"), r"test: unknown value 't'; choose one of z, knha"),
    ("level above 100", lambda: mb.pool(Y, V, level=150), r"level: must be in \(0, 100\) percent, got 150"),
    ("level of 0", lambda: mb.pool(Y, V, level=0), r"level: must be in \(0, 100\) percent"),
    ("unknown measure", lambda: mb.effect_sizes("HR", ai=[1], n1i=[2], ci=[1], n2i=[2]), r"measure: unknown value"),
    ("negative count", lambda: mb.effect_sizes("OR", ai=[1, -2], n1i=[5, 5], ci=[1, 1], n2i=[5, 5]),
     r"study 2: ai: must not be negative, got -2"),
    ("non-integer count", lambda: mb.effect_sizes("OR", ai=[1.5], n1i=[5], ci=[1], n2i=[5]),
     r"study 1: ai: must be a whole number, got 1.5"),
    ("events above group size", lambda: mb.effect_sizes("RR", ai=[6], n1i=[5], ci=[1], n2i=[5]),
     r"study 1: ai: 6 events exceed the group size n1i=5"),
    ("zero group size", lambda: mb.effect_sizes("MD", m1i=[1], sd1i=[1], n1i=[0], m2i=[1], sd2i=[1], n2i=[4]),
     r"study 1: n1i: must be positive, got 0"),
    ("zero SD", lambda: mb.effect_sizes("SMD", m1i=[1], sd1i=[0], n1i=[4], m2i=[1], sd2i=[1], n2i=[4]),
     r"study 1: sd1i: must be positive, got 0"),
    ("non-positive mean for ROM", lambda: mb.effect_sizes("ROM", m1i=[-1], sd1i=[1], n1i=[4], m2i=[1], sd2i=[1],
                                                          n2i=[4]), r"study 1: m1i: must be positive, got -1"),
    ("all-zero-event studies (MH RR)", lambda: mb.mantel_haenszel("RR", ai=[0, 0], n1i=[5, 5], ci=[0, 0], n2i=[5, 5]),
     r"RR: Mantel-Haenszel risk ratio is not estimable"),
    ("all-zero-event studies (Peto)", lambda: mb.peto(ai=[0, 0], n1i=[5, 5], ci=[0, 0], n2i=[5, 5]),
     r"PETO: not estimable"),
    ("double-zero study without correction", lambda: mb.effect_sizes("RR", ai=[0], n1i=[5], ci=[0], n2i=[5], add=0),
     r"study 1: RR: effect size is not estimable"),
    ("labels of the wrong length", lambda: mb.effect_sizes("RR", ai=[1], n1i=[5], ci=[1], n2i=[5], labels=["a", "b"]),
     r"labels: 2 labels for 1 studies"),
    ("moderators of the wrong length", lambda: mb.metareg(Y, V, [1, 2]), r"mods: expected 3 rows"),
    ("too many moderators for the studies", lambda: mb.metareg(Y, V, [[1, 0], [2, 1], [3, 5]]),
     r"mods: 3 coefficients need more than 3 studies"),
    ("groups of the wrong length", lambda: mb.subgroups(Y, V, ["a", "b"]), r"groups: 2 labels for 3 studies"),
    ("Q-profile with one study", lambda: mb.pool([0.1], [0.1]).confint(), r"confint: needs at least 2 studies"),
    ("too few permutations", lambda: mb.metareg(Y, V, [1, 2, 3]).permutation_test(n=1),
     r"n: need at least 2 permutations"),
    ("batched input with a mask of another shape", lambda: mb.pool(np.zeros((2, 3)), np.ones((2, 3)),
                                                                   mask=np.ones((2, 2))), r"mask: shape"),
]


@pytest.mark.parametrize(("kind", "call", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(kind: str, call, message: str) -> None:
    with pytest.raises(mb.InputError, match=message) as error:
        call()
    assert "\n" not in str(error.value)
