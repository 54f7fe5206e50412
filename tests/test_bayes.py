"""mb.bayes: the exact posterior against a brute-force 2-D integration, bayesmeta's published examples, edge cases.

Brute force: the joint posterior p(tau) p(mu) Π N(y_i | mu, v_i + tau²) on a tensor grid of composite
Gauss-Legendre nodes in (tau, mu) (no analytic integration over mu, no transformation), split at the point whose
CDF is wanted. bayesmeta (Röver 2020) integrates tau numerically but approximates the posterior of mu, the
predictive distribution and the shrinkage estimates by a finite normal mixture: there it is matched at the
precision its own two printouts of one analysis agree on (``print`` and ``$summary`` differ in the 4th decimal), or
at the 2 decimals of the paper's text and forest plot; its tau numbers are matched at their printed precision.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

import metabac as mb
import metabac.simulation as simulation_module

ROOT = Path(__file__).resolve().parents[1]

# Crins et al. (2014), acute rejection, log odds ratios (bayesmeta's CrinsEtAl2014; escalc adds 1/2 to Gras' cells).
CRINS = mb.effect_sizes("OR", ai=[14, 16, 3, 9, 4, 0], n1i=[61, 28, 18, 54, 36, 50], ci=[15, 19, 8, 29, 11, 3],
                        n2i=[20, 28, 12, 54, 36, 34],
                        labels=["Heffron (2003)", "Gibelli (2004)", "Schuller (2005)", "Ganschow (2005)",
                                "Spada (2006)", "Gras (2008)"])
# Rubin (1981), eight schools (bayesmeta's Rubin1981).
SCHOOLS_Y = np.array([28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16])
SCHOOLS_V = np.array([14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]) ** 2

DATASETS = {
    "crins": (CRINS.yi.to_numpy(), CRINS.vi.to_numpy()),
    "schools/20": (SCHOOLS_Y / 20, SCHOOLS_V / 400),
    "three trials": (np.array([0.1, 0.65, -0.2]), np.array([0.04, 0.09, 0.02])),
    "equal variances": (np.array([0.3, -0.1, 0.5, 0.2, 0.9]), np.full(5, 0.05)),
    "heterogeneous k=7": (np.array([-0.8, 0.4, 0.1, 1.2, -0.3, 0.7, 0.0]),
                          np.array([0.02, 0.3, 0.05, 0.1, 0.01, 0.2, 0.04])),
}
PRIORS = {
    "halfnormal": mb.tau_prior("halfnormal", 0.5),
    "halfcauchy": mb.tau_prior("halfcauchy", 0.5),
    "turner": mb.tau_prior("turner"),
}


def _normal_logpdf(x: np.ndarray | float, mean: np.ndarray | float, variance: np.ndarray | float) -> np.ndarray:
    """log N(x | mean, variance), written out (scipy.stats' generic machinery costs more than the sum here)."""
    return -0.5 * ((x - mean) ** 2 / variance + np.log(2 * math.pi * variance))


def _gl(segments: list[tuple[float, float, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Composite 10-point Gauss-Legendre nodes and weights over consecutive segments (lo, hi, panels)."""
    x, w = np.polynomial.legendre.leggauss(10)
    nodes, weights = [], []
    for lo, hi, panels in segments:
        edges = np.linspace(lo, hi, panels + 1)
        half, mid = np.diff(edges)[:, None] / 2, (edges[:-1] + edges[1:])[:, None] / 2
        nodes.append((mid + half * x).ravel())
        weights.append((half * w).ravel())
    return np.concatenate(nodes), np.concatenate(weights)


class Brute:
    """The joint posterior on a (tau, mu) grid. The grid is split at every point whose CDF is wanted (``mu_cuts``,
    ``tau_cuts``), where the integrand of a CDF steps, so that each CDF is a sum over whole panels."""

    def __init__(self, y: np.ndarray, v: np.ndarray, prior: mb.TauPrior, mu_prior: tuple[float, float] | None,
                 mu_cuts: tuple[float, ...] = (), tau_cuts: tuple[float, ...] = ()):
        self.y, self.v, self.prior, self.mu_prior = y, v, prior, mu_prior
        self.s = math.sqrt(v.max()) + np.ptp(y)
        self.tau, self.wt = self.tau_grid(tau_cuts)
        self.mu, self.wm = self.mu_grid(mu_cuts)
        self.t, self.m = np.meshgrid(self.tau, self.mu, indexing="ij")
        # Σ_i log N(y_i | mu, v_i + tau²) = −½ [a (mu − ȳ)² + r + Σ log 2π s_i], s_i = v_i + tau², a = Σ 1/s_i,
        # ȳ = Σ(y_i/s_i)/a, r = Σ (y_i − ȳ)²/s_i: the same sum of squares, expanded once per tau node
        s = v[None, :] + self.tau[:, None] ** 2
        a = (1 / s).sum(axis=1)
        ybar = (y / s).sum(axis=1) / a
        r = ((y[None, :] - ybar[:, None]) ** 2 / s).sum(axis=1)
        log_det = np.log(2 * math.pi * s).sum(axis=1)
        log = (prior.logpdf(self.tau) - 0.5 * (r + log_det))[:, None] - 0.5 * a[:, None] * (self.m - ybar[:, None]) ** 2
        if mu_prior is not None:
            log = log + _normal_logpdf(self.mu, mu_prior[0], mu_prior[1] ** 2)[None, :]
        top = log.max()
        w = np.exp(log - top) * self.wt[:, None] * self.wm[None, :]
        self.log_z, w = math.log(w.sum()) + top, w / w.sum()
        # the expectations sum over the nodes that carry weight: about a third of the grid, the rest together
        # weighing less than 1e-12 (bounded here), far below the 1e-7 the tests ask for
        kept = w > 1e-18
        assert w[~kept].sum() < 1e-12
        self.weights, self.t, self.m = w[kept], self.t[kept], self.m[kept]

    def tau_grid(self, splits: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        s = self.s
        cuts = sorted({0, 1e-3 * s, 1e-2 * s, 0.1 * s, 2 * s, 20 * s, 2000 * s, *splits})
        return _gl([(a, b, 30 if b - a > 0.05 * s and b <= 2 * s else 10) for a, b in zip(cuts[:-1], cuts[1:])])

    def mu_grid(self, splits: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Panels of 10 nodes: 15 and 10 in the far and near tails on each side, 60 across the data; a split
        divides a segment's panels in proportion."""
        s, lo, hi = self.s, self.y.min(), self.y.max()
        edges = [lo - 1000 * s, lo - 12 * s, lo - s, hi + s, hi + 12 * s, hi + 1000 * s]
        panels = [15, 10, 60, 10, 15]
        segments = []
        for a, b, n in zip(edges[:-1], edges[1:], panels):
            cuts = [a, *sorted(x for x in splits if a < x < b), b]
            segments += [(c, d, max(2, round(n * (d - c) / (b - a)))) for c, d in zip(cuts[:-1], cuts[1:])]
        return _gl(segments)

    def expect(self, f) -> float:
        return float((self.weights * f(self.t, self.m)).sum())

    def mu_cdf(self, x: float) -> float:
        return self.expect(lambda t, m: m <= x)

    def tau_cdf(self, x: float) -> float:
        return self.expect(lambda t, m: t <= x)

    def predictive_cdf(self, x: float) -> float:
        """P(theta_new <= x), theta_new | mu, tau ~ N(mu, tau²)."""
        return self.expect(lambda t, m: special.ndtr((x - m) / np.maximum(t, 1e-300)))

    def theta_cdf(self, x: float, y: float, v: float) -> float:
        """P(theta_i <= x): theta_i | mu, tau, y_i is normal with mean b mu + (1 − b) y_i, b = v/(v + tau²), and
        variance v tau²/(v + tau²)."""
        b = v / (v + self.t**2)
        sd = np.sqrt(np.maximum(v * self.t**2 / (v + self.t**2), 1e-300))
        return float((self.weights * special.ndtr((x - (b * self.m + (1 - b) * y)) / sd)).sum())


CASES = [(data, prior, None) for data in DATASETS for prior in PRIORS] + [
    (data, "halfnormal", (0.0, 2.0)) for data in DATASETS]


@pytest.mark.parametrize("data,prior,mu_prior", CASES)
def test_posterior_equals_brute_force_2d_integration(data: str, prior: str, mu_prior) -> None:
    y, v = DATASETS[data]
    fit = mb.bayes(y, v, PRIORS[prior], mu_prior=mu_prior)
    # every point whose CDF is checked is a cut of the mu grid (tau grid for tau): the integrands step there
    mu_cuts = (fit.mu.median, fit.mu.low, fit.mu.high, fit.mu.shortest_low, fit.mu.shortest_high,
               fit.prediction.low, fit.prediction.high, fit.theta.median[0])
    brute = Brute(y, v, PRIORS[prior], mu_prior, mu_cuts, (fit.tau.median, fit.tau.low, fit.tau.high))
    assert fit.log_marginal_likelihood == pytest.approx(brute.log_z, abs=1e-7)
    for p, x in zip((0.5, 0.025, 0.975), (fit.mu.median, fit.mu.low, fit.mu.high)):
        assert brute.mu_cdf(x) == pytest.approx(p, abs=1e-7)
    for p, x in zip((0.5, 0.025, 0.975), (fit.tau.median, fit.tau.low, fit.tau.high)):
        assert brute.tau_cdf(x) == pytest.approx(p, abs=1e-7)
    assert brute.expect(lambda t, m: m) == pytest.approx(fit.mu.mean, rel=1e-7, abs=1e-9)
    assert brute.expect(lambda t, m: t) == pytest.approx(fit.tau.mean, rel=1e-6)
    decay = len(y) - (mu_prior is None)
    if PRIORS[prior].moment_is_finite(3, decay):  # else E[mu²] converges too slowly for a truncated grid
        assert math.sqrt(brute.expect(lambda t, m: (m - fit.mu.mean) ** 2)) == pytest.approx(fit.mu.sd, rel=1e-6)
    # a new trial's effect: theta_new | mu, tau ~ N(mu, tau²)
    for p, x in ((0.025, fit.prediction.low), (0.975, fit.prediction.high)):
        assert brute.predictive_cdf(x) == pytest.approx(p, abs=1e-7)
    # shortest intervals hold the level and have equal density at both ends (checked for mu)
    lo, hi = fit.mu.shortest_low, fit.mu.shortest_high
    assert brute.mu_cdf(hi) - brute.mu_cdf(lo) == pytest.approx(fit.level / 100, abs=1e-6)
    density = [fit._evaluate("mu", None, x, "pdf") for x in (lo, hi)]
    assert density[0] == pytest.approx(density[1], rel=1e-6)
    # shrinkage: theta_i | mu, tau, y_i ~ N((y_i/v_i + mu/tau²)/(1/v_i + 1/tau²), 1/(1/v_i + 1/tau²))
    b = lambda t: v[0] / (v[0] + t**2)  # noqa: E731
    assert brute.expect(lambda t, m: b(t) * m + (1 - b(t)) * y[0]) == pytest.approx(fit.theta.mean[0], abs=1e-8)
    assert brute.theta_cdf(fit.theta.median[0], y[0], v[0]) == pytest.approx(0.5, abs=1e-6)
    # Bayes factor for tau = 0: p(y | tau = 0)/p(y), the integral over mu at tau = 0 done on the grid
    mu, wm = brute.mu, brute.wm
    log0 = sum(stats.norm.logpdf(yi, mu, math.sqrt(vi)) for yi, vi in zip(y, v))
    if mu_prior is not None:
        log0 = log0 + stats.norm.logpdf(mu, *mu_prior)
    assert math.log(fit.bf_tau0) == pytest.approx(math.log((np.exp(log0) * wm).sum()) - brute.log_z, abs=1e-7)
    if mu_prior is None:
        assert math.isnan(fit.bf_mu0)
    else:  # p(y | mu = 0)/p(y) with the tau integral done directly
        tau, wt = brute.tau, brute.wt
        log_mu0 = PRIORS[prior].logpdf(tau) + sum(stats.norm.logpdf(yi, 0, np.sqrt(vi + tau**2))
                                                  for yi, vi in zip(y, v))
        assert math.log(fit.bf_mu0) == pytest.approx(math.log((np.exp(log_mu0) * wt).sum()) - brute.log_z, abs=1e-7)


def test_tau_quantiles_against_scipy_quad() -> None:
    """The tau CDF at the computed quantiles, by scipy.integrate.quad of p(tau) L(tau) (L integrated over mu by
    quad too), to 1e-9: relative accuracy of the quantiles far below the 1e-6 asked for."""
    y, v = DATASETS["three trials"]
    prior = PRIORS["halfcauchy"]
    fit = mb.bayes(y, v, prior)

    def lik(t: float) -> float:
        half = 40 * math.sqrt(v.max() + t * t)
        return integrate.quad(lambda m: np.exp(_normal_logpdf(y, m, v + t * t).sum()), y.mean() - half,
                              y.mean() + half, points=[y.mean()], epsabs=0, epsrel=1e-13, limit=400)[0]

    def dens(t: float) -> float:
        return float(np.exp(prior.logpdf(t))) * lik(t)

    # the three pieces between the quantiles, each integrated once: the CDFs are partial sums, z the whole sum
    cuts = [0, fit.quantile("tau", 0.025), fit.quantile("tau", 0.975), np.inf]
    pieces = [integrate.quad(dens, a, b, epsabs=0, epsrel=1e-11, limit=400)[0] for a, b in zip(cuts[:-1], cuts[1:])]
    z = sum(pieces)
    assert pieces[0] / z == pytest.approx(0.025, abs=1e-9)
    assert (pieces[0] + pieces[1]) / z == pytest.approx(0.975, abs=1e-9)


# --- bayesmeta's published examples ------------------------------------------------------------------------------


def test_crins_halfnormal_as_printed_in_roever_2020() -> None:
    """Röver (2020) J Stat Softw 93(6), Section 3.3, ``ma01``: normal(0, 4) prior for mu, half-normal(0.5) for tau."""
    fit = mb.bayes(CRINS.yi, CRINS.vi, "halfnormal", 0.5, mu_prior=(0, 4), labels=CRINS.study)
    assert fit.tau.median == pytest.approx(0.3445023, abs=2e-7)
    assert fit.tau.mean == pytest.approx(0.3810562, abs=1e-7)
    assert fit.tau.sd == pytest.approx(0.2593672, abs=1e-7)
    assert fit.tau.mode == pytest.approx(0.2453139, abs=2e-6)  # bayesmeta's optimiser tolerance
    assert (fit.tau.shortest_low, fit.tau.shortest_high) == (0.0, pytest.approx(0.8607193, abs=1e-6))
    assert fit.prob("tau", lower=1) == pytest.approx(0.02097488, abs=1e-8)  # "1 - ma01$pposterior(tau = 1)"
    assert fit.quantile("tau", 0.99) == pytest.approx(1.109186, abs=1e-6)  # "ma01$qposterior(tau.p = 0.99)"
    # mu and the prediction: bayesmeta's mixture approximation ("-1.57 [-2.23, -0.93]", forest plot).
    assert fit.mu.mean == pytest.approx(-1.5764366, abs=2e-5)
    assert fit.mu.sd == pytest.approx(0.3295298, abs=3e-4)
    assert round(fit.mu.median, 2) == -1.57
    assert (round(fit.mu.shortest_low, 2), round(fit.mu.shortest_high, 2)) == (-2.23, -0.93)
    assert fit.prediction.shortest_low == pytest.approx(-2.7661319, abs=2e-3)
    assert fit.prediction.shortest_high == pytest.approx(-0.4072970, abs=2e-3)
    assert fit.theta.mean[0] == pytest.approx(-1.7778965, abs=3e-4)  # ma01$theta, Heffron (2003)
    assert fit.theta.median[1] == pytest.approx(-1.2821722, abs=1e-3)  # Gibelli (2004)
    low, high = fit.interval("theta", study="Heffron (2003)")
    assert (low, high) == (pytest.approx(-2.6561049, abs=1e-3), pytest.approx(-0.9920023, abs=1e-3))


def test_two_randomised_crins_trials_as_printed_in_roever_2020() -> None:
    """Section 3.6, ``ma05`` (k = 2): P(mu < 0) = 0.9974968; Figure 6: mean -1.78 [-2.86, -0.69], prediction
    -1.78 [-3.25, -0.28]."""
    rows = [0, 4]  # Heffron (2003), Spada (2006)
    fit = mb.bayes(CRINS.yi.to_numpy()[rows], CRINS.vi.to_numpy()[rows], "halfnormal", 0.5, mu_prior=(0, 4))
    assert fit.cdf("mu", 0) == pytest.approx(0.9974968, abs=1e-4)  # mixture approximation: exact 0.9975319
    assert [round(x, 2) for x in (fit.mu.median, fit.mu.shortest_low, fit.mu.shortest_high)] == [-1.78, -2.86, -0.69]
    assert [round(x, 2) for x in (fit.prediction.median, fit.prediction.shortest_low,
                                  fit.prediction.shortest_high)] == [-1.78, -3.25, -0.28]


def test_eight_schools_as_printed_in_the_bayesmeta_vignette() -> None:
    """bayesmeta vignette, ``schools.example.1``: half-Cauchy(25) prior for tau, normal(0, 50) for mu."""
    fit = mb.bayes(SCHOOLS_Y, SCHOOLS_V, "halfcauchy", 25, mu_prior=(0, 50))
    tau = fit.tau
    assert (tau.mode, tau.shortest_low) == (0.0, 0.0)
    for got, printed in ((tau.median, 4.758539), (tau.mean, 5.884511), (tau.sd, 4.869904),
                         (tau.shortest_high, 15.165894), (tau.low, 0.2199559), (tau.high, 18.0531718)):
        assert got == pytest.approx(printed, abs=2e-6)
    assert fit.quantile("tau", 0.95) == pytest.approx(15.16589, abs=1e-5)
    mu = fit.mu
    assert mu.mean == pytest.approx(7.985729, abs=1e-3)
    assert mu.sd == pytest.approx(4.995762, abs=2e-3)
    assert mu.median == pytest.approx(7.962961, abs=2e-3)
    assert (mu.shortest_low, mu.shortest_high) == (pytest.approx(-1.823353, abs=5e-3),
                                                   pytest.approx(17.824562, abs=5e-3))
    assert fit.prob("mu", lower=0) == pytest.approx(0.9487521, abs=2e-4)
    assert fit.quantile("mu", 0.95) == pytest.approx(16.11009, abs=5e-3)


def test_eight_schools_with_bayesmetas_improper_uniform_prior() -> None:
    """``schools.example.2`` uses the improper uniform prior on tau > 0; uniform(0, 10^6) is the same posterior up
    to a mass of (10/10^6)^6 beyond 10^6 (L falls as tau^-7 with k = 8)."""
    fit = mb.bayes(SCHOOLS_Y, SCHOOLS_V, "uniform", 1e6)
    for got, printed in ((fit.tau.median, 5.227732), (fit.tau.mean, 6.585992), (fit.tau.sd, 5.685974),
                         (fit.tau.shortest_high, 17.265797)):
        assert got == pytest.approx(printed, abs=2e-6)
    assert fit.mu.mean == pytest.approx(8.092138, abs=1e-3)
    assert fit.mu.median == pytest.approx(8.055861, abs=2e-3)


def test_turner_prior_quantiles_as_printed_in_roever_2020() -> None:
    """Section 3.4: TurnerEtAlPrior("surgical", "pharmacological", "placebo / control")$qprior(c(.025, .5, .975))."""
    prior = mb.tau_prior("turner", outcome="surgical / device related success / failure",
                         comparison="pharmacological vs. placebo / control")
    assert prior.ppf([0.025, 0.5, 0.975]) == pytest.approx([0.06233896, 0.34300852, 1.88734045], abs=1e-8)
    assert "Table IV" in prior.label


def test_rhodes_prior_is_log_t5_on_tau2() -> None:
    prior = mb.tau_prior("rhodes", outcome="mental health outcome", comparison="pharmacological vs. placebo / control")
    z = (2 * np.log(0.3) + 2.99) / 2.16
    assert prior.cdf(0.3) == pytest.approx(stats.t.cdf(z, 5), rel=1e-12)
    assert float(np.exp(prior.logpdf(0.3))) == pytest.approx(stats.t.pdf(z, 5) * 2 / (2.16 * 0.3), rel=1e-12)


# --- edge cases ---------------------------------------------------------------------------------------------------


def test_one_trial_with_flat_mu_prior_leaves_tau_at_its_prior() -> None:
    """k = 1, flat mu prior: L(tau) is constant, so tau's posterior is its prior and mu's the mixture of
    N(y, v + tau²) over it; Bayes factor for tau = 0 is 1."""
    prior = mb.tau_prior("halfnormal", 0.5)
    fit = mb.bayes([0.4], [0.09], prior)
    for p in (0.025, 0.5, 0.975):
        assert fit.quantile("tau", p) == pytest.approx(float(prior.ppf(p)), rel=1e-9)
    assert fit.bf_tau0 == pytest.approx(1.0, rel=1e-12)
    x = 1.1
    expected = integrate.quad(lambda t: float(np.exp(prior.logpdf(t)))
                              * stats.norm.cdf(x, 0.4, math.sqrt(0.09 + t * t)), 0, np.inf, epsabs=0, epsrel=1e-12)[0]
    assert fit.cdf("mu", x) == pytest.approx(expected, abs=1e-10)
    assert fit.mu.median == pytest.approx(0.4, abs=1e-12)


def test_heavy_tailed_prior_with_one_or_two_trials_reports_missing_moments() -> None:
    """Half-Cauchy and flat mu prior: with k = 1 neither E[tau] nor E|mu| exists; with k = 2 E[tau] does, E[tau²]
    does not; quantiles exist throughout."""
    one = mb.bayes([0.4], [0.09], "halfcauchy", 0.5)
    assert one.tau.mean == math.inf and math.isnan(one.mu.mean) and one.mu.sd == math.inf
    assert one.quantile("tau", 0.975) == pytest.approx(0.5 * math.tan(math.pi / 2 * 0.975), rel=1e-8)
    two = mb.bayes([0.4, -0.2], [0.09, 0.04], "halfcauchy", 0.5)
    assert math.isfinite(two.tau.mean) and two.tau.sd == math.inf and math.isfinite(two.mu.mean)
    assert two.mu.sd == math.inf and math.isfinite(two.mu.high)
    proper = mb.bayes([0.4, -0.2], [0.09, 0.04], "halfcauchy", 0.5, mu_prior=(0, 1))
    assert math.isfinite(proper.tau.sd) and math.isfinite(proper.mu.sd)


def test_uniform_prior_keeps_tau_below_its_upper_end() -> None:
    fit = mb.bayes(SCHOOLS_Y / 20, SCHOOLS_V / 400, "uniform", 0.3)
    assert fit.quantile("tau", 0.999) <= 0.3 and fit.tau.shortest_high <= 0.3
    assert fit.prob("tau", lower=0.3) == pytest.approx(0.0, abs=1e-12)


# --- batches -----------------------------------------------------------------------------------------------------


def test_batch_with_mask_equals_single_calls() -> None:
    rng = np.random.default_rng(3)
    v = rng.uniform(0.01, 0.2, (6, 5))
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    mask = np.ones(y.shape, dtype=bool)
    mask[1, 3:] = False
    mask[4, 1:] = False
    batch = mb.bayes(y, v, "halfnormal", 0.5, mu_prior=(0, 1), mask=mask)
    for i in range(len(y)):
        one = mb.bayes(y[i][mask[i]], v[i][mask[i]], "halfnormal", 0.5, mu_prior=(0, 1))
        for name in ("mu", "tau", "prediction"):
            for got, expected in zip(getattr(batch, name), getattr(one, name)):
                assert got[i] == pytest.approx(expected, rel=1e-10, abs=1e-12)
        assert batch.theta.median[i][mask[i]] == pytest.approx(one.theta.median, rel=1e-10)
        assert np.isnan(batch.theta.median[i][~mask[i]]).all()
        assert batch.bf_mu0[i] == pytest.approx(one.bf_mu0, rel=1e-10)
    assert batch.prob("mu", lower=0).shape == (6,)
    assert batch.to_frame().loc[(2, "mu"), "median"] == batch.mu.median[2]


def test_large_batch_starting_from_the_compressed_mixture_equals_single_calls() -> None:
    """A batch large enough that the mixtures' searches start from the compressed mixture (bayes_mixture.COMPRESS)
    gives the numbers of single calls, which start without it; its quantiles and shortest intervals solve their
    equations when checked by the exact mixture."""
    rng = np.random.default_rng(11)
    v = rng.uniform(0.01, 0.2, (150, 4))
    y = rng.normal(0.3, np.sqrt(v + 0.05))
    batch = mb.bayes(y, v, "halfnormal", 0.5)
    assert batch.posterior is not None and batch.posterior.studies._large(3)
    for i in (0, 77, 149):
        one = mb.bayes(y[i], v[i], "halfnormal", 0.5)
        assert not one.posterior.studies._large(3)
        for name in ("mu", "tau", "prediction"):
            for got, expected in zip(getattr(batch, name), getattr(one, name)):
                assert got[i] == pytest.approx(expected, rel=1e-10, abs=1e-12)
        for got, expected in zip(batch.theta, one.theta):
            assert got[i] == pytest.approx(expected, rel=1e-10, abs=1e-12)
    every = range(0, 150, 7)

    def own(name: str, x: np.ndarray, what: str) -> np.ndarray:
        """cdf or pdf of each problem at its own x[i]."""
        return np.array([batch._evaluate(name, None, x[i], what)[i] for i in every])

    for name in ("mu", "prediction"):
        summary = getattr(batch, name)
        for p, x in ((0.5, summary.median), (0.025, summary.low), (0.975, summary.high)):
            assert own(name, x, "cdf") == pytest.approx(p, abs=1e-12)
        low, high = summary.shortest_low, summary.shortest_high
        assert own(name, high, "cdf") - own(name, low, "cdf") == pytest.approx(0.95, abs=1e-12)
        assert own(name, high, "pdf") == pytest.approx(own(name, low, "pdf"), rel=1e-10)


# --- results: API and printing ------------------------------------------------------------------------------------


def test_summary_frame_and_dict() -> None:
    rr = mb.effect_sizes("RR", ai=[30, 6, 12], n1i=[42, 88, 60], ci=[12, 9, 10], n2i=[42, 92, 58])
    fit = mb.bayes(rr.yi, rr.vi, measure="RR", labels=["A", "B", "C"])
    text = fit.summary()
    assert "half-normal(scale=0.5)" in text and "Bayes factor mu = 0: not defined with a flat mu prior" in text
    assert f"RR {math.exp(fit.mu.median):.2f} (posterior median) [95% credible interval" in text
    frame = fit.to_frame()
    assert list(frame.index[:3]) == ["tau", "mu", "prediction"]
    assert frame.loc["theta: B", "median"] == fit.theta.median[1]
    data = fit.to_dict()
    assert "posterior" not in data and data["mu"]["median"] == fit.mu.median and data["bf_mu0"] is None
    assert fit.prob("mu", -0.1, 0.1) == pytest.approx(fit.cdf("mu", 0.1) - fit.cdf("mu", -0.1))
    assert fit.interval("mu", kind="central") == pytest.approx((fit.mu.low, fit.mu.high), rel=1e-12)
    assert fit.interval("tau", level=50)[1] < fit.tau.shortest_high


@pytest.mark.parametrize("call,message", [
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], "halfnormal", -1), "tau_scale: must be a positive finite number"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], "gamma"), "tau_prior: unknown value 'gamma'"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], "halfstudentt"), "df: the half-Student-t prior needs"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], "halfstudentt", df=0), "df: must be a positive finite number"),
    (lambda: mb.bayes([0.1, float("nan")], [0.1, 0.1]), 'study 2: yi: must be finite'),
    (lambda: mb.bayes([0.1, 0.2], [0.1, -0.1]), "study 2: vi: must be positive"),
    (lambda: mb.bayes([[0.1, 0.2]], [[0.1, 0.1]], mask=[[True]]), "mask: shape (1, 1) differs from yi (1, 2)"),
    (lambda: mb.bayes([[0.1, 0.2]], [[0.1, 0.1]], mask=[[False, False]]), "mask: a problem of the batch has no"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], mu_prior=(0, 0)), "mu_prior: sd must be a positive finite number"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], "lognormal_tau2"), "tau_prior: 'lognormal_tau2' needs its parameters"),
    (lambda: mb.tau_prior("turner", outcome="pain"), "comparison: unknown value ''"),
    (lambda: mb.tau_prior("rhodes", outcome="x"), "outcome: unknown value 'x'"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1], level=100), "level: must be in (0, 100) percent"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1]).quantile("mu", 1.5), "p: probabilities must lie in (0, 1)"),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1]).cdf("theta", 0), "study: parameter 'theta' needs study="),
    (lambda: mb.bayes([0.1, 0.2], [0.1, 0.1]).cdf("sigma", 0), "parameter: unknown value 'sigma'"),
])
def test_bad_input_is_one_line(call, message: str) -> None:
    with pytest.raises(mb.InputError) as error:
        call()
    assert message in str(error.value) and "\n" not in str(error.value)


