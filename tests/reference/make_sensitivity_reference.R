# Reference values for metabac.sensitivity and metabac.bias, computed with R's metafor
# (and, where installed, R's meta for Harbord's and Peters' tests as meta implements them).
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_sensitivity_reference.R
#
# It writes tests/reference/metafor_sensitivity.json. See tests/reference/README_sensitivity.md.
# Needs the Debian packages r-cran-metafor, r-cran-metadat and r-cran-jsonlite; the meta
# package is optional (its cases are left out, and meta$meta_version is null, without it).

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})
have_meta <- suppressWarnings(suppressPackageStartupMessages(requireNamespace("meta", quietly = TRUE)))

args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args) > 0) args[1] else file.path("tests", "reference", "metafor_sensitivity.json")
source(file.path("tests", "reference", "write_cases.R"))

# Tight convergence control for every iterative estimator. For rma.uni, 'threshold' and
# 'maxiter' govern the Fisher scoring of REML/ML/EB; 'tol' governs uniroot (PM/PMM/GENQM,
# and permutest's CI search). influence(), leave1out(), cumul(), baujat(), gosh() and
# regtest() refit with the model's own control; trimfill() does not, so it is passed
# explicitly through trimfill(..., control = ctrl).
# threshold = 1e-12 is an absolute change in tau^2: dat.normand1999 has tau^2 (REML) of about 685,
# whose spacing between doubles is about 1.1e-13, so 1e-13 and below never converge there; for
# dat.bcg 1e-12 and 1e-15 agree to about 2e-15 relative.
ctrl <- list(threshold = 1e-12, maxiter = 10000, tol = 1e-15)

# Keep R's default RNG, recorded in the meta block, for permutest.
RNGkind("Mersenne-Twister", "Inversion", "Rejection")
perm_seed <- 20240601L
perm_iter <- 10000L

num <- function(x) {
  x <- as.numeric(x)
  x
}

# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------

