# Reference values for tests/test_edge_cases.py: metafor on the numerical edge cases of issue 10
# (k = 1 and k = 2 for every estimator, tau^2 on the boundary, very large heterogeneity, sampling variances from
# 1e-12 to 1e12 in one analysis, Q-profile bounds at 0 and beyond tau2.max, non-convergence).
#
# Run by hand from the repository root, never by CI:
#
#   Rscript tests/reference/make_edge_cases.R
#
# It writes tests/reference/metafor_edge_cases.json (or the file named by its argument), each case with the R call
# that made it ("r_call", evaluated from that text). Needs r-cran-metafor and r-cran-jsonlite.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args) > 0) args[1] else file.path("tests", "reference", "metafor_edge_cases.json")
methods <- c("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")

# Tight control: threshold is an absolute change in tau^2. Where tau^2 is ~5e7 the spacing of doubles is ~7e-9, so
# 1e-15 cannot be reached; those fits fall back to 1e-8 (still 2e-16 relative) and record the threshold used.
tight <- function(threshold) sprintf("list(threshold = %g, maxiter = 10000, tol = 1e-15)", threshold)

# Evaluate an R call given as text (the text stored with the case is the call that ran), with yi and vi bound.
run <- function(text, yi = NULL, vi = NULL) eval(parse(text = text), envir = list(yi = yi, vi = vi))

datasets <- list(
  k1 = list(yi = 0.4, vi = 0.09),
  k2 = list(yi = c(0.1, 0.9), vi = c(0.02, 0.05)),
  boundary = list(yi = c(-1, 0, 1), vi = c(1, 1, 1)),            # Q = k - 1 exactly: DL, REML, PM... give 0
  homogeneous = list(yi = c(0.10, 0.12, 0.09, 0.11), vi = c(0.04, 0.05, 0.03, 0.06)),
  large_heterogeneity = list(yi = c(-5000, 0, 7000, 12000), vi = c(1e-6, 1e-3, 1, 1e3)),
  tiny_and_huge_variances = list(yi = c(0.1, 0.2, 0.5, 3.0), vi = c(1e-12, 1e-6, 1, 1e12)),
  censored_upper = list(yi = c(0, 30, -25), vi = c(1, 1, 1))
)

