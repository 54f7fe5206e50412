# Regenerates tests/reference/metafor_reference.json: 276 cases of R's metafor on five of metadat's data sets (BCG
# vaccine trials, Normand 1999, Hine 1989, Raudenbush 1985, Niel-Weise 2007), tested by tests/test_metafor.py and by
# ../shared/tools/check_reference.py. Each case carries the R call that made it ("r_call").
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_metafor_reference.R [OUT.json]
#
# OUT.json defaults to tests/reference/metafor_reference.json. The file holds one case per line.
#
# Per data set and measure, in this order: escalc's effect sizes; rma() with every tau² estimator (EE, DL, HE, HS,
# SJ, ML, REML, EB, PM) and the z test, and DL, REML, PM with Knapp-Hartung (test = "knha"); the Q-profile intervals
# of tau², tau, I² and H² (confint) for REML, DL and PM; rma.mh and rma.peto (binary measures); meta-regression on
# one moderator (REML, DL); subgroups (REML, DL): each level fitted alone, the test for subgroup differences, and
# rma(mods = ~ factor(group)); Egger's regression test (regtest, model = "lm"); Begg's rank correlation (ranktest);
# trim-and-fill and leave-one-out on the REML fit.
#
# Convergence: threshold 1e-15 for the iterative estimators (maxiter 10000); where metafor cannot reach it, the next
# looser power of ten that it reaches (the case's r_call shows the control used). tol 1e-12 for the roots that
# metafor finds with uniroot (PM's tau², the Q-profile bounds); trim-and-fill refits with the model's control.

suppressPackageStartupMessages({
  library(metafor)
  library(metadat)
  library(jsonlite)
})
source(file.path("tests", "reference", "write_cases.R"))

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) > 0) args[1] else file.path("tests", "reference", "metafor_reference.json")

THRESHOLDS <- c(1e-15, 1e-14, 1e-13, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8)
CONFINT_CONTROL <- "list(tol = 1e-12)"
METHODS <- c("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")
KNHA_METHODS <- c("DL", "REML", "PM")
CONFINT_METHODS <- c("REML", "DL", "PM")
MODEL_METHODS <- c("REML", "DL")   # meta-regression and subgroups

num <- function(x) as.numeric(x)
or_null <- function(x) if (is.null(x) || length(x) == 0) NA else num(x)

# Evaluate an R call given as text (so that the text stored with the case is the call that ran) in `env`.
run <- function(text, env) eval(parse(text = text), envir = env)

# rma() at the tightest threshold it reaches: the fitted model, the call text that made it and its control.
fit_tight <- function(call_of, env) {
  for (threshold in THRESHOLDS) {
    control <- sprintf("control = list(threshold = %g, tol = 1e-12, maxiter = 10000)", threshold)
    text <- call_of(control)
    fit <- tryCatch(run(text, env), error = function(e) NULL)
    if (!is.null(fit)) return(list(fit = fit, call = text, control = control))
  }
  stop("no threshold converged: ", call_of("control = ..."))
}

