#!/usr/bin/env bash
# A/B on one machine in one run: a benchmark against two commits, interleaved.
#
#   bench/compare.sh [-n ROUNDS] [-f REGEX]... [--own-bench] OLD NEW BENCH [BENCH ARGS...]
#
#   bench/compare.sh -n 3 -f 'clients: ([0-9,.]+) tickets/s' 7b66e0b HEAD \
#       bench/bench_journal.py --n 500 --seconds 2
#
# OLD and NEW are checked out (detached) into temporary git worktrees; nothing is set up
# in them: both run with this shell's Python (PYTHON, else the active virtualenv, else
# the repository's .venv or its main worktree's, else python3). The benchmark runs OLD,
# NEW, OLD, NEW… ROUNDS times each (default 3), so both meet the same machine, load and
# disk. Each -f REGEX
# (one capture group: a number, commas allowed) is read from every run's output; without
# -f the figure is the run's wall time in seconds. Printed: a row per round, the median
# of each side and the ratio NEW/OLD. A run that exits non-zero (its checks failed,
# bench/checks.py) voids the comparison: its output is shown and the script exits 1.
#
# The same benchmark measures both: this tree's bench/ is copied over each worktree's
# (a fix to a benchmark applies to both sides), unless --own-bench (each commit's own).
# docs/performance.md, "Before and after: bench/compare.sh".
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

rounds=3
own_bench=0
figures=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        -n) rounds="$2"; shift 2 ;;
        -f) figures+=("$2"); shift 2 ;;
        --own-bench) own_bench=1; shift ;;
        -h|--help) usage ;;
        --) shift; break ;;
        -*) echo "compare.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done
[[ $# -ge 3 ]] || usage
old="$1"; new="$2"; bench="$3"; shift 3
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: -n wants a positive number" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [[ -n "${PYTHON:-}" ]]; then py="$PYTHON"
elif [[ -n "${VIRTUAL_ENV:-}" ]]; then py="$VIRTUAL_ENV/bin/python"
elif [[ -x "$here/.venv/bin/python" ]]; then py="$here/.venv/bin/python"
elif common="$(cd "$(git rev-parse --git-common-dir)/.." && pwd)" \
        && [[ -x "$common/.venv/bin/python" ]]; then py="$common/.venv/bin/python"
else py="$(command -v python3)"; fi

old_sha="$(git rev-parse --verify "$old^{commit}")"
new_sha="$(git rev-parse --verify "$new^{commit}")"
work="$(mktemp -d "${TMPDIR:-/tmp}/paidui-compare-XXXXXX")"
cleanup() {
    for side in old new; do
        [[ -d "$work/$side" ]] && git worktree remove --force "$work/$side" >/dev/null 2>&1
    done
    rm -rf "$work"
}
trap cleanup EXIT

for side in old new; do
    sha="$old_sha"; [[ "$side" == new ]] && sha="$new_sha"
    git worktree add --detach --quiet "$work/$side" "$sha"
    if [[ "$own_bench" == 0 ]]; then
        cp -r "$here/bench/." "$work/$side/bench/"
    fi
    [[ -f "$work/$side/$bench" ]] || { echo "compare.sh: $bench not in $side ($sha)" >&2; exit 2; }
done

"$py" -c "import sys; sys.path.insert(0, '$here'); from bench.checks import machine_line; print(machine_line())"
echo "OLD = $old (${old_sha:0:9}), NEW = $new (${new_sha:0:9}); $rounds rounds, interleaved"
echo "run: $py $bench $*"

for ((r = 1; r <= rounds; r++)); do
    for side in old new; do
        log="$work/$side-$r.log"
        start=$EPOCHREALTIME
        status=0
        (cd "$work/$side" && "$py" "$bench" "$@") >"$log" 2>&1 || status=$?
        echo "$start $EPOCHREALTIME" >"$log.wall"
        if [[ "$status" != 0 ]]; then
            echo "FAIL: round $r, $side (${side^^} = $([[ $side == old ]] && echo "$old" || echo "$new")) exited $status:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        echo "  round $r $side: done" >&2
    done
done

"$py" - "$work" "$rounds" "${figures[@]}" <<'PY'
import re
import statistics
import sys
from pathlib import Path

work, rounds, patterns = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]


def figures(side: str, r: int) -> list[float]:
    if not patterns:
        start, end = (work / f"{side}-{r}.log.wall").read_text().split()
        return [float(end) - float(start)]
    text = (work / f"{side}-{r}.log").read_text(errors="replace")
    out = []
    for pattern in patterns:
        m = re.search(pattern, text)
        if m is None:
            sys.exit(f"FAIL: -f {pattern!r} not found in the output of {side}, round {r}")
        out.append(float(m.group(1).replace(",", "")))
    return out


names = patterns or ["wall time, s"]
table = {side: [figures(side, r) for r in range(1, rounds + 1)] for side in ("old", "new")}
for i, name in enumerate(names):
    print(f"\nfigure: {name}")
    print(f"| round | OLD | NEW | NEW/OLD |\n|---|---|---|---|")
    for r in range(rounds):
        o, n = table["old"][r][i], table["new"][r][i]
        print(f"| {r + 1} | {o:,.6g} | {n:,.6g} | {n / o if o else float('nan'):.2f} |")
    o = statistics.median(row[i] for row in table["old"])
    n = statistics.median(row[i] for row in table["new"])
    print(f"| median | {o:,.6g} | {n:,.6g} | **{n / o if o else float('nan'):.2f}** |")
PY
