"""The posterior of the normal-normal hierarchical model, computed by one-dimensional quadrature over tau.

Model: y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau²), priors p(tau) (:mod:`metabac.bayes_priors`) and, independent of
it, mu flat (p(mu) = 1) or N(m0, s0²). Given tau, with w_i = 1/(v_i + tau²) and w0 = 1/s0² (0 when flat):

    mu | tau, y ~ N(mu_hat, 1/W),   W = w0 + Σ w_i,   mu_hat = (w0·m0 + Σ w_i y_i)/W

and the likelihood of tau with mu integrated out (Röver 2020, eq. 11 and 14),

    log L(tau) = ½ (Σ log w_i − log W − Q) − (k − 1)/2 log 2π  [+ ½ (log w0 − log 2π) for the normal prior],
    Q = Σ w_i (y_i − mu_hat)² + w0 (m0 − mu_hat)²,

which for the flat prior is the restricted (REML) likelihood. The marginal posterior of tau is p(tau)·L(tau)/Z with
Z = ∫ p(tau) L(tau) dtau, the marginal likelihood. Every other quantity is a normal mixture over that posterior:
mu (above), the effect of a new trial theta_new | tau, y ~ N(mu_hat, 1/W + tau²), and each trial's effect with
b_i = v_i/(v_i + tau²): theta_i | tau, y ~ N(b_i mu_hat + (1 − b_i) y_i, (1 − b_i) v_i + b_i²/W)
(Gelman et al., Bayesian Data Analysis, 3rd ed., Section 5.5).

Quadrature, in u = log tau, for a batch of problems at once:

1. tau_a = 10^-6·min(√v_i): below it L(tau) = L(0)(1 + O(10^-12)), so the posterior there is the prior times L(0);
   its mass F_prior(tau_a)·L(0) is one node at tau = 0, and CDF and quantiles below tau_a follow the prior's exactly.
2. T: the first tau_a·10^j where the prior's upper tail times a bound of L beyond it (L falls as tau^-(k−1), or
   tau^-k with the normal prior; for tau >= T, L <= (2π)^-(k−1)/2 T^-k √((max v + T²)/k), resp. (2π)^-k/2 T^-k)
   is below 10^-17 of the mass; the tail mass sf_prior(T)·L(T) is one node at tau = T (exact when L is constant,
   as for k = 1 with a flat mu prior, where the posterior of tau is its prior).
3. The bulk: a scan of 128 points on [log tau_a, log T] places 24 panels, half by posterior mass, half evenly in u,
   each integrated with 16-point Gauss-Legendre; the tau CDF at any point adds the panels below it and a
   Gauss-Legendre integral over the part of its panel.

Quantiles of tau solve CDF = p by safeguarded Newton steps within the bracketing panel, from the CDF interpolated
between the nodes; its mode and shortest interval come from :mod:`metabac.bayes_search` (the shortest interval is
[0, Q(level)] when the density at 0 is the larger). The mixtures over these nodes (mu, prediction, theta_i) are
:class:`metabac.bayes_mixture.NormalMixture`. ``tests/test_bayes.py`` checks all against scipy's adaptive quadrature
and a brute-force two-dimensional integral.

References
----------
Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package. Journal of Statistical Software
93(6):1-51.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray
from scipy import special

from metabac.bayes_priors import TauPrior
from metabac.bayes_search import mode, shortest_interval, solve_cdf

Array = NDArray[np.float64]
LOG_2PI = math.log(2 * math.pi)
PANELS, NODES, SCAN = 24, 16, 128
GL_X, GL_W = np.polynomial.legendre.leggauss(NODES)


@dataclass(frozen=True)
class Model:
    """A batch of B problems: y, v, mask of shape (B, K); the priors."""

    y: Array
    v: Array
    mask: NDArray[np.bool_]
    prior: TauPrior
    mu_mean: float | None = None
    mu_sd: float | None = None

    @cached_property
    def k(self) -> NDArray[np.int64]:
        return self.mask.sum(axis=1)

    @property
    def flat(self) -> bool:
        return self.mu_sd is None

    @property
    def decay(self) -> Array:
        """L(tau) falls as tau^-decay for large tau: k − 1 with the flat mu prior, k with the normal one."""
        return np.asarray(self.k - 1 if self.flat else self.k, dtype=np.float64)

    def conditional(self, tau: Array) -> tuple[Array, Array, Array]:
        """mu_hat, 1/W and log L at tau of shape (B, M), each (B, M)."""
        t2 = np.square(tau)[..., None]
        w = np.where(self.mask[:, None, :], 1 / (self.v[:, None, :] + t2), 0.0)
        w0 = 0.0 if self.mu_sd is None else 1 / self.mu_sd**2
        m0 = 0.0 if self.mu_mean is None else self.mu_mean
        big_w = w0 + w.sum(axis=-1)
        mu_hat = (w0 * m0 + np.einsum("bmk,bk->bm", w, self.y)) / big_w
        resid = self.y[:, None, :] - mu_hat[..., None]
        q = np.einsum("bmk,bmk->bm", w, resid**2) + w0 * (m0 - mu_hat) ** 2
        log_det = np.where(self.mask[:, None, :], np.log(self.v[:, None, :] + t2), 0.0).sum(axis=-1)
        log_lik = -0.5 * (log_det + np.log(big_w) + q) - 0.5 * (self.k[:, None] - 1) * LOG_2PI
        if not self.flat:
            log_lik += 0.5 * (math.log(w0) - LOG_2PI)
        return mu_hat, 1 / big_w, log_lik

    def log_density_u(self, u: Array) -> Array:
        """log of the unnormalised posterior density of u = log tau: log p(e^u) + u + log L(e^u)."""
        tau = np.exp(u)
        return self.prior.logpdf(tau) + u + self.conditional(tau)[2]

    def theta(self, tau: Array, mu_hat: Array, var_hat: Array) -> tuple[Array, Array]:
        """Mean and variance of each theta_i given tau (B, M, K)."""
        b = self.v[:, None, :] / (self.v[:, None, :] + np.square(tau)[..., None])
        mean = b * mu_hat[..., None] + (1 - b) * self.y[:, None, :]
        return mean, (1 - b) * self.v[:, None, :] + b**2 * var_hat[..., None]


def _interp_rows(x: Array, xp: Array, fp: Array) -> Array:
    """np.interp along each row: x (B, m), increasing xp and fp (B, n)."""
    idx = np.clip((xp[:, None, :] <= x[:, :, None]).sum(axis=-1) - 1, 0, xp.shape[1] - 2)
    x0, x1 = np.take_along_axis(xp, idx, 1), np.take_along_axis(xp, idx + 1, 1)
    f0, f1 = np.take_along_axis(fp, idx, 1), np.take_along_axis(fp, idx + 1, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(x1 > x0, (x - x0) / (x1 - x0), 0.0)
    return f0 + np.clip(share, 0, 1) * (f1 - f0)


def _gauss_legendre(lo: Array, hi: Array) -> tuple[Array, Array]:
    """Nodes and weights of the Gauss-Legendre rule on [lo, hi] (arrays of any shape; one axis is appended)."""
    half = (hi - lo)[..., None] / 2
    return (lo + hi)[..., None] / 2 + half * GL_X, half * GL_W


class TauPosterior:
    """The marginal posterior of tau for a batch, with the quadrature nodes every mixture uses.

    ``tau`` and ``weight`` (B, N): node 0 is the mass below tau_a (at tau = 0), node N − 1 the mass beyond T (at
    tau = T), the others Gauss-Legendre nodes of the panels; weights sum to 1.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        prior = model.prior
        sd_min = np.sqrt(np.where(model.mask, model.v, np.inf).min(axis=1))
        self.tau_a = np.minimum(1e-6 * sd_min, 1e-3 * prior.upper)
        self.tau_t = self._upper_limit()
        u_a, u_t = np.log(self.tau_a), np.log(self.tau_t)
        self.bounds = self._panels(u_a, u_t)
        u, w = _gauss_legendre(self.bounds[:, :-1], self.bounds[:, 1:])
        batch = len(u)
        u, w = u.reshape(batch, -1), w.reshape(batch, -1)
        self.tau = np.column_stack([np.zeros(batch), np.exp(u), self.tau_t])
        self.mu_hat, self.var_hat, self.log_lik = model.conditional(self.tau)
        with np.errstate(divide="ignore"):
            log_lo = np.log(prior.cdf(self.tau_a)) + self.log_lik[:, 0]
            log_hi = np.log(prior.sf(self.tau_t)) + self.log_lik[:, -1]
        log_node = np.log(w) + (prior.logpdf(self.tau[:, 1:-1]) + u + self.log_lik[:, 1:-1])
        log_all = np.column_stack([log_lo, log_node, log_hi])
        self.log_z = special.logsumexp(log_all, axis=1)
        self.weight = np.exp(log_all - self.log_z[:, None])
        self.mass_lo, self.mass_hi = self.weight[:, 0], self.weight[:, -1]
        panel_mass = self.weight[:, 1:-1].reshape(batch, PANELS, NODES).sum(axis=-1)
        self.cum = self.mass_lo[:, None] + np.column_stack([np.zeros(batch), np.cumsum(panel_mass, axis=1)])

    def _upper_limit(self) -> Array:
        """T (see the module docstring), at most 10^120·tau_a; never beyond the prior's support."""
        model = self.model
        ladder = self.tau_a[:, None] * 10.0 ** np.arange(1, 121)
        log_f = model.log_density_u(np.log(ladder))
        log_mass = special.logsumexp(log_f, axis=1) + math.log(math.log(10))
        k = model.k[:, None]
        log_t = np.log(ladder)
        vmax = np.where(model.mask, model.v, 0).max(axis=1)[:, None]
        if model.flat:
            log_bound = -0.5 * (k - 1) * LOG_2PI - k * log_t + 0.5 * np.log((vmax + ladder**2) / k)
        else:
            log_bound = -0.5 * k * LOG_2PI - k * log_t
        with np.errstate(divide="ignore"):
            tail = np.log(model.prior.sf(ladder)) + log_bound
        ok = tail < log_mass[:, None] + math.log(1e-17)
        first = np.where(ok.any(axis=1), ok.argmax(axis=1), ladder.shape[1] - 1)
        return np.minimum(ladder[np.arange(len(ladder)), first], model.prior.upper)

    def _panels(self, u_a: Array, u_t: Array) -> Array:
        """Panel boundaries (B, PANELS + 1): half of them by posterior mass in a scan, half evenly in u."""
        share = np.linspace(0, 1, SCAN)
        u = u_a[:, None] + share * (u_t - u_a)[:, None]
        log_f = self.model.log_density_u(u)
        f = np.exp(log_f - log_f.max(axis=1, keepdims=True))
        cells = np.cumsum((f[:, 1:] + f[:, :-1]) / 2, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mass = np.column_stack([np.zeros(len(u)), cells / cells[:, -1:]])
        mass = np.where(np.isfinite(mass), mass, share)
        blend = (mass + share) / 2
        bounds = _interp_rows(np.tile(np.linspace(0, 1, PANELS + 1), (len(u), 1)), blend, u)
        bounds[:, 0], bounds[:, -1] = u_a, u_t
        return np.maximum.accumulate(bounds, axis=1)

    # --- the marginal distribution of tau ------------------------------------------------------------------------

    def _log_f(self, tau: Array) -> Array:
        """log p(tau) + log L(tau): the unnormalised log posterior density of tau."""
        return self.model.prior.logpdf(tau) + self.model.conditional(tau)[2]

    def pdf(self, tau: Array) -> Array:
        """Posterior density of tau at tau (B, m)."""
        return np.exp(self._log_f(tau) - self.log_z[:, None])

    def dlogpdf(self, tau: Array) -> Array:
        """d/dtau log f(tau), by a central difference (step 10^-6 tau; relative error about 10^-12)."""
        return self.cdf_pdf_dlogpdf(tau, with_cdf=False)[2]

    def cdf(self, tau: Array) -> Array:
        """Posterior P(tau' <= tau) at tau (B, m)."""
        return self._cdf_and_log_f(tau, tau[..., :0])[0]

    def cdf_pdf(self, tau: Array) -> tuple[Array, Array]:
        """CDF and density at tau (B, m), from one evaluation of the likelihood."""
        cdf, log_f = self._cdf_and_log_f(tau, tau)
        return cdf, np.exp(log_f[..., 0] - self.log_z[:, None])

    def cdf_pdf_dlogpdf(self, tau: Array, with_cdf: bool = True) -> tuple[Array, Array, Array]:
        """CDF, density and d/dtau log density (the central difference of :meth:`dlogpdf`) at tau (B, m), from one
        evaluation of the likelihood; the CDF NaN unless ``with_cdf``."""
        h = 1e-6 * tau
        points = np.stack([tau, tau + h, tau - h], axis=-1)
        if with_cdf:
            cdf, log_f = self._cdf_and_log_f(tau, points)
        else:
            cdf, log_f = np.full(tau.shape, np.nan), self._log_f(points.reshape(len(tau), -1)).reshape(points.shape)
        return cdf, np.exp(log_f[..., 0] - self.log_z[:, None]), (log_f[..., 1] - log_f[..., 2]) / (2 * h)

    def _cdf_and_log_f(self, tau: Array, extra: Array) -> tuple[Array, Array]:
        """The CDF at tau (B, m) and log f at ``extra`` (B, m, e) (:meth:`_log_f`), in one evaluation."""
        prior, t = self.model.prior, np.maximum(tau, 0.0)
        a, big_t = self.tau_a[:, None], self.tau_t[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            below = np.where(prior.cdf(a) > 0, self.mass_lo[:, None] * prior.cdf(np.minimum(t, a)) / prior.cdf(a), 0)
            beyond = np.where(prior.sf(big_t) > 0, self.mass_hi[:, None] * prior.sf(np.maximum(t, big_t))
                              / prior.sf(big_t), 0)
            u = np.log(np.clip(t, a, big_t))
        panel = np.clip((self.bounds[:, None, :] <= u[..., None]).sum(axis=-1) - 1, 0, PANELS - 1)
        start = np.take_along_axis(self.bounds, panel, 1)
        nodes, w = _gauss_legendre(start, u)
        batch, m = u.shape
        extra = extra.reshape(batch, m, -1)
        log_f = self._log_f(np.concatenate([np.exp(nodes), extra], axis=-1).reshape(batch, -1))
        log_f = log_f.reshape(batch, m, NODES + extra.shape[-1])
        part = np.exp(log_f[..., :NODES] + nodes - self.log_z[:, None, None])
        inside = np.take_along_axis(self.cum, panel, 1) + (part * w).sum(axis=-1)
        return np.where(t <= a, below, np.where(t >= big_t, 1 - beyond, inside)), log_f[..., NODES:]

    @cached_property
    def _knots(self) -> tuple[Array, Array]:
        """u = log tau and the CDF at the panel boundaries (exact) and at the nodes (the mass below the node plus
        half its own weight: within about a node's weight of the CDF), increasing; for starting points."""
        batch = len(self.tau)
        w = self.weight[:, 1:-1].reshape(batch, PANELS, NODES)
        at_nodes = self.cum[:, :-1, None] + np.cumsum(w, axis=-1) - w / 2
        u_nodes = np.log(self.tau[:, 1:-1]).reshape(batch, PANELS, NODES)

        def knots(at_bounds: Array, inside: Array) -> Array:
            both = np.concatenate([at_bounds[:, :-1, None], inside], axis=-1).reshape(batch, -1)
            return np.column_stack([both, at_bounds[:, -1]])

        return knots(self.bounds, u_nodes), knots(self.cum, at_nodes)

    def quantile(self, p: Array) -> Array:
        """Posterior quantiles of tau for probabilities p (B, m): closed form from the prior in the two end
        pieces, Newton's method within the bracketing panel otherwise, from the interpolation of the CDF between the
        nodes."""
        prior = self.model.prior
        lo_mass, hi_mass = self.mass_lo[:, None], self.mass_hi[:, None]
        a, big_t = self.tau_a[:, None], self.tau_t[:, None]
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            in_lo = prior.ppf(np.clip(p / lo_mass * prior.cdf(a), 0, 1))
            in_hi = prior.ppf(np.clip(1 - (1 - p) / hi_mass * prior.sf(big_t), 0, 1))
            in_hi = np.where(hi_mass > 0, in_hi, np.inf)
        panel = np.clip((self.cum[:, None, :] <= p[..., None]).sum(axis=-1) - 1, 0, PANELS - 1)
        lo = np.exp(np.take_along_axis(self.bounds, panel, 1))
        hi = np.exp(np.take_along_axis(self.bounds, panel + 1, 1))
        u, cdf = self._knots
        start = np.clip(np.exp(_interp_rows(p, cdf, u)), lo, hi)
        inside = solve_cdf(self.cdf_pdf, p, lo, hi, start)
        return np.where(p <= 0, 0.0, np.where(p <= lo_mass, in_lo, np.where(p >= 1 - hi_mass, in_hi, inside)))

    def mode(self, upper: Array) -> Array:
        """The posterior mode of tau, searched on [0, upper] (B,)."""
        return mode(self, np.zeros_like(upper), upper, True)

    def shortest_interval(self, level: float, start: tuple[Array, Array], peak: Array) -> tuple[Array, Array]:
        """The shortest interval holding ``level`` (a fraction), from ``start`` (the equal-tailed one; (B,) each)
        with the mode ``peak``; [0, Q(level)] where the density at 0 is the larger (see bayes_search)."""
        return shortest_interval(self, level, start, peak, True)

    def moment(self, r: int) -> Array:
        """E[tau^r] by the quadrature (inf where the prior's tail makes it infinite)."""
        finite = np.array([self.model.prior.moment_is_finite(r, d) for d in self.model.decay])
        return np.where(finite, (self.weight * self.tau**r).sum(axis=1), np.inf)