pool_expected <- function(fit, method) {
  pred <- predict(fit)
  list(estimate = num(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub, pval = fit$pval,
       tau2 = fit$tau2, i2 = fit$I2, h2 = fit$H2, q = fit$QE, q_pval = fit$QEp,
       pi_low = if (method == "EE") NA else num(pred$pi.lb), pi_high = if (method == "EE") NA else num(pred$pi.ub),
       k = fit$k)
}

# The cases of one data set and measure. `d` holds the data (columns named as in the calls below), `es` the
# escalc() call (NULL where yi and vi are given), `arms` the 2x2 arguments of rma.mh/rma.peto (NULL: none),
# `mods` and `groups` the names of the moderator and grouping columns (NULL: none).
cases_of <- function(dataset, measure, d, labels, es = NULL, input = NULL, arms = NULL, peto = FALSE,
                     mods = NULL, groups = NULL) {
  env <- new.env()
  env$d <- d
  cases <- list()
  add <- function(case) cases[[length(cases) + 1]] <<- case
  head <- function(kind, call) list(dataset = dataset, measure = measure, label = labels, kind = kind, r_call = call)

  if (!is.null(es)) {
    env$es <- run(es, env)
    add(c(head("effect_sizes", es), list(input = input,
          expected = list(yi = num(env$es$yi), vi = num(env$es$vi)))))
  } else {
    env$es <- d
  }
  yi <- num(env$es$yi)
  vi <- num(env$es$vi)
  data <- list(yi = yi, vi = vi)

  grid <- c(lapply(METHODS, function(m) c(m, "z")), lapply(KNHA_METHODS, function(m) c(m, "knha")))
  for (g in grid) {
    test <- if (g[2] == "z") "" else sprintf(", test = \"%s\"", g[2])
    made <- fit_tight(function(ctrl) sprintf("rma(yi, vi, data = es, method = \"%s\"%s, %s)", g[1], test, ctrl), env)
    add(c(head("pool", made$call), data, list(options = list(method = g[1], test = g[2]),
          expected = pool_expected(made$fit, g[1]))))
  }

  for (m in CONFINT_METHODS) {
    made <- fit_tight(function(ctrl) sprintf("rma(yi, vi, data = es, method = \"%s\", %s)", m, ctrl), env)
    env$fit <- made$fit
    text <- sprintf("confint(fit, control = %s)", CONFINT_CONTROL)
    ci <- run(text, env)$random
    row <- function(name) num(ci[name, c("estimate", "ci.lb", "ci.ub")])
    add(c(head("confint", paste0(text, " where fit <- ", made$call)), data, list(options = list(method = m),
          expected = list(tau2 = row("tau^2"), tau = row("tau"), i2 = row("I^2(%)"), h2 = row("H^2")))))
  }

  if (!is.null(arms)) {
    text <- sprintf("rma.mh(measure = \"%s\", %s, data = d)", measure, arms)
    fit <- run(text, env)
    add(c(head("mantel_haenszel", text), list(input = input, options = list(measure = measure),
          expected = list(estimate = num(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub,
                          pval = fit$pval, q = fit$QE, q_pval = fit$QEp))))
    if (peto) {
      text <- sprintf("rma.peto(%s, data = d)", arms)
      fit <- run(text, env)
      add(c(head("peto", text), list(input = input,
            expected = list(estimate = num(fit$beta), se = fit$se, ci_low = fit$ci.lb, ci_high = fit$ci.ub,
                            pval = fit$pval, q = fit$QE, q_pval = fit$QEp))))
    }
  }

  if (!is.null(mods)) {
    for (m in MODEL_METHODS) {
      made <- fit_tight(function(ctrl) sprintf("rma(yi, vi, mods = ~ %s, data = es, method = \"%s\", %s)",
                                               mods, m, ctrl), env)
      fit <- made$fit
      add(c(head("metareg", made$call), data, list(mods = num(env$es[[mods]]), options = list(method = m),
            expected = list(coef = num(fit$beta), se = num(fit$se), pval = num(fit$pval), tau2 = fit$tau2,
                            qm = fit$QM, qm_pval = fit$QMp, qe = fit$QE, qe_pval = fit$QEp, r2 = or_null(fit$R2)))))
    }
  }

  if (!is.null(groups)) {
    levels <- sort(unique(as.character(env$es[[groups]])))
    for (m in MODEL_METHODS) {
      each <- lapply(levels, function(level) fit_tight(function(ctrl) sprintf(
        "rma(yi, vi, data = es, subset = %s == \"%s\", method = \"%s\", %s)", groups, level, m, ctrl), env)$fit)
      env$estimates <- sapply(each, function(f) num(f$beta))
      env$ses <- sapply(each, function(f) f$se)
      between <- run("rma(estimates, sei = ses, method = \"EE\")", env)
      fe <- run(sprintf("rma(yi, vi, mods = ~ factor(%s), data = es, method = \"EE\")", groups), env)
      mixed_call <- function(ctrl) sprintf("rma(yi, vi, mods = ~ factor(%s), data = es, method = \"%s\", %s)",
                                           groups, m, ctrl)
      mixed <- tryCatch(fit_tight(mixed_call, env)$fit, error = function(e) NULL)   # saturated: one study a level
      call <- paste(sprintf("rma(yi, vi, data = es, subset = %s == level, method = \"%s\") for each level;", groups, m),
                    "rma(estimates, sei = ses, method = \"EE\") over them;",
                    sprintf("rma(yi, vi, mods = ~ factor(%s), data = es, method = \"EE\");", groups),
                    mixed_call("control = list(threshold = 1e-15, tol = 1e-12, maxiter = 10000)"))
      add(c(head("subgroups", call), data, list(groups = as.character(env$es[[groups]]), options = list(method = m),
            expected = list(groups = levels, estimate = env$estimates, se = env$ses,
                            tau2 = sapply(each, function(f) f$tau2), q_between = between$QE,
                            q_between_pval = between$QEp, q_between_fe = fe$QM,
                            qm = if (is.null(mixed)) NA else mixed$QM, qm_pval = if (is.null(mixed)) NA else mixed$QMp))))
    }
  }

  text <- "regtest(yi, vi, data = es, model = \"lm\")"
  egger <- run(text, env)
  add(c(head("egger", text), data, list(expected = list(t = num(egger$zval), df = egger$dfs, pval = egger$pval,
                                                        limit_estimate = num(egger$est)))))
  text <- "ranktest(yi, vi, data = es)"
  begg <- run(text, env)
  add(c(head("begg", text), data, list(expected = list(tau = num(begg$tau), pval = begg$pval))))

  made <- fit_tight(function(ctrl) sprintf("rma(yi, vi, data = es, method = \"REML\", %s)", ctrl), env)
  env$fit <- made$fit
  text <- sprintf("trimfill(fit, %s)", made$control)
  filled <- run(text, env)
  add(c(head("trimfill", paste(text, "where fit <-", made$call)), data, list(options = list(method = "REML"),
        expected = list(k0 = filled$k0, side = filled$side, estimate = num(filled$beta), se = filled$se,
                        tau2 = filled$tau2))))
  loo <- run("leave1out(fit)", env)
  add(c(head("leave_one_out", paste("leave1out(fit) where fit <-", made$call)), data,
        list(options = list(method = "REML"),
             expected = list(estimate = num(loo$estimate), se = num(loo$se), tau2 = num(loo$tau2), i2 = num(loo$I2)))))
  cases
}

# --- the data sets -------------------------------------------------------------------------------------------------

bcg <- dat.bcg
bcg_labels <- paste(bcg$author, bcg$year)
bcg_input <- list(ai = bcg$tpos, bi = bcg$tneg, ci = bcg$cpos, di = bcg$cneg)
bcg_arms <- "ai = tpos, bi = tneg, ci = cpos, di = cneg"

normand <- dat.normand1999
normand_input <- list(m1i = normand$m1i, sd1i = normand$sd1i, n1i = normand$n1i, m2i = normand$m2i,
                      sd2i = normand$sd2i, n2i = normand$n2i)
hine <- dat.hine1989
hine_input <- list(ai = hine$ai, n1i = hine$n1i, ci = hine$ci, n2i = hine$n2i)
raudenbush <- dat.raudenbush1985
niel <- dat.nielweise2007
niel_input <- list(ai = niel$ai, n1i = niel$n1i, ci = niel$ci, n2i = niel$n2i)

escalc_call <- function(measure, arguments, keep) sprintf("escalc(measure = \"%s\", %s, data = d%s)", measure,
                                                          arguments, keep)

cases <- list()
for (measure in c("RR", "OR", "RD")) {
  cases <- c(cases, cases_of("bcg", measure, bcg, bcg_labels,
                             es = escalc_call(measure, bcg_arms, ""), input = bcg_input, arms = bcg_arms,
                             peto = measure == "OR", mods = "ablat", groups = "alloc"))
}
for (measure in c("MD", "SMD", "ROM")) {
  cases <- c(cases, cases_of("normand1999", measure, normand, as.character(normand$study),
                             es = escalc_call(measure, "m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i", ""),
                             input = normand_input, groups = "source"))
}
for (measure in c("RD", "RR", "OR")) {
  cases <- c(cases, cases_of("hine1989", measure, hine, as.character(hine$study),
                             es = escalc_call(measure, "ai = ai, n1i = n1i, ci = ci, n2i = n2i", ""), input = hine_input,
                             arms = "ai = ai, n1i = n1i, ci = ci, n2i = n2i", peto = measure == "OR"))
}
cases <- c(cases, cases_of("raudenbush1985", "GEN", raudenbush, paste(raudenbush$author, raudenbush$year),
                           mods = "weeks", groups = "tester"))
for (measure in c("RR", "OR")) {
  cases <- c(cases, cases_of("nielweise2007", measure, niel, paste(niel$author, niel$year),
                             es = escalc_call(measure, "ai = ai, n1i = n1i, ci = ci, n2i = n2i", ""), input = niel_input,
                             arms = "ai = ai, n1i = n1i, ci = ci, n2i = n2i", peto = measure == "OR", mods = "year"))
}

generator <- paste("metafor", packageVersion("metafor"), "metadat", packageVersion("metadat"),
                   "control threshold=1e-15 (looser only where it cannot converge, see each r_call) tol=1e-12")
write_cases(list(generator = generator), cases, out)
message(length(cases), " cases written to ", out)
