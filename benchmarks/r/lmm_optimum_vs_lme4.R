# REML criterion of lme4 with tight optimiser control on simulated design-A / design-C
# data sets (written by lmm_optimum_vs_lme4.py). Usage:
#   Rscript lmm_optimum_vs_lme4.R out.csv file1.csv file2.csv ...
# Files whose name contains "_C_" are fitted with y ~ time + (1|programme) + (1|client),
# the others with y ~ time + (1|programme) + (1 + time|client).
suppressPackageStartupMessages(library(lme4))
ctl <- lmerControl(optimizer = "nloptwrap",
                   optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-14,
                                  ftol_rel = 1e-15, maxeval = 1e5))
args <- commandArgs(trailingOnly = TRUE)
out <- NULL
for (f in args[-1]) {
  d <- read.csv(f)
  fo <- if (grepl("_C_", basename(f))) y ~ time + (1 | programme) + (1 | client) else
    y ~ time + (1 | programme) + (1 + time | client)
  m <- suppressWarnings(suppressMessages(lmer(fo, data = d, control = ctl)))
  out <- rbind(out, data.frame(file = basename(f), REMLcrit = REMLcrit(m),
                               theta = paste(formatC(getME(m, "theta"), digits = 17,
                                                     format = "g"), collapse = ";"),
                               singular = isSingular(m)))
}
con <- file(args[1], "w")
writeLines(c(
  "# lme4 REML criteria; written by benchmarks/r/lmm_optimum_vs_lme4.R",
  sprintf("# %s; lme4 %s; Matrix %s; nloptr %s", R.version.string, packageVersion("lme4"),
          packageVersion("Matrix"), packageVersion("nloptr")),
  "# lmerControl(optimizer='nloptwrap', optCtrl=list(xtol_abs=1e-12, ftol_abs=1e-14, xtol_rel=1e-14, ftol_rel=1e-15, maxeval=1e5))"),
  con)
close(con)
suppressWarnings(write.table(out, args[1], sep = ",", row.names = FALSE, append = TRUE,
                             qmethod = "double"))
