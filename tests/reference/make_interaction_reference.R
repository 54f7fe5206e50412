# Reference values for metabac.interaction.pool_interactions (the "deft" approach of Fisher et al.,
# BMJ 2017;356:j573), computed with R's metafor.
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_interaction_reference.R
#
# It writes tests/reference/metafor_interaction.json (or the file named by its argument); each fit carries the R call
# that made it ("r_call"). The inputs are invented subgroup results (risk
# ratios with 95% CIs in women and in men, four trials), the same numbers tests/test_interaction.py
# writes into trial records. Per trial: yi = log(RR women) - log(RR men), vi = the sum of the subgroup
# variances, each SE = (log(upper) - log(lower)) / (2 * qnorm(0.975)); then rma(yi, vi).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

subgroups <- data.frame(
  trial   = c("t1", "t2", "t3", "t4"),
  rr_w    = c(1.80, 1.40, 2.50, 0.90), lo_w = c(1.10, 0.80, 1.30, 0.55), hi_w = c(2.95, 2.45, 4.81, 1.47),
  rr_m    = c(1.20, 1.35, 1.10, 1.25), lo_m = c(0.90, 1.05, 0.75, 1.02), hi_m = c(1.60, 1.74, 1.61, 1.53)
)
z <- qnorm(0.975)
se <- function(lo, hi) (log(hi) - log(lo)) / (2 * z)
yi <- log(subgroups$rr_w) - log(subgroups$rr_m)
vi <- se(subgroups$lo_w, subgroups$hi_w)^2 + se(subgroups$lo_m, subgroups$hi_m)^2

fit_for <- function(method) {
  call <- sprintf("rma(yi, vi, method = \"%s\", control = list(threshold = 1e-12, maxiter = 10000))", method)
  fit <- eval(parse(text = call))   # the text stored as r_call is the call that ran
  list(method = method, r_call = call, estimate = as.numeric(fit$beta), se = fit$se, ci_lower = fit$ci.lb,
       ci_upper = fit$ci.ub, pvalue = fit$pval, tau2 = fit$tau2, i2 = fit$I2)
}

out <- list(
  meta = list(metafor_version = as.character(packageVersion("metafor")), r_version = R.version.string,
              script = "tests/reference/make_interaction_reference.R"),
  subgroups = subgroups, yi = yi, vi = vi,
  fits = lapply(c("REML", "DL", "EE"), fit_for)
)
args <- commandArgs(trailingOnly = TRUE)
write_json(out, if (length(args) > 0) args[1] else file.path("tests", "reference", "metafor_interaction.json"),
           digits = NA, auto_unbox = TRUE, pretty = TRUE)
