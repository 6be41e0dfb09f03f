# Reference values of lme4 / lmerTest / pbkrtest for the boundary-fit test of the
# power engine (tests/power/test_power_fastlmm.py::test_boundary_fits_match_lmertest_and_pbkrtest).
#
# Usage: Rscript benchmarks/r/fastlmm_boundary_reference.R <dir>
# Reads every sim_*.csv in <dir> (written by fastlmm_boundary_reference.py), fits
# y ~ time + (1 | programme) + (1 + time | client) by REML with tight nloptwrap control
# and writes <dir>/r_reference.csv: REMLcrit, the estimate of `time`, its SE, the
# Satterthwaite df (lmerTest), the Kenward-Roger SE and df (pbkrtest via lmerTest),
# preceded by '#' comment lines with the R and package versions.
# R is a peer for reference values only: neither the package nor its tests call it.
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest)})
ctl <- lmerControl(optimizer = "nloptwrap",
                   optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14, xtol_rel = 1e-14,
                                  ftol_rel = 1e-15, maxeval = 1e5))
args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[1] else "tests/power/data/boundary_reference"
files <- sort(list.files(dir, pattern = "^sim_.*\\.csv$", full.names = TRUE))
out <- NULL
for (f in files) {
  d <- read.csv(f)
  m <- suppressWarnings(suppressMessages(
    lmer(y ~ time + (1 | programme) + (1 + time | client), data = d, control = ctl)))
  cs <- summary(m, ddf = "Satterthwaite")$coefficients
  ck <- summary(m, ddf = "Kenward-Roger")$coefficients
  out <- rbind(out, data.frame(
    file = basename(f), REMLcrit = REMLcrit(m), estimate = cs["time", "Estimate"],
    se = cs["time", "Std. Error"], df_satterthwaite = cs["time", "df"],
    se_kr = ck["time", "Std. Error"], df_kr = ck["time", "df"],
    singular = isSingular(m),
    theta = paste(formatC(getME(m, "theta"), digits = 17, format = "g"), collapse = ";")))
}
target <- file.path(dir, "r_reference.csv")
con <- file(target, "w")
writeLines(c(
  "# lme4/lmerTest/pbkrtest reference values; written by benchmarks/r/fastlmm_boundary_reference.R",
  sprintf("# %s; lme4 %s; lmerTest %s; pbkrtest %s; Matrix %s; nloptr %s", R.version.string,
          packageVersion("lme4"), packageVersion("lmerTest"), packageVersion("pbkrtest"),
          packageVersion("Matrix"), packageVersion("nloptr")),
  "# lmerControl(optimizer='nloptwrap', optCtrl=list(xtol_abs=1e-12, ftol_abs=1e-14, xtol_rel=1e-14, ftol_rel=1e-15, maxeval=1e5))"),
  con)
close(con)
suppressWarnings(write.table(out, target, sep = ",", row.names = FALSE, append = TRUE,
                             qmethod = "double"))
cat("wrote", target, "\n")
