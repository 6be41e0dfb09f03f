# Reference values for tests/multilevel/test_ar1_edge_cases.py (nlme). Run from the project root:
#   Rscript benchmarks/r/ar1_edge_cases.R
# R and nlme are peers for reference values only; nothing in the package or its tests runs R.
suppressPackageStartupMessages(library(nlme))
rows <- list()
add <- function(ds, model, call, term, quantity, value, note = "") {
  rows[[length(rows) + 1]] <<- data.frame(dataset = ds, model_id = model, r_call = call,
    term = term, quantity = quantity, value = sprintf("%.17g", value), note = note,
    package_version = paste0("nlme_", packageVersion("nlme"), "; ", R.version.string),
    stringsAsFactors = FALSE)
}
d <- read.csv("tests/multilevel/data/ar1_random_slope.csv")
for (ds in unique(d$dataset)) {
  g <- d[d$dataset == ds, ]
  call <- "lme(outcome ~ time, random = ~ 1 + time | client, correlation = corAR1(form = ~ occasion | client), method = 'REML', data = g)"
  fit <- try(eval(parse(text = call)), silent = TRUE)
  if (inherits(fit, "try-error")) {
    add(ds, "R1", call, "", "error", NA, note = gsub("[\r\n]+", " ", conditionMessage(attr(fit, "condition"))))
    next
  }
  vc <- as.matrix(getVarCov(fit))
  add(ds, "R1", call, "", "logLik_REML", as.numeric(logLik(fit)))
  add(ds, "R1", call, "client:(Intercept)", "sd", sqrt(vc[1, 1]))
  add(ds, "R1", call, "client:time", "sd", sqrt(vc[2, 2]))
  add(ds, "R1", call, "client:(Intercept),time", "cor", vc[1, 2] / sqrt(vc[1, 1] * vc[2, 2]))
  add(ds, "R1", call, "Residual", "sd", fit$sigma)
  add(ds, "R1", call, "", "phi", coef(fit$modelStruct$corStruct, unconstrained = FALSE))
  for (nm in names(fixef(fit))) add(ds, "R1", call, nm, "estimate", fixef(fit)[[nm]])
}
da <- read.csv("../shared/reference/multilevel/data/dense_ar1.csv")
call <- "lme(outcome ~ time + age, random = ~ 1 | programme/client, correlation = corAR1(form = ~ occasion | programme/client), method = 'REML', data = da)"
fit <- eval(parse(text = call))
add("dense_ar1", "R2_nested", call, "", "logLik_REML", as.numeric(logLik(fit)))
add("dense_ar1", "R2_nested", call, "", "phi", coef(fit$modelStruct$corStruct, unconstrained = FALSE))
add("dense_ar1", "R2_nested", call, "Residual", "sd", fit$sigma)

add("dense_ar1", "R2_nested", call, "programme:(Intercept)", "sd", fit$sigma * sqrt(as.matrix(fit$modelStruct$reStruct[["programme"]])[1, 1]))
add("dense_ar1", "R2_nested", call, "client:(Intercept)", "sd", fit$sigma * sqrt(as.matrix(fit$modelStruct$reStruct[["client"]])[1, 1]))
tt <- summary(fit)$tTable
for (nm in rownames(tt)) {
  add("dense_ar1", "R2_nested", call, nm, "estimate", tt[nm, "Value"])
  add("dense_ar1", "R2_nested", call, nm, "se", tt[nm, "Std.Error"])
}
out <- do.call(rbind, rows)
write.csv(out, "tests/multilevel/data/ar1_edge_nlme.csv", row.names = FALSE)
print(out[out$quantity %in% c("cor", "logLik_REML", "sd"), c("dataset", "term", "quantity", "value")])
