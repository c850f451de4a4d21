#!/usr/bin/env bash
# Latency by percentile from parley-load histograms (--csv), as a PNG: one
# line per run, the x axis in "nines" (50%, 90%, 99%, 99.9% ... equally
# spaced), the y axis in milliseconds on a log scale. Needs gnuplot
# (Debian: gnuplot-nox).
#
#   loadtest/plot.sh OUT.png TITLE LABEL=HIST.csv [LABEL=HIST.csv ...]
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 OUT.png TITLE LABEL=HIST.csv ..." >&2; exit 2; }
out=$1 title=$2
shift 2
command -v gnuplot >/dev/null || { echo "plot: gnuplot not installed" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
plots=()
i=0
for arg in "$@"; do
  label=${arg%%=*} csv=${arg#*=}
  [ -s "$csv" ] || { echo "plot: no histogram in $csv" >&2; exit 1; }
  # cumulative share p up to each bucket's upper bound, at x = 1/(1-p)
  # (capped so the last bucket, p = 1, still shows); drawn vertical-first,
  # so the line at p is the bound the p-th percentile falls under
  python3 - "$csv" >"$work/$i.dat" <<'PY'
import csv, sys
rows = [(int(r["upper_us"]), int(r["count"])) for r in csv.DictReader(open(sys.argv[1]))]
total = sum(c for _, c in rows)
if not total: sys.exit("plot: empty histogram")
seen = 0
print("1 %.3f" % (min(rows)[0] / 1000))  # from the 0th percentile
for upper, c in sorted(rows):
    seen += c
    p = seen / total
    print("%.6f %.3f" % (1 / max(1 - p, 1 / (total * 10)), upper / 1000))
PY
  plots+=("'$work/$i.dat' using 1:2 with fsteps linewidth 2 title '${label//\'/}'")
  i=$((i + 1))
done
{
  echo "set terminal png size 900,540"
  echo "set output '$out'"
  echo "set title '${title//\'/}'"
  echo "set logscale xy"
  echo "set xlabel 'percentile'"
  echo "set ylabel 'latency (ms)'"
  echo "set xtics ('0%%' 1, '50%%' 2, '90%%' 10, '99%%' 100, '99.9%%' 1000, '99.99%%' 10000, '99.999%%' 100000)"
  echo "set grid"
  echo "set key left top"
  (IFS=,; echo "plot ${plots[*]}")
} >"$work/plot.gp"
gnuplot "$work/plot.gp"
echo "plot: $out"
