"""Sensitivity analyses: leave-one-out, influence diagnostics, cumulative meta-analysis, Baujat data and GOSH.

Each of these refits the model on many subsets of the studies. A subset is a row of a boolean mask, so all the
refits of one analysis are a single batched call of the engine (:func:`metabac.pool` with 2-D input), never a
loop over models.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special

from metabac._checks import (
    InputError,
    label_list,
    random_generator,
    require_whole_number,
    study_inputs,
    study_name,
    unpack_effect_sizes,
)
from metabac._result import Result, fmt, to_jsonable
from metabac.pooling import Batch, PoolBatch, pool
from metabac.tau2 import T_TESTS, Control
from metabac.wls import chunk_rows

Array = NDArray[np.float64]
FIT_COLUMNS = ("estimate", "se", "statistic", "pvalue", "ci_low", "ci_high", "q", "q_pvalue", "tau2", "i2", "h2")


def subset_fits(y: Array, v: Array, mask: NDArray[np.bool_], method: str, test: str = "z", level: float = 95,
                control: Control | None = None) -> PoolBatch:
    """One model per row of ``mask`` (True = study included), fitted in one batched call."""
    y_rows: Batch = np.broadcast_to(y, mask.shape)
    v_rows: Batch = np.broadcast_to(v, mask.shape)
    return pool(y_rows, v_rows, method=method, test=test, level=level, mask=mask, control=control)


def fit_table(fits: PoolBatch, index: pd.Index) -> pd.DataFrame:
    """The per-subset numbers of a batched fit as a DataFrame, one row per subset."""
    return pd.DataFrame({name: np.asarray(getattr(fits, name), dtype=float) for name in FIT_COLUMNS}, index=index)


def leave_one_out(
    yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, method: str = "REML", test: str = "z",
    level: float = 95, *,
    labels: ArrayLike | None = None, control: Control | None = None,
) -> pd.DataFrame:
    """Refit the model k times, each time without one study (metafor's ``leave1out``).

    Returns
    -------
    pandas.DataFrame
        Indexed by the omitted study, columns estimate, se, statistic, pvalue, ci_low, ci_high, q, q_pvalue, tau2,
        i2, h2 of the model fitted to the other k − 1 studies.

    Examples
    --------
    >>> table = leave_one_out([0.1, 0.3, 0.35, 0.65], [0.01, 0.02, 0.015, 0.03], method="DL")
    >>> round(float(table.loc["study 4", "estimate"]), 4)
    0.2323
    """
    yi, vi, labels, _ = unpack_effect_sizes(yi, vi, labels)
    y, v, names = study_inputs(yi, vi, labels)
    if len(y) < 2:
        raise InputError("leave_one_out: needs at least 2 studies")
    fits = subset_fits(y, v, ~np.eye(len(y), dtype=bool), method, test, level, control)
    return fit_table(fits, pd.Index(names, name="omitted"))


def cumulative(
    yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, order: ArrayLike | None = None,
    method: str = "REML", test: str = "z", level: float = 95, *, labels: ArrayLike | None = None,
    control: Control | None = None,
) -> pd.DataFrame:
    """Cumulative meta-analysis: add the studies one at a time in ascending ``order`` (metafor's ``cumul``).

    ``order`` holds one sort key per study (e.g. the publication year); ties keep the input order, and ``None``
    keeps the input order throughout. Row j is the model fitted to the first j studies.

    Returns
    -------
    pandas.DataFrame
        Indexed by the study added at each step, with the columns of :func:`leave_one_out` and ``k``.
    """
    yi, vi, labels, _ = unpack_effect_sizes(yi, vi, labels)
    y, v, names = study_inputs(yi, vi, labels)
    k = len(y)
    if order is None:
        sequence = np.arange(k)
    else:
        sequence = _order(order, label_list(labels), k)
    y, v = y[sequence], v[sequence]
    mask = np.tri(k, dtype=bool)
    fits = subset_fits(y, v, mask, method, test, level, control)
    table = fit_table(fits, pd.Index([names[i] for i in sequence], name="added"))
    table.insert(0, "k", np.arange(1, k + 1))
    return table


def _order(order: ArrayLike, labels: list[str] | None, k: int) -> NDArray[np.int64]:
    """The indices that sort the studies by ``order`` (stable), after checking one key per study, none missing,
    and all of one kind (numbers, or text: numpy would compare a mix as text)."""
    if np.ndim(np.asarray(order, dtype=object)) != 1:
        raise InputError(f"order: expected one sort key per study, got {order!r:.60}")
    keys = np.asarray(order, dtype=object).tolist()
    if len(keys) != k:
        raise InputError(f"order: {len(keys)} sort keys for {k} studies")
    for i, key in enumerate(keys):
        if not pd.api.types.is_scalar(key) or pd.isna(key):
            raise InputError(f"{study_name(i, labels)}: order: missing or not a single sort key, got {key!r}")
    kinds = {"text" if isinstance(key, str) else "number" if isinstance(key, (int, float, np.number))
             else type(key).__name__ for key in keys}
    if len(kinds) > 1:
        raise InputError(f"order: sort keys of different kinds ({', '.join(sorted(kinds))}) cannot be compared")
    try:
        return np.argsort(np.asarray(keys), kind="stable")
    except TypeError:
        raise InputError(f"order: the sort keys cannot be compared with each other ({kinds.pop()})") from None


def influence(
    yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, method: str = "REML", test: str = "z",
    level: float = 95, *,
    labels: ArrayLike | None = None, control: Control | None = None,
) -> pd.DataFrame:
    """Case-deletion diagnostics of a random- or fixed-effects model (Viechtbauer & Cheung 2010; metafor's
    ``influence.rma.uni``).

    Returns
    -------
    pandas.DataFrame
        Indexed by study, with columns

        - ``rstudent``: externally standardised residual (y_i − μ̂₍₋ᵢ₎)/√(s²(v_i + tau²₍₋ᵢ₎) + Var μ̂₍₋ᵢ₎);
        - ``dffits``: (μ̂ − μ̂₍₋ᵢ₎)/√(s² h_i (tau²₍₋ᵢ₎ + v_i));
        - ``cook_d``: (μ̂ − μ̂₍₋ᵢ₎)²/Var μ̂;
        - ``cov_r``: Var μ̂₍₋ᵢ₎ / Var μ̂;
        - ``tau2_del``, ``qe_del``: tau² and Cochran's Q without study i;
        - ``hat``: h_i = w_i/Σw with w = 1/(v + tau²); ``weight``: 100 h_i;
        - ``dfbetas``: (μ̂ − μ̂₍₋ᵢ₎)/√(s² / Σ_j 1/(v_j + tau²₍₋ᵢ₎));
        - ``influential``: metafor's flag, |dffits| > 3√(1/(k − 1)), or P(χ²₁ ≤ cook_d) > 0.5, or h_i > 3/k, or
          |dfbetas| > 1.

        s² is 1 under ``test="z"`` and the Knapp-Hartung factor of the model without study i under "knha" (its
        max(1, ·) under "adhoc").

    References
    ----------
    Viechtbauer W, Cheung MW-L (2010). Outlier and influence diagnostics for meta-analysis. Res Synth Methods
    1:112-125, eq. 8-15.
    """
    yi, vi, labels, _ = unpack_effect_sizes(yi, vi, labels)
    y, v, names = study_inputs(yi, vi, labels)
    k = len(y)
    if k < 2:
        raise InputError("influence: needs at least 2 studies")
    full = pool(y, v, method=method, test=test, level=level, control=control)
    deleted = subset_fits(y, v, ~np.eye(k, dtype=bool), method, test, level, control)
    w = 1 / (v + full.tau2)
    hat = w / w.sum()
    tau2_del, beta_del, vb_del = deleted.tau2, deleted.estimate, deleted.se**2
    # Σ_j 1/(v_j + tau²₍₋ᵢ₎) over all k studies (row i) and over the k − 1 kept ones.
    weights_at_deleted_tau2 = 1 / (v[None, :] + tau2_del[:, None])
    sum_all = weights_at_deleted_tau2.sum(axis=1)
    sum_kept = sum_all - np.diag(weights_at_deleted_tau2)
    s2w = vb_del * sum_kept if test in T_TESTS else np.ones(k)   # the deleted fit's factor (knha or adhoc)
    change = full.estimate - beta_del
    residual = y - beta_del
    residual[np.abs(residual) < 100 * np.finfo(float).eps] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rstudent = residual / np.sqrt(v * s2w + vb_del + tau2_del * s2w)
        dffits = change / np.sqrt(s2w * hat * (tau2_del + v))
        dfbetas = change / np.sqrt(s2w / sum_all)
    cook_d = change**2 / full.se**2
    influential = ((np.abs(dffits) > 3 * np.sqrt(1 / (k - 1))) | (special.chdtr(1, cook_d) > 0.5)
                   | (hat > 3 / k) | (np.abs(dfbetas) > 1))
    return pd.DataFrame(
        {"rstudent": rstudent, "dffits": dffits, "cook_d": cook_d, "cov_r": vb_del / full.se**2,
         "tau2_del": tau2_del, "qe_del": deleted.q, "hat": hat, "weight": 100 * hat, "dfbetas": dfbetas,
         "influential": influential},
        index=pd.Index(names, name="study"),
    )


def baujat(
    yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, method: str = "EE", test: str = "z", *,
    labels: ArrayLike | None = None,
    control: Control | None = None,
) -> pd.DataFrame:
    """Data of the Baujat plot: each study's contribution to heterogeneity against its influence on the result.

    x_i = (y_i − μ̂)²/(v_i + tau²) (with the equal-effects model, study i's share of Cochran's Q);
    y_i = (μ̂ − μ̂₍₋ᵢ₎)²/Var μ̂₍₋ᵢ₎ (Baujat et al. 2002; metafor's ``baujat``).

    References
    ----------
    Baujat B, Mahé C, Pignon J-P, Hill C (2002). A graphical method for exploring heterogeneity in meta-analyses.
    Stat Med 21:2641-2652.
    """
    yi, vi, labels, _ = unpack_effect_sizes(yi, vi, labels)
    y, v, names = study_inputs(yi, vi, labels)
    k = len(y)
    if k < 2:
        raise InputError("baujat: needs at least 2 studies")
    full = pool(y, v, method=method, test=test, control=control)
    deleted = subset_fits(y, v, ~np.eye(k, dtype=bool), method, test, control=control)
    return pd.DataFrame(
        {"x": (y - full.estimate) ** 2 / (v + full.tau2),
         "y": (deleted.estimate - full.estimate) ** 2 / deleted.se**2},
        index=pd.Index(names, name="study"),
    )


class Executor(Protocol):
    """What :func:`gosh` needs of a distributed client: ``dask.distributed.Client`` has both methods."""

    def map(self, func: Any, *iterables: Any, **kwargs: Any) -> Any: ...

    def gather(self, futures: Any) -> Any: ...


@dataclass(frozen=True, repr=False)
class GoshResult(Result):
    """Every fitted subset of a GOSH analysis.

    ``table`` has one row per subset with columns k, estimate, q, i2, h2, tau2; ``incl`` (subsets x studies,
    bool) says which studies each subset holds; ``exact`` is true when all 2^k − 1 subsets were fitted.
    """

    table: pd.DataFrame
    incl: NDArray[np.bool_]
    labels: tuple[str, ...]
    method: str
    exact: bool

    def to_dict(self) -> dict:
        return to_jsonable({"method": self.method, "exact": self.exact, "labels": self.labels,
                            "table": self.table.to_dict(orient="list"), "incl": self.incl})

    def summary(self) -> str:
        """How many subsets were fitted, and the range of their estimates and I²."""
        kind = "all" if self.exact else "random"
        estimate, i2 = self.table["estimate"], self.table["i2"]
        return (f"GOSH ({self.method}): {len(self.table)} {kind} subsets of k = {len(self.labels)} studies; "
                f"estimate {fmt(estimate.min())} to {fmt(estimate.max())}, I^2 {fmt(i2.min(), 1)}% to "
                f"{fmt(i2.max(), 1)}%")


def all_subsets(k: int) -> NDArray[np.bool_]:
    """All 2^k − 1 non-empty subsets of k studies, by size, then in binary order with study 1 as the lowest bit
    (metafor's order)."""
    codes = np.arange(1, 2**k, dtype=np.int64)
    incl = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
    return incl[np.argsort(incl.sum(axis=1), kind="stable")]


def random_subsets(k: int, n: int, rng: np.random.Generator) -> NDArray[np.bool_]:
    """``n`` random non-empty subsets: the size m ~ Binomial(k, 1/2) truncated at m >= 1, then m studies drawn
    without replacement (metafor's sampling scheme)."""
    from scipy import stats  # imported here, where needed: scipy.stats takes 0.3-0.5 s to import

    sizes = np.arange(1, k + 1)
    probabilities = stats.binom.pmf(sizes, k, 0.5)
    m = rng.choice(sizes, size=n, p=probabilities / probabilities.sum())
    ranks = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)
    return ranks < m[:, None]


def gosh_chunk(y: Array, v: Array, incl: NDArray[np.bool_], method: str, control: Control | None) -> Array:
    """Fit the subsets of one chunk; columns k, estimate, q, i2, h2, tau2.

    For EE and DL, H² = Q/(k − 1) as metafor's ``gosh`` reports it; it equals the tau²-based H² of
    :func:`metabac.pool` except when Q < k − 1, where it falls below 1.
    """
    fits = subset_fits(y, v, incl, method, control=control)
    k = incl.sum(axis=1)
    h2 = fits.h2
    if method in ("EE", "FE", "DL"):
        h2 = np.where(k > 1, fits.q / np.maximum(k - 1, 1), 1.0)
    return np.column_stack([k, fits.estimate, fits.q, fits.i2, h2, fits.tau2])


def gosh(
    yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, method: str = "EE", *,
    max_subsets: int = 1_000_000,
    seed: int | np.random.Generator | None = None, labels: ArrayLike | None = None, control: Control | None = None,
    client: Executor | None = None,
) -> GoshResult:
    """GOSH (graphical display of study heterogeneity): fit the model to every subset of the studies.

    All 2^k − 1 subsets when that is at most ``max_subsets``, otherwise ``max_subsets`` random ones (reproducible
    from ``seed``). Subsets are fitted in chunks whose working arrays stay within 64 MiB
    (:func:`metabac.tau2.chunk_rows`); the result holds the inclusion matrix (k bytes per subset) and six numbers
    per subset. With ``client`` (e.g. a ``dask.distributed.Client``, local or connected to a cluster's scheduler)
    the chunks run on its workers.

    References
    ----------
    Olkin I, Dahabreh IJ, Trikalinos TA (2012). GOSH - a graphical display of study heterogeneity. Res Synth
    Methods 3:214-223.
    """
    yi, vi, labels, _ = unpack_effect_sizes(yi, vi, labels)
    y, v, names = study_inputs(yi, vi, labels)
    k = len(y)
    max_subsets = require_whole_number(max_subsets, "max_subsets")
    exact = k < 63 and 2**k - 1 <= max_subsets
    incl = all_subsets(k) if exact else random_subsets(k, max_subsets, random_generator(seed))
    rows = chunk_rows(k)
    chunks = [incl[start:start + rows] for start in range(0, len(incl), rows)]
    if client is None:
        parts: Sequence[Array] = [gosh_chunk(y, v, chunk, method, control) for chunk in chunks]
    else:
        n = len(chunks)
        parts = client.gather(client.map(gosh_chunk, [y] * n, [v] * n, chunks, [method] * n, [control] * n))
    numbers = np.vstack(parts)
    table = pd.DataFrame(numbers, columns=["k", "estimate", "q", "i2", "h2", "tau2"])
    table["k"] = table["k"].astype(int)
    return GoshResult(table=table, incl=incl, labels=tuple(names), method=method, exact=exact)


__all__ = ["GoshResult", "baujat", "cumulative", "gosh", "influence", "leave_one_out"]
