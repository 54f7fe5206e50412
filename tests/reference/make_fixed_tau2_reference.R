# Reference values for tests/test_fixed_tau2.py: a random-effects model with tau^2 given rather than estimated,
# metafor's rma(yi, vi, tau2 = value), under the Wald (z) and Hartung-Knapp (knha) tests, with its prediction
# interval.
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_fixed_tau2_reference.R
#
# It writes tests/reference/metafor_fixed_tau2.json. Needs r-cran-metafor, r-cran-metadat and r-cran-jsonlite.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

out_path <- file.path("tests", "reference", "metafor_fixed_tau2.json")

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets <- list(
  # the bundled review's abstinence analysis (trial records, end of treatment)
  abstinence = as.list(escalc("RR", ai = c(14, 30, 6, 15), n1i = c(20, 42, 79, 22), ci = c(4, 12, 9, 5),
                              n2i = c(19, 42, 89, 21))[, c("yi", "vi")]),
  bcg = list(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi))
)

cases <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  yi <- as.numeric(d$yi)
  vi <- as.numeric(d$vi)
  for (tau2 in c(0, 0.05, 0.5)) {
    for (test in c("z", "knha")) {
      fit <- rma(yi, vi, tau2 = tau2, test = test)
      pred <- predict(fit)
      cases[[length(cases) + 1]] <- list(
        name = name, tau2 = tau2, test = test,
        call = sprintf("rma(yi, vi, tau2 = %s, test = '%s')", format(tau2), test),
        input = list(yi = yi, vi = vi),
        expected = list(
          estimate = as.numeric(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub,
          pvalue = fit$pval, statistic = fit$zval, tau2 = fit$tau2, q = fit$QE, q_pvalue = fit$QEp,
          i2 = fit$I2, h2 = fit$H2, pi_low = pred$pi.lb, pi_high = pred$pi.ub
        )
      )
    }
  }
}

writeLines(toJSON(list(metafor = as.character(packageVersion("metafor")), cases = cases), auto_unbox = TRUE,
                  digits = NA, pretty = TRUE), out_path)
