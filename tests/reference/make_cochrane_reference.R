# Reference values for tests/test_cochrane.py: Cochrane's current random-effects methods (REML tau^2, Q-profile
# interval for tau^2 and I^2, Hartung-Knapp-Sidik-Jonkman interval, t prediction interval) and the modified
# Hartung-Knapp interval (test = "adhoc": variance factor max(1, q); Roever et al. 2015), from metafor.
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_cochrane_reference.R
#
# It writes tests/reference/metafor_cochrane.json. Needs r-cran-metafor, r-cran-metadat and r-cran-jsonlite.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

out_path <- file.path("tests", "reference", "metafor_cochrane.json")
tight <- list(threshold = 1e-13, maxiter = 10000, tol = 1e-15)

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
datasets <- list(
  # the bundled review's abstinence and dropout analyses (trial records, end of treatment)
  abstinence = as.list(escalc("RR", ai = c(14, 30, 6, 15), n1i = c(20, 42, 79, 22), ci = c(4, 12, 9, 5),
                              n2i = c(19, 42, 89, 21))[, c("yi", "vi")]),
  bcg = list(yi = as.numeric(bcg$yi), vi = as.numeric(bcg$vi)),
  # homogeneous: q < 1, where the modified Hartung-Knapp interval is wider than the plain one
  homogeneous = list(yi = c(0.10, 0.12, 0.09, 0.11, 0.13), vi = c(0.04, 0.05, 0.03, 0.06, 0.05))
)

cases <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  yi <- as.numeric(d$yi)
  vi <- as.numeric(d$vi)
  for (test in c("knha", "adhoc")) {
    fit <- rma(yi, vi, method = "REML", test = test, control = tight)
    pred <- predict(fit)
    ci <- confint(fit, control = list(tol = 1e-14))
    cases[[length(cases) + 1]] <- list(
      name = name, test = test, call = sprintf("rma(yi, vi, method = 'REML', test = '%s')", test),
      input = list(yi = yi, vi = vi),
      expected = list(
        estimate = as.numeric(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub,
        pvalue = fit$pval, statistic = fit$zval, df = fit$ddf, tau2 = fit$tau2, i2 = fit$I2,
        pi_low = pred$pi.lb, pi_high = pred$pi.ub,
        tau2_ci = as.numeric(ci$random["tau^2", c("ci.lb", "ci.ub")]),
        i2_ci = as.numeric(ci$random["I^2(%)", c("ci.lb", "ci.ub")])
      )
    )
  }
}

writeLines(toJSON(list(metafor = as.character(packageVersion("metafor")), cases = cases), digits = NA,
                  auto_unbox = TRUE, pretty = TRUE), out_path)
cat("wrote", length(cases), "cases to", out_path, "\n")