warnings_of <- function(expr) {
  caught <- character(0)
  value <- withCallingHandlers(expr, warning = function(w) {
    caught <<- c(caught, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = value, warnings = caught)
}

fit_tight <- function(yi, vi, method, test) {
  for (threshold in c(1e-15, 1e-8)) {
    call <- sprintf("rma(yi, vi, method = \"%s\", test = \"%s\", control = %s)", method, test, tight(threshold))
    res <- tryCatch(warnings_of(run(call, yi, vi)), error = function(e) NULL)
    if (!is.null(res)) return(c(res, list(threshold = threshold, call = call)))
  }
  stop("no fit for ", method)
}

number <- function(x) if (is.null(x) || length(x) == 0 || is.na(x)) NA else unname(as.numeric(x))

cases <- list()
for (name in names(datasets)) {
  d <- datasets[[name]]
  for (method in methods) {
    for (test in c("z", "knha")) {
      if (name != "k2" && test == "knha") next
      res <- fit_tight(d$yi, d$vi, method, test)
      r <- res$value
      p <- predict(r)
      cases[[length(cases) + 1]] <- list(
        dataset = name, kind = "pool", r_call = res$call, method = method, test = test, yi = d$yi, vi = d$vi,
        threshold = res$threshold, warnings = res$warnings,
        expected = list(estimate = number(r$b), se = number(r$se), ci_low = number(r$ci.lb),
                        ci_high = number(r$ci.ub), statistic = number(r$zval), pvalue = number(r$pval),
                        tau2 = number(r$tau2), q = number(r$QE), i2 = number(r$I2), h2 = number(r$H2),
                        pi_low = number(if (is.null(p$pi.lb)) p$ci.lb else p$pi.lb),
                        pi_high = number(if (is.null(p$pi.ub)) p$ci.ub else p$pi.ub), test = r$test))
    }
  }
}

# Q-profile intervals (confint of the REML and DL fits), with metafor's default tau2.max and with a bound far out.
# lb_sign/ub_sign are what metafor prints before a bound: ">" beyond tau2.max, "<" below 0 (an empty interval).
for (name in c("k2", "boundary", "homogeneous", "censored_upper")) {
  d <- datasets[[name]]
  for (method in c("DL", "REML")) {
    fit <- sprintf("rma(yi, vi, method = \"%s\", control = %s)", method, tight(1e-15))
    for (tau2max in list(NULL, 1e12)) {
      ctrl <- if (is.null(tau2max)) "list(tol = 1e-15)" else sprintf("list(tau2.max = %g, tol = 1e-15)", tau2max)
      call <- sprintf("confint(%s, control = %s)", fit, ctrl)
      res <- warnings_of(run(call, d$yi, d$vi))
      ci <- res$value$random
      cases[[length(cases) + 1]] <- list(
        dataset = name, kind = "confint", r_call = call, method = method, yi = d$yi, vi = d$vi,
        tau2_max = if (is.null(tau2max)) NA else tau2max, warnings = res$warnings,
        expected = list(tau2 = unname(ci["tau^2", ]), i2 = unname(ci["I^2(%)", ]), h2 = unname(ci["H^2", ]),
                        lb_sign = res$value$lb.sign, ub_sign = res$value$ub.sign))
    }
  }
}

# Non-convergence: what metafor does when its iterations run out.
d <- list(yi = c(0.1, 0.5, 0.9, -0.3, 0.7), vi = c(0.02, 0.03, 0.05, 0.01, 0.04))
for (method in c("ML", "REML", "EB", "PM")) {
  call <- sprintf("rma(yi, vi, method = \"%s\", control = list(maxiter = 1))", method)
  outcome <- tryCatch({
    res <- warnings_of(run(call, d$yi, d$vi))
    list(error = NA, warnings = res$warnings, tau2 = number(res$value$tau2))
  }, error = function(e) list(error = conditionMessage(e), warnings = character(0), tau2 = NA))
  cases[[length(cases) + 1]] <- list(dataset = "maxiter_1", kind = "nonconvergence", r_call = call, method = method,
                                     yi = d$yi, vi = d$vi, expected = outcome)
}

# Double-zero studies with each binary measure: escalc's default correction, and rma.mh / rma.peto on a set with
# one double-zero study (which they leave out of the sums) and on a set where every study is double-zero.
dz <- list(ai = c(0, 3, 1), n1i = c(10, 10, 12), ci = c(0, 5, 4), n2i = c(10, 10, 11))
arms <- paste(sprintf("%s = c(%s)", names(dz), vapply(dz, paste, "", collapse = ", ")), collapse = ", ")
all_zero <- "ai = c(0, 0), n1i = c(5, 5), ci = c(0, 0), n2i = c(5, 5)"
for (measure in c("OR", "RR", "RD", "PETO")) {
  calls <- c(es = sprintf("escalc(\"%s\", %s)", measure, arms),
             dropped = sprintf("escalc(\"%s\", %s, drop00 = TRUE)", measure, arms),
             fixed = if (measure == "PETO") sprintf("rma.peto(%s)", arms)
                     else sprintf("rma.mh(measure = \"%s\", %s)", measure, arms),
             all00 = if (measure == "PETO") sprintf("rma.peto(%s)", all_zero)
                     else sprintf("rma.mh(measure = \"%s\", %s)", measure, all_zero))
  es <- run(calls[["es"]])
  dropped <- run(calls[["dropped"]])
  fixed <- run(calls[["fixed"]])
  all00 <- tryCatch(warnings_of(run(calls[["all00"]]))$value, error = function(e) conditionMessage(e))
  cases[[length(cases) + 1]] <- list(
    dataset = "double_zero", kind = "double_zero", r_call = paste(calls, collapse = "; "), measure = measure,
    input = dz,
    expected = list(yi = unname(as.numeric(es$yi)), vi = unname(as.numeric(es$vi)),
                    yi_drop00 = unname(as.numeric(dropped$yi)),
                    fixed_estimate = number(fixed$b), fixed_se = number(fixed$se), fixed_q = number(fixed$QE),
                    all_double_zero = if (is.character(all00)) list(error = all00)
                                      else list(estimate = number(all00$b), se = number(all00$se))))
}

out <- list(generator = sprintf("metafor %s, R %s; control threshold 1e-15 (1e-8 where recorded), tol 1e-15",
                                packageVersion("metafor"), getRversion()),
            cases = cases)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), out_path)
cat("wrote", length(cases), "cases to", out_path, "\n")
