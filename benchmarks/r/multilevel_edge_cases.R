# Reference values for tests/multilevel/test_edge_cases_r.py (issue 15). Run from the project root:
#   Rscript benchmarks/r/multilevel_edge_cases.R
# R, lme4, lmerTest, pbkrtest and clubSandwich are peers for reference values only;
# nothing in the package or its tests runs R. The test data are derived from the shared
# growth_a.csv, written to tests/multilevel/data/ and read back before fitting.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(clubSandwich)
})
ver <- paste0("lme4_", packageVersion("lme4"), "; lmerTest_", packageVersion("lmerTest"),
              "; pbkrtest_", packageVersion("pbkrtest"), "; clubSandwich_",
              packageVersion("clubSandwich"), "; ", R.version.string)
rows <- list()
add <- function(ds, model, call, term, quantity, value, note = "") {
  v <- if (is.character(value)) value else sprintf("%.17g", value)
  rows[[length(rows) + 1]] <<- data.frame(dataset = ds, model_id = model, r_call = call,
    term = term, quantity = quantity, value = v, note = note, package_version = ver,
    stringsAsFactors = FALSE)
}
one_line <- function(x) gsub("[\r\n]+", " ", x)
growth <- read.csv("../shared/reference/multilevel/data/growth_a.csv")

# (a) rank-deficient fixed effects: programme P3 keeps only its intake scores (time 0)
rd <- growth[growth$programme != "P3" | growth$time == 0, ]
write.csv(rd, "tests/multilevel/data/rank_deficient.csv", row.names = FALSE)
rd <- read.csv("tests/multilevel/data/rank_deficient.csv")
# tight tolerances: reference values belong to the optimum, not to the default stopping rule
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5, rhoend = 1e-12))
calls <- c(
  D1 = "lmer(outcome ~ time * programme + (1 + time | client), data = rd, REML = TRUE, control = ctrl)",
  D2 = "lmer(outcome ~ fidelity + time * programme + (1 | client), data = rd, REML = TRUE, control = ctrl)"
)
for (id in names(calls)) {
  call <- calls[[id]]
  msgs <- character(0)
  fit <- withCallingHandlers(eval(parse(text = call)),
    message = function(m) { msgs <<- c(msgs, one_line(conditionMessage(m))); invokeRestart("muffleMessage") },
    warning = function(w) { msgs <<- c(msgs, one_line(conditionMessage(w))); invokeRestart("muffleWarning") })
  X <- model.matrix(fit)
  dropped <- attr(X, "col.dropped")
  add("rank_deficient", id, call, "", "fit_messages", paste(unique(msgs), collapse = " | "))
  add("rank_deficient", id, call, "", "dropped_columns", paste(names(dropped), collapse = ";"))
  add("rank_deficient", id, call, "", "logLik_REML", as.numeric(logLik(fit)))
  sat <- summary(fit, ddf = "Satterthwaite")$coefficients
  kr <- summary(fit, ddf = "Kenward-Roger")$coefficients
  for (nm in rownames(sat)) {
    add("rank_deficient", id, call, nm, "estimate", sat[nm, "Estimate"])
    add("rank_deficient", id, call, nm, "se", sat[nm, "Std. Error"])
    add("rank_deficient", id, call, nm, "df_satterthwaite", sat[nm, "df"])
    add("rank_deficient", id, call, nm, "se_KR", kr[nm, "Std. Error"])
    add("rank_deficient", id, call, nm, "df_KR", kr[nm, "df"])
  }
}

# (b) cluster_robust: a programme level (P7) whose rows all lack the outcome; lm drops
# the incomplete rows and the unused level (model.frame(drop.unused.levels = TRUE))
extra <- head(growth[growth$programme == "P6", ], 4)
extra$programme <- "P7"
extra$client <- paste0("P7_C0", 1:4)
extra$outcome <- NA
el <- rbind(growth, extra)
write.csv(el, "tests/multilevel/data/cr2_empty_level.csv", row.names = FALSE, na = "")
el <- read.csv("tests/multilevel/data/cr2_empty_level.csv")
call <- "lm(outcome ~ time * programme, data = el)"
fit <- eval(parse(text = call))
cc <- el[complete.cases(el[, c("outcome", "time", "programme")]), ]
V <- vcovCR(fit, cluster = cc$client, type = "CR2")
ct <- coef_test(fit, vcov = V, test = "Satterthwaite")
call2 <- paste(call, "; coef_test(fit, vcov = vcovCR(fit, cluster = client, type = 'CR2'), test = 'Satterthwaite')")
add("cr2_empty_level", "E1", call2, "", "nobs", nobs(fit))
for (i in seq_len(nrow(ct))) {
  nm <- names(coef(fit))[i]
  add("cr2_empty_level", "E1", call2, nm, "estimate", ct$beta[i])
  add("cr2_empty_level", "E1", call2, nm, "se_CR2", ct$SE[i])
  add("cr2_empty_level", "E1", call2, nm, "df_satterthwaite_CR2", ct$df_Satt[i])
  add("cr2_empty_level", "E1", call2, nm, "p_satterthwaite_CR2", ct$p_Satt[i])
}
hyp <- list(programme = grep("^programme", names(coef(fit))),
            time_x_programme = grep("^time:programme", names(coef(fit))))
