# Reference values for tests/test_report_data.py: the BCG vaccine trials (metadat's dat.bcg), as issue 18's
# `metabac report bcg.csv --measure RR --method REML --by alloc --mods ablat` must reproduce them.
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_bcg_report_reference.R
#
# It writes tests/reference/metafor_bcg_report.json and tests/data/bcg.csv (the data as a spreadsheet).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

d <- dat.bcg
write.csv(data.frame(study = paste(d$trial, d$author, d$year), year = d$year, ai = d$tpos, bi = d$tneg,
                     ci = d$cpos, di = d$cneg, ablat = d$ablat, alloc = d$alloc),
          file.path("tests", "data", "bcg.csv"), row.names = FALSE, eol = "\n")
tight <- list(threshold = 1e-13, maxiter = 10000)
cases <- list()
for (test in c("z", "knha")) {
  overall <- rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d, method = "REML",
                 test = test, control = tight)
  alloc <- rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d, method = "REML",
               mods = ~ factor(alloc), test = test, control = tight)
  ablat <- rma(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = d, method = "REML",
               mods = ~ ablat, test = test, control = tight)
  cases[[test]] <- list(
    call = sprintf("rma(measure = 'RR', ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg, method = 'REML', test = '%s')", test),
    estimate = as.numeric(overall$beta), ci_low = overall$ci.lb, ci_high = overall$ci.ub, tau2 = overall$tau2,
    alloc_qm = alloc$QM, alloc_qm_p = alloc$QMp,
    ablat_slope = as.numeric(ablat$beta[2]), ablat_se = ablat$se[2], ablat_p = ablat$pval[2],
    ablat_qm = ablat$QM, ablat_tau2 = ablat$tau2)
}
writeLines(toJSON(list(metafor = as.character(packageVersion("metafor")), cases = cases), digits = NA,
                  auto_unbox = TRUE, pretty = TRUE), file.path("tests", "reference", "metafor_bcg_report.json"))