bcg_raw <- dat.bcg
bcg_rr <- escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg_raw)
bcg_or <- escalc("OR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = bcg_raw)

bcg_input <- function(d) {
  list(
    yi = num(d$yi), vi = num(d$vi),
    ai = num(d$tpos), bi = num(d$tneg), ci = num(d$cpos), di = num(d$cneg),
    n1i = num(d$tpos + d$tneg), n2i = num(d$cpos + d$cneg),
    year = num(d$year), ablat = num(d$ablat)
  )
}
bcg_label <- paste(dat.bcg$author, dat.bcg$year)

norm_raw <- dat.normand1999
normand <- escalc("MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
                  data = norm_raw)
normand_input <- function(d) {
  list(
    yi = num(d$yi), vi = num(d$vi),
    m1i = num(d$m1i), sd1i = num(d$sd1i), n1i = num(d$n1i),
    m2i = num(d$m2i), sd2i = num(d$sd2i), n2i = num(d$n2i)
  )
}
normand_label <- as.character(dat.normand1999$source)

# Third binary dataset: magnesium trials (Egger et al. 2001), all 16 trials including ISIS-4.
# Trial 8 (Bertschat 1989) has a zero cell (ai = 0): escalc's default adds 1/2 to every cell of
# that trial only (add = 1/2, to = "only0"), and so does meta::metabin (incr = 0.5).
eg_raw <- dat.egger2001
egger <- escalc("OR", ai = ai, n1i = n1i, ci = ci, n2i = n2i, data = eg_raw)
egger_input <- function(d) {
  list(
    yi = num(d$yi), vi = num(d$vi),
    ai = num(d$ai), bi = num(d$n1i - d$ai), ci = num(d$ci), di = num(d$n2i - d$ci),
    n1i = num(d$n1i), n2i = num(d$n2i), year = num(d$year)
  )
}
egger_label <- paste(dat.egger2001$study, dat.egger2001$year)

datasets <- list(
  bcg = list(data = bcg_rr, measure = "RR", input = bcg_input, label = bcg_label,
             source = "metadat::dat.bcg; escalc('RR', ai=tpos, bi=tneg, ci=cpos, di=cneg)"),
  bcg_or = list(data = bcg_or, measure = "OR", input = bcg_input, label = bcg_label,
                source = "metadat::dat.bcg; escalc('OR', ai=tpos, bi=tneg, ci=cpos, di=cneg)"),
  normand = list(data = normand, measure = "MD", input = normand_input, label = normand_label,
                 source = "metadat::dat.normand1999; escalc('MD', m1i, sd1i, n1i, m2i, sd2i, n2i)"),
  bcg6 = list(data = bcg_rr[1:6, ], measure = "RR", input = bcg_input, label = bcg_label[1:6],
              source = "metadat::dat.bcg rows 1-6; escalc('RR', ai=tpos, bi=tneg, ci=cpos, di=cneg)"),
  egger2001 = list(data = egger, measure = "OR", input = egger_input, label = egger_label,
                   source = "metadat::dat.egger2001 (all 16 trials); escalc('OR', ai=ai, n1i=n1i, ci=ci, n2i=n2i)")
)

cases <- list()
add_case <- function(kind, ds, options, call, expected, extra_input = NULL, tag = NULL) {
  d <- datasets[[ds]]
  input <- d$input(d$data)
  if (!is.null(extra_input)) input <- c(input, extra_input)
  if (is.null(tag)) {
    keep <- setdiff(names(options), c("control", "target_rule", "seed", "iter"))
    tag <- paste(vapply(keep, function(nm) paste0(nm, "=", paste(options[[nm]], collapse = ",")), ""),
                 collapse = "/")
  }
  case <- list(
    kind = kind,
    id = paste(c(kind, ds, tag), collapse = "/"),
    dataset = ds,
    measure = d$measure,
    k = length(input$yi),
    label = d$label,
    input = input,
    options = options,
    call = call,
    expected = expected
  )
  cases[[length(cases) + 1]] <<- case
  invisible(case)
}

fit <- function(ds, method, ...) {
  d <- datasets[[ds]]$data
  rma(yi, vi, data = d, method = method, control = ctrl, ...)
}

ctrl_opt <- ctrl

# ---------------------------------------------------------------------------------------------
# a. influence()
# ---------------------------------------------------------------------------------------------
for (ds in c("bcg", "normand")) {
  for (M in c("REML", "DL")) {
    m <- fit(ds, M)
    inf <- influence(m)
    ii <- inf$inf
    add_case("influence", ds, list(method = M, control = ctrl_opt),
             sprintf("influence(rma(yi, vi, method='%s', control=ctrl))", M),
             list(
               rstudent = num(ii$rstudent), dffits = num(ii$dffits), cook_d = num(ii$cook.d),
               cov_r = num(ii$cov.r), tau2_del = num(ii$tau2.del), QE_del = num(ii$QE.del),
               hat = num(ii$hat), weight = num(ii$weight),
               inf = as.logical(inf$is.infl),
               inf_star = as.character(ii$inf),
               dfbetas = num(inf$dfbs$intrcpt),
               model_tau2 = num(m$tau2), model_QE = num(m$QE), model_estimate = num(m$beta)
             ))
  }
}

# ---------------------------------------------------------------------------------------------
# b. leave1out()
# ---------------------------------------------------------------------------------------------
l1o_cols <- function(l) {
  list(estimate = num(l$estimate), se = num(l$se), zval = num(l$zval), pval = num(l$pval),
       ci_lb = num(l$ci.lb), ci_ub = num(l$ci.ub), Q = num(l$Q), Qp = num(l$Qp),
       tau2 = num(l$tau2), I2 = num(l$I2), H2 = num(l$H2))
}
for (ds in c("bcg", "normand")) {
  for (M in c("REML", "DL")) {
    l <- leave1out(fit(ds, M))
    add_case("leave1out", ds, list(method = M, control = ctrl_opt),
             sprintf("leave1out(rma(yi, vi, method='%s', control=ctrl))", M),
             l1o_cols(l))
  }
}

# ---------------------------------------------------------------------------------------------
# c. cumul()
# ---------------------------------------------------------------------------------------------
cumul_cols <- function(cu) {
  list(estimate = num(cu$estimate), se = num(cu$se), zval = num(cu$zval), pval = num(cu$pvals),
       ci_lb = num(cu$ci.lb), ci_ub = num(cu$ci.ub), Q = num(cu$Q), Qp = num(cu$Qp),
       tau2 = num(cu$tau2), I2 = num(cu$I2), H2 = num(cu$H2),
       order = num(cu$ids))
}
for (M in c("REML", "DL")) {
  m <- fit("bcg", M)
  cu <- cumul(m, order = datasets$bcg$data$year)
  e <- cumul_cols(cu)
  e$order_note <- "1-based study indices in the order used: stable sort by year (ties keep input order)"
  add_case("cumul", "bcg", list(method = M, order = "year", control = ctrl_opt),
           sprintf("cumul(rma(yi, vi, method='%s', control=ctrl), order=year)", M), e)
}
for (M in c("REML", "DL")) {
  cu <- cumul(fit("normand", M))
  e <- cumul_cols(cu)
  e$order_note <- "natural (input) order"
  add_case("cumul", "normand", list(method = M, order = "natural", control = ctrl_opt),
           sprintf("cumul(rma(yi, vi, method='%s', control=ctrl))", M), e)
}

# ---------------------------------------------------------------------------------------------
# d. baujat()
# ---------------------------------------------------------------------------------------------
pdf(NULL)
for (ds in c("bcg", "normand")) {
  for (M in c("FE", "REML")) {
    b <- baujat(fit(ds, M))
    add_case("baujat", ds, list(method = M, control = ctrl_opt),
             sprintf("baujat(rma(yi, vi, method='%s', control=ctrl)) # data returned invisibly", M),
             list(x = num(b$x), y = num(b$y), ids = num(b$ids)))
  }
}
invisible(dev.off())

# ---------------------------------------------------------------------------------------------
# e. gosh() on the k = 6 bcg subset
# ---------------------------------------------------------------------------------------------
for (M in c("FE", "REML", "DL")) {
  g <- gosh(fit("bcg6", M), progbar = FALSE)
  r <- g$res
  incl <- unname(g$incl)
  add_case("gosh", "bcg6", list(method = M, control = ctrl_opt),
           sprintf("gosh(rma(yi, vi, method='%s', control=ctrl), progbar=FALSE)", M),
           list(k = num(r$k), estimate = num(r$estimate), I2 = num(r$I2), H2 = num(r$H2),
                tau2 = num(r$tau2), QE = num(r$QE),
                incl = lapply(seq_len(nrow(incl)), function(i) as.logical(incl[i, ])),
                fit = as.logical(g$fit),
                incl_note = "one row per subset (2^6 - 1 = 63), in metafor's order: subsets of size 1, then 2, ... (combn order); row i lists which of the 6 studies are in subset i"))
}

# ---------------------------------------------------------------------------------------------
# f. regtest() (Egger-type tests) and Peters' test
# ---------------------------------------------------------------------------------------------
reg_expected <- function(r) {
  f <- r$fit
  if (inherits(f, "rma")) {
    coefs <- list(b = num(f$beta), se = num(f$se), tau2 = num(f$tau2))
  } else {
    cf <- if (inherits(f, "summary.lm")) coef(f) else coef(summary(f))
    sig <- if (inherits(f, "summary.lm")) f$sigma else summary(f)$sigma
    coefs <- list(b = num(cf[, 1]), se = num(cf[, 2]), sigma = num(sig))
  }
  list(model = r$model, predictor = r$predictor,
       zval = num(r$zval), dfs = if (is.null(r$dfs) || is.na(r$dfs)) NA else num(r$dfs),
       pval = num(r$pval),
       est = if (is.null(r$est)) NA else num(r$est),
       ci_lb = if (is.null(r$ci.lb)) NA else num(r$ci.lb),
       ci_ub = if (is.null(r$ci.ub)) NA else num(r$ci.ub),
       fit_coef = coefs,
       stat_note = "zval is a z statistic when dfs is null (model='rma', test='z'), else a t statistic with dfs df")
}
for (ds in c("bcg", "normand", "egger2001")) {
  for (M in c("REML", "DL", "FE")) {
    r <- regtest(fit(ds, M))
    add_case("regtest", ds, list(model = "rma", predictor = "sei", method = M, control = ctrl_opt),
             sprintf("regtest(rma(yi, vi, method='%s', control=ctrl))  # model='rma', predictor='sei'", M),
             reg_expected(r))
  }
  for (P in c("sei", "vi")) {
    r <- regtest(fit(ds, "FE"), model = "lm", predictor = P)
    add_case("regtest", ds, list(model = "lm", predictor = P, control = ctrl_opt),
             sprintf("regtest(rma(yi, vi, method='FE'), model='lm', predictor='%s')  # classical Egger test when 'sei'", P),
             reg_expected(r))
  }
}

# Peters' test. metafor has no 'ninvs'; its predictors are sei, vi, ni, ninv, sqrtni, sqrtninv.
# Peters et al. (2006): weighted linear regression of ln(OR) on 1/n (n = total sample size) with
# weights 1/(1/(ai+ci) + 1/(bi+di)) (inverse variance of the average event probability), test of
# the slope with a t test on k - 2 df. That is regtest(model='lm', predictor='ninv') with vi
# replaced by 1/(ai+ci) + 1/(bi+di); meta::metabias(method.bias='Peters') does exactly this.
# With the ordinary ln(OR) sampling variances the same call gives a 'Peters-like' test with
# inverse-variance weights; both are stored, marked by options$weights.
for (ds in c("bcg_or", "egger2001")) {
  inp <- datasets[[ds]]$input(datasets[[ds]]$data)
  ni <- inp$n1i + inp$n2i
  vi_peters <- 1 / (inp$ai + inp$ci) + 1 / (inp$bi + inp$di)
  r <- regtest(inp$yi, vi = vi_peters, ni = ni, model = "lm", predictor = "ninv")
  add_case("peters", ds, list(weights = "peters", model = "lm", predictor = "ninv"),
           "regtest(yi, vi = 1/(ai+ci) + 1/(bi+di), ni = n1i+n2i, model='lm', predictor='ninv')  # Peters et al. (2006), as meta::metabias(method.bias='Peters')",
           reg_expected(r), extra_input = list(ni = ni, vi_peters = vi_peters))
  r <- regtest(inp$yi, vi = inp$vi, ni = ni, model = "lm", predictor = "ninv")
  add_case("peters", ds, list(weights = "inverse_variance", model = "lm", predictor = "ninv"),
           "regtest(yi, vi, ni = n1i+n2i, model='lm', predictor='ninv')  # 1/n predictor, ordinary ln(OR) inverse-variance weights",
           reg_expected(r), extra_input = list(ni = ni))
}
# The same metafor call on the bcg log risk ratios (sample sizes from escalc's 'ni' attribute).
{
  inp <- datasets$bcg$input(datasets$bcg$data)
  ni <- inp$n1i + inp$n2i
  r <- regtest(fit("bcg", "FE"), model = "lm", predictor = "ninv")
  stopifnot(isTRUE(all.equal(as.numeric(attr(datasets$bcg$data$yi, "ni")), ni)))
  add_case("peters", "bcg", list(weights = "inverse_variance", model = "lm", predictor = "ninv"),
           "regtest(rma(yi, vi, method='FE'), model='lm', predictor='ninv')  # ni = n1i+n2i from escalc",
           reg_expected(r), extra_input = list(ni = ni))
}

# Harbord et al. (2006) score test, written with metafor: Egger's regression on the efficient
# score Z and its variance V (yi = Z/V, vi = 1/V). meta::metabias(method.bias='Harbord') does the
# same (meta's linregcore calls metafor::regtest(model='lm')). Raw counts, no continuity correction.
harbord_zv <- function(inp) {
  a <- inp$ai; c <- inp$ci; n1 <- inp$n1i; n2 <- inp$n2i; N <- n1 + n2; d <- a + c
  Z <- a - d * n1 / N
  V <- n1 * n2 * d * (N - d) / (N^2 * (N - 1))
  list(Z = Z, V = V)
}
for (ds in c("bcg_or", "egger2001")) {
  inp <- datasets[[ds]]$input(datasets[[ds]]$data)
  zv <- harbord_zv(inp)
  r <- regtest(zv$Z / zv$V, vi = 1 / zv$V, model = "lm", predictor = "sei")
  add_case("harbord", ds, list(model = "lm", predictor = "sei", source = "metafor"),
           "Z <- ai - (ai+ci)*n1i/N; V <- n1i*n2i*(ai+ci)*(N-ai-ci)/(N^2*(N-1)); regtest(Z/V, vi=1/V, model='lm')",
           reg_expected(r), extra_input = list(Z = zv$Z, V = zv$V))
}

# ---------------------------------------------------------------------------------------------
# g. ranktest()
# ---------------------------------------------------------------------------------------------
for (ds in c("bcg", "normand", "egger2001")) {
  m <- fit(ds, "FE")
  for (ex in c(TRUE, FALSE)) {
    rk <- withCallingHandlers(ranktest(m, exact = ex), warning = function(w) {
      message("ranktest warning (", ds, ", exact=", ex, "): ", conditionMessage(w))
      invokeRestart("muffleWarning")
    })
    add_case("ranktest", ds, list(exact = ex),
             if (ex) "ranktest(rma(yi, vi))  # exact=TRUE is metafor's default (cor.test kendall)"
             else "ranktest(rma(yi, vi), exact=FALSE)  # normal approximation",
             list(tau = num(rk$tau), pval = num(rk$pval)))
  }
}

# ---------------------------------------------------------------------------------------------
# h. trimfill()
# ---------------------------------------------------------------------------------------------
tf_expected <- function(tf) {
  k0 <- tf$k0
  n <- length(tf$yi)
  filled <- if (k0 > 0) seq.int(n - k0 + 1, n) else integer(0)
  list(k0 = num(k0), se_k0 = num(tf$se.k0), side = tf$side, estimator = tf$k0.est,
       p_k0 = if (is.null(tf$p.k0) || is.na(tf$p.k0)) NA else num(tf$p.k0),
       estimate = num(tf$beta), se = num(tf$se), zval = num(tf$zval), pval = num(tf$pval),
       ci_lb = num(tf$ci.lb), ci_ub = num(tf$ci.ub), tau2 = num(tf$tau2), QE = num(tf$QE),
       filled_yi = num(tf$yi[filled]), filled_vi = num(tf$vi[filled]),
       yi_all = num(tf$yi), vi_all = num(tf$vi), fill = as.logical(tf$fill))
}
for (ds in c("bcg", "normand")) {
  for (M in c("FE", "REML", "DL")) {
    tf <- trimfill(fit(ds, M), control = ctrl)
    add_case("trimfill", ds, list(method = M, estimator = "L0", control = ctrl_opt),
             sprintf("trimfill(rma(yi, vi, method='%s', control=ctrl), control=ctrl)", M),
             tf_expected(tf))
  }
  for (est in c("R0", "Q0")) {
    for (M in c("FE", "REML")) {
      tf <- trimfill(fit(ds, M), estimator = est, control = ctrl)
      add_case("trimfill", ds, list(method = M, estimator = est, control = ctrl_opt),
               sprintf("trimfill(rma(yi, vi, method='%s', control=ctrl), estimator='%s', control=ctrl)", M, est),
               tf_expected(tf))
    }
  }
}

# ---------------------------------------------------------------------------------------------
# i. fsn()
# ---------------------------------------------------------------------------------------------
fsn_expected <- function(f, raw) {
  list(type = f$type, fsnum = num(f$fsnum), alpha = num(f$alpha),
       pval = if (is.na(f$pval)) NA else num(f$pval),
       meanes = if (is.na(f$meanes)) NA else num(f$meanes),
       target = if (is.null(f$target) || is.na(f$target)) NA else num(f$target),
       fsnum_unrounded = num(raw),
       rounding_note = "metafor reports ceiling(fsnum_unrounded) (round() when within sqrt(.Machine$double.eps) of an integer), floored at 0; fsnum_unrounded is computed in this script with the formula in metafor's fsn() source")
}
for (ds in c("bcg", "normand")) {
  d <- datasets[[ds]]$data
  yi <- num(d$yi); vi <- num(d$vi); k <- length(yi)
  fe <- num(fit(ds, "FE")$beta)
  # Rosenthal (Stouffer)
  z.avg <- abs(sum(yi / sqrt(vi)) / sqrt(k))
  raw <- k * (z.avg / qnorm(0.05, lower.tail = FALSE))^2 - k
  add_case("fsn", ds, list(type = "Rosenthal", alpha = 0.05),
           "fsn(yi, vi, type='Rosenthal')  # alpha=.05, Stouffer",
           fsn_expected(fsn(yi, vi, type = "Rosenthal"), raw))
  # Orwin, default target = unweighted mean / 2
  raw <- k * (mean(yi) - mean(yi) / 2) / (mean(yi) / 2)
  add_case("fsn", ds, list(type = "Orwin", weighted = FALSE, target = "default (mean(yi)/2)"),
           tag = "type=Orwin/weighted=FALSE/target=default",
           "fsn(yi, type='Orwin')  # unweighted mean, target defaults to mean(yi)/2",
           fsn_expected(fsn(yi, type = "Orwin"), raw))
  # Orwin, stated target = half the FE estimate, unweighted and weighted
  tgt <- fe / 2
  for (w in c(FALSE, TRUE)) {
    meanes <- if (w) sum(yi / vi) / sum(1 / vi) else mean(yi)
    t2 <- if (sign(tgt) != sign(meanes)) -tgt else tgt
    raw <- k * (meanes - t2) / t2
    add_case("fsn", ds, list(type = "Orwin", weighted = w, target = tgt,
                             target_rule = "half the FE (inverse-variance) estimate"),
             tag = sprintf("type=Orwin/weighted=%s/target=FE_half", w),
             sprintf("fsn(yi, vi, type='Orwin', target=%s, weighted=%s)  # target = FE estimate / 2",
                     format(tgt, digits = 17), w),
             fsn_expected(fsn(yi, vi, type = "Orwin", target = tgt, weighted = w), raw))
  }
  # Rosenberg
  wi <- 1 / vi
  raw <- k * ((sum(wi * yi) / qnorm(0.025, lower.tail = FALSE))^2 - sum(wi)) / sum(wi)
  add_case("fsn", ds, list(type = "Rosenberg", alpha = 0.05),
           "fsn(yi, vi, type='Rosenberg')  # alpha=.05, two-sided z",
           fsn_expected(fsn(yi, vi, type = "Rosenberg"), raw))
}

# ---------------------------------------------------------------------------------------------
# j. permutest()
# ---------------------------------------------------------------------------------------------
{
  m <- rma(yi, vi, mods = ~ ablat, data = datasets$bcg$data, control = ctrl)
  set.seed(perm_seed)
  t0 <- Sys.time()
  p <- permutest(m, iter = perm_iter, progbar = FALSE)
  message("permutest (mods) took ", format(Sys.time() - t0))
  add_case("permutest", "bcg", list(method = "REML", mods = "~ ablat", iter = perm_iter,
                                    seed = perm_seed, exact = FALSE, control = ctrl_opt),
           sprintf("set.seed(%d); permutest(rma(yi, vi, mods=~ablat, control=ctrl), iter=%d)", perm_seed, perm_iter),
           list(coef_names = rownames(m$beta), pval = num(p$pval), QMp = num(p$QMp),
                beta = num(m$beta), se = num(m$se), zval = num(m$zval), QM = num(m$QM),
                pval_model = num(m$pval), QMp_model = num(m$QMp),
                iter = perm_iter, exact_iter = num(p$exact.iter),
                note = "Monte Carlo p-values (observed statistic counted among the iter permutations, as metafor does): compare with a tolerance of a few Monte Carlo SEs, sqrt(p(1-p)/iter)"),
           extra_input = list(ablat = num(datasets$bcg$data$ablat)))
}
# Intercept-only models: the sign-flipping permutation test is exact (2^k <= iter), so deterministic.
for (ds in c("bcg", "normand")) {
  m <- fit(ds, "REML")
  p <- permutest(m, exact = TRUE, progbar = FALSE)
  add_case("permutest", ds, list(method = "REML", mods = "none", exact = TRUE, control = ctrl_opt),
           "permutest(rma(yi, vi, method='REML', control=ctrl), exact=TRUE)  # 2^k sign flips",
           list(pval = num(p$pval), zval = num(m$zval), pval_model = num(m$pval),
                exact_iter = num(p$exact.iter)))
}

# ---------------------------------------------------------------------------------------------
# k. R's meta package: Harbord, Peters (and Egger, Begg for cross-checking)
# ---------------------------------------------------------------------------------------------
if (have_meta) {
  suppressPackageStartupMessages(library(meta))
  for (ds in c("bcg_or", "egger2001")) {
    inp <- datasets[[ds]]$input(datasets[[ds]]$data)
    mb <- metabin(inp$ai, inp$n1i, inp$ci, inp$n2i, sm = "OR")
    for (mbias in c("Harbord", "Peters", "Egger", "Begg")) {
      res <- metabias(mb, method.bias = mbias)
      est <- as.list(res$estimate)
      names(est) <- gsub(".", "_", names(est), fixed = TRUE)
      add_case("meta_metabias", ds, list(method_bias = mbias, sm = "OR"),
               sprintf("meta::metabias(meta::metabin(ai, n1i, ci, n2i, sm='OR'), method.bias='%s')", mbias),
               list(statistic = num(res$statistic), df = if (is.null(res$df)) NA else num(res$df),
                    pval = num(res$pval), estimate = lapply(est, num),
                    tau = if (is.null(res$tau)) NA else num(res$tau),
                    note = if (mbias == "Begg") "meta's Begg test: normal approximation, no continuity correction (metafor's ranktest is exact by default)"
                           else "statistic = t for the slope (bias) with df = k - 2; estimate$bias is the slope, estimate$intercept the intercept"))
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Write
# ---------------------------------------------------------------------------------------------
ids <- vapply(cases, function(cs) cs$id, "")
dup <- duplicated(ids)
if (any(dup)) {
  # make ids unique by suffixing a counter
  for (i in which(dup)) ids[i] <- paste0(ids[i], "#", sum(ids[seq_len(i)] == ids[i]))
  for (i in seq_along(cases)) cases[[i]]$id <- ids[i]
}

meta_block <- list(
  generator = "tests/reference/make_sensitivity_reference.R",
  command = "Rscript tests/reference/make_sensitivity_reference.R  (from the repository root)",
  metafor_version = as.character(packageVersion("metafor")),
  metadat_version = as.character(packageVersion("metadat")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  meta_version = if (have_meta) as.character(packageVersion("meta")) else NA,
  R_version = R.version.string,
  date = format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z"),
  control = ctrl,
  control_note = "passed to every rma() fit; influence/leave1out/cumul/baujat/gosh/regtest reuse the model's control, trimfill gets control=ctrl explicitly",
  rng = as.list(RNGkind()),
  permutest_seed = perm_seed,
  permutest_iter = perm_iter,
  json_precision = "jsonlite::toJSON(digits = NA): 15 significant digits",
  field_names = "metafor's dotted names are written with underscores (cook.d -> cook_d, ci.lb -> ci_lb, ...); cumul's 'pvals' is written as 'pval'",
  n_cases = length(cases)
)

write_cases(list(meta = meta_block), cases, out_path)   # one case per line
message("wrote ", out_path, " with ", length(cases), " cases")
