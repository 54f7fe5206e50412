# Reference values for `metabac pool` on a user's spreadsheet (tests/test_cli_spreadsheet.py), computed with R's
# metafor on the BCG vaccine trials (metadat's dat.bcg; Colditz et al. 1994).
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_bcg_cli_reference.R
#
# It writes tests/data/bcg.csv (dat.bcg with escalc's column names: ai = tpos, bi = tneg, ci = cpos, di = cneg;
# study = author and year) and tests/reference/metafor_bcg_cli.json.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

ctrl <- list(threshold = 1e-12, maxiter = 10000)
dat <- dat.bcg
csv <- data.frame(study = paste(dat$author, dat$year), year = dat$year, ai = dat$tpos, bi = dat$tneg,
                  ci = dat$cpos, di = dat$cneg, ablat = dat$ablat, alloc = dat$alloc)
write.csv(csv, file.path("tests", "data", "bcg.csv"), row.names = FALSE, quote = FALSE)

fit <- rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat, method = "REML", control = ctrl)
by_alloc <- rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat, method = "REML",
                mods = ~ factor(alloc), control = ctrl)
by_ablat <- rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat, method = "REML",
                mods = ~ ablat, control = ctrl)
groups <- lapply(split(dat, dat$alloc), function(d)
  rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d, method = "REML", control = ctrl))
mh <- rma.mh(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)
peto <- rma.peto(ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat)

num <- function(x) as.numeric(x)
reference <- list(
  generator = paste("metafor", packageVersion("metafor"), "metadat", packageVersion("metadat"),
                    "control threshold 1e-12"),
  pool = list(estimate = num(fit$beta), se = fit$se, tau2 = fit$tau2, ci_low = fit$ci.lb, ci_high = fit$ci.ub,
              q = fit$QE),
  subgroups = lapply(groups, function(g) list(k = g$k, estimate = num(g$beta), se = g$se, tau2 = g$tau2)),
  alloc_qm = list(qm = by_alloc$QM, qm_pvalue = by_alloc$QMp, df = by_alloc$QMdf[1]),
  ablat = list(intercept = num(by_ablat$beta[1]), slope = num(by_ablat$beta[2]), slope_se = by_ablat$se[2],
               slope_pvalue = by_ablat$pval[2], tau2 = by_ablat$tau2, qm = by_ablat$QM),
  mantel_haenszel = list(estimate = num(mh$beta), se = mh$se),
  peto = list(estimate = num(peto$beta), se = peto$se)
)
writeLines(toJSON(reference, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path("tests", "reference", "metafor_bcg_cli.json"))
