# Reference values for `metabac pool` on a user's spreadsheet (tests/test_cli_spreadsheet.py), computed with R's
# metafor on the BCG vaccine trials (metadat's dat.bcg; Colditz et al. 1994).
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_bcg_cli_reference.R
#
# It writes tests/data/bcg.csv (dat.bcg with escalc's column names: ai = tpos, bi = tneg, ci = cpos, di = cneg;
# study = author and year) and tests/reference/metafor_bcg_cli.json: dat.bcg's four counts as R holds them ("dat_bcg",
# which tests/test_cli_spreadsheet.py compares with the CSV) and the results, each with the R call that made it
# ("r_call", evaluated from that text).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

control <- "list(threshold = 1e-12, maxiter = 10000)"
dat <- dat.bcg
csv <- data.frame(study = paste(dat$author, dat$year), year = dat$year, ai = dat$tpos, bi = dat$tneg,
                  ci = dat$cpos, di = dat$cneg, ablat = dat$ablat, alloc = dat$alloc)
write.csv(csv, file.path("tests", "data", "bcg.csv"), row.names = FALSE, quote = FALSE)

counts <- "ai = tpos, bi = tneg, ci = cpos, di = cneg"
rma_call <- function(data, more = "") sprintf("rma(measure = \"RR\", %s, data = %s, method = \"REML\"%s, control = %s)",
                                              counts, data, more, control)
run <- function(call) eval(parse(text = call))   # the text stored as r_call is the call that ran

calls <- list(pool = rma_call("dat"), alloc = rma_call("dat", ", mods = ~ factor(alloc)"),
              ablat = rma_call("dat", ", mods = ~ ablat"),
              mh = sprintf("rma.mh(measure = \"RR\", %s, data = dat)", counts),
              peto = sprintf("rma.peto(%s, data = dat)", counts))
fit <- run(calls$pool)
by_alloc <- run(calls$alloc)
by_ablat <- run(calls$ablat)
mh <- run(calls$mh)
peto <- run(calls$peto)
group <- function(level) {
  call <- rma_call(sprintf("dat[dat$alloc == \"%s\", ]", level))
  g <- run(call)
  list(r_call = call, k = g$k, estimate = num(g$beta), se = g$se, tau2 = g$tau2)
}

num <- function(x) as.numeric(x)
reference <- list(
  generator = paste("metafor", packageVersion("metafor"), "metadat", packageVersion("metadat"),
                    "control threshold 1e-12"),
  dat_bcg = list(tpos = dat$tpos, tneg = dat$tneg, cpos = dat$cpos, cneg = dat$cneg),
  pool = list(r_call = calls$pool, estimate = num(fit$beta), se = fit$se, tau2 = fit$tau2, ci_low = fit$ci.lb,
              ci_high = fit$ci.ub, q = fit$QE),
  subgroups = sapply(sort(unique(dat$alloc)), group, simplify = FALSE),
  alloc_qm = list(r_call = calls$alloc, qm = by_alloc$QM, qm_pvalue = by_alloc$QMp, df = by_alloc$QMdf[1]),
  ablat = list(r_call = calls$ablat, intercept = num(by_ablat$beta[1]), slope = num(by_ablat$beta[2]),
               slope_se = by_ablat$se[2], slope_pvalue = by_ablat$pval[2], tau2 = by_ablat$tau2, qm = by_ablat$QM),
  mantel_haenszel = list(r_call = calls$mh, estimate = num(mh$beta), se = mh$se),
  peto = list(r_call = calls$peto, estimate = num(peto$beta), se = peto$se)
)
writeLines(toJSON(reference, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           file.path("tests", "reference", "metafor_bcg_cli.json"))