# --- the simulation's Bayesian row and the README ---------------------------------------------------------------


def test_simulate_bayes_row_equals_a_direct_batched_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(simulation_module, "chunk_rows", lambda k: 200)
    v, tau2, mu, n = np.array([0.02, 0.05, 0.1]), 0.08, 0.2, 300
    result = mb.simulate(v, tau2=tau2, mu=mu, n=n, methods=["DL", "BAYES"], tests=["knha"], seed=5)
    assert list(result.table.index) == [("DL", "knha"), ("BAYES", "posterior")]
    hits, widths, pi_hits = [], [], []
    for chunk_seed, size in zip(np.random.SeedSequence(5).spawn(2), [200, 100]):
        rng = np.random.default_rng(chunk_seed)
        theta = mu + np.sqrt(tau2) * rng.standard_normal((size, 3))
        y = theta + np.sqrt(v) * rng.standard_normal((size, 3))
        new = mu + np.sqrt(tau2) * rng.standard_normal(size)
        fit = mb.bayes(y, np.broadcast_to(v, y.shape), "halfnormal", 0.5)
        hits += list((fit.mu.low <= mu) & (mu <= fit.mu.high))
        widths += list(fit.mu.high - fit.mu.low)
        pi_hits += list((fit.prediction.low <= new) & (new <= fit.prediction.high))
    row = result.table.loc[("BAYES", "posterior")]
    assert row["coverage"] == pytest.approx(np.mean(hits), abs=1e-12)
    assert row["mean_width"] == pytest.approx(np.mean(widths), rel=1e-9)
    assert row["pi_coverage"] == pytest.approx(np.mean(pi_hits), abs=1e-12)


def test_readme_bayes_section_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the snippet reads the bundled trials/ as a user in a clone does
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Bayesian random effects"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    namespace: dict = {}
    exec(compile(code.group(1), "README.md", "exec"), namespace)  # noqa: S102 - the project's own README
    assert namespace["fit"].k == 4