for (h in names(hyp)) {
  w <- Wald_test(fit, constraints = constrain_zero(hyp[[h]]), vcov = V, test = "HTZ")
  lab <- paste0("H:", h, " [", paste(names(coef(fit))[hyp[[h]]], collapse = ";"), "=0]")
  add("cr2_empty_level", "E1", call2, lab, "wald_HTZ_F", w$Fstat)
  add("cr2_empty_level", "E1", call2, lab, "wald_HTZ_df_denom", w$df_denom)
  add("cr2_empty_level", "E1", call2, lab, "wald_HTZ_p", w$p_val)
}

# (c) constant outcome: what lme4 does
cst <- growth
cst$outcome <- 50
call <- "lmer(outcome ~ time + (1 + time | client), data = cst)"
msgs <- character(0)
res <- tryCatch(withCallingHandlers(eval(parse(text = call)),
    warning = function(w) { msgs <<- c(msgs, one_line(conditionMessage(w))); invokeRestart("muffleWarning") },
    message = function(m) { msgs <<- c(msgs, one_line(conditionMessage(m))); invokeRestart("muffleMessage") }),
  error = function(e) e)
if (inherits(res, "error")) {
  add("growth_a_constant", "K1", call, "", "error", NA,
      note = paste0("outcome set to 50 for every row; lme4 stops: ", one_line(conditionMessage(res)),
                    if (length(msgs)) paste0(" (before: ", paste(msgs, collapse = " | "), ")") else ""))
} else {
  sat <- tryCatch(summary(res)$coefficients, error = function(e) NULL)
  add("growth_a_constant", "K1", call, "", "fit_messages", paste(msgs, collapse = " | "),
      note = paste0("outcome set to 50 for every row; lme4 returns a fit with these warnings",
                    if (!is.null(sat) && "df" %in% colnames(sat))
                      paste0("; lmerTest Satterthwaite df of time: ", sprintf("%.6g", sat["time", "df"])) else ""))
  add("growth_a_constant", "K1", call, "", "sigma", sigma(res))
}

# (d) CR2 HTZ clamp (clubSandwich's Hotelling_Tsq: delta = pmax((eta - q + 1) / eta, 0))
call <- "lm(outcome ~ time * fidelity + age, data = growth)"
fit <- eval(parse(text = call))
V <- vcovCR(fit, cluster = growth$programme, type = "CR2")
call2 <- paste(call, "; Wald_test(fit, constrain_zero(...), vcov = vcovCR(fit, cluster = programme, type = 'CR2'), test = 'HTZ')")
hyp <- list(all_slopes = 2:5, fidelity = c(3, 5))
for (h in names(hyp)) {
  w <- Wald_test(fit, constraints = constrain_zero(hyp[[h]]), vcov = V, test = "HTZ")
  lab <- paste0("H:", h, " [", paste(names(coef(fit))[hyp[[h]]], collapse = ";"), "=0]")
  add("growth_a", "H1", call2, lab, "wald_HTZ_F", w$Fstat)
  add("growth_a", "H1", call2, lab, "wald_HTZ_delta", w$delta)
  add("growth_a", "H1", call2, lab, "wald_HTZ_df_denom", w$df_denom)
  add("growth_a", "H1", call2, lab, "wald_HTZ_p", w$p_val)
}

out <- do.call(rbind, rows)
write.csv(out, "tests/multilevel/data/multilevel_edge_r.csv", row.names = FALSE)
print(out[, c("dataset", "model_id", "term", "quantity", "value")], right = FALSE)
