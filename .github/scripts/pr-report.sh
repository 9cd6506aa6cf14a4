#!/usr/bin/env bash
# Backticks in the single-quoted printf formats below are markdown code spans.
# shellcheck disable=SC2016
#
# Build the markdown pull-request report that .github/workflows/pr-report.yml
# posts with CML: metrics and params diffs against the PR's base branch, the
# gate's verdict (reports/gate.md), the data tests (reports/validation.md,
# folded; the feature-cost table with this runner's measured latencies from
# reports/runs/validate.md, untracked because timings vary), production
# monitoring as the base branch last recorded it (the last
# decision of monitoring/decisions.jsonl and the verdict table
# monitoring/latest.md, both committed by .github/scripts/monitor.sh) and the
# pipeline's PNG plots as images.
#
# Usage: .github/scripts/pr-report.sh BASE_REF OUTPUT
#   BASE_REF  git revision to compare the workspace with, e.g. origin/main
#   OUTPUT    markdown file to write, e.g. report.md
#
# Run it from anywhere inside the repository, after `dvc repro` (make repro)
# has refreshed the workspace metrics. It compares BASE_REF with the
# *workspace*, exactly like `dvc metrics diff BASE_REF`.
#
# Environment:
#   DVC     dvc executable (default: <repo>/.venv/bin/dvc if present, else dvc)
#   PYTHON  python used to inspect dvc's JSON output (default: the python next
#           to the dvc executable if present, else python3)
#
# The first PR of a project has no dvc.lock / metrics on its base branch yet:
# dvc then prints an empty "old" column (or an error), and the report says
# "no metrics on the base branch yet" instead of failing.
set -euo pipefail

usage() {
    echo "usage: $0 BASE_REF OUTPUT" >&2
    exit 2
}

[ "$#" -eq 2 ] || usage
base_ref=$1
output=$2
[ -n "$base_ref" ] && [ -n "$output" ] || usage

# Resolve OUTPUT against the caller's directory before moving to the repo root.
case "$output" in
    /*) ;;
    *) output="$PWD/$output" ;;
esac

repo_root=$(git rev-parse --show-toplevel)
cd "$repo_root"

if [ -z "${DVC:-}" ]; then
    if [ -x .venv/bin/dvc ]; then
        DVC="$repo_root/.venv/bin/dvc"
    else
        DVC=dvc
    fi
fi
if [ -z "${PYTHON:-}" ]; then
    dvc_dir=$(dirname "$(command -v "$DVC" || echo "$DVC")")
    if [ -x "$dvc_dir/python" ]; then
        PYTHON="$dvc_dir/python"
    else
        PYTHON=python3
    fi
fi

if ! base_sha=$(git rev-parse --verify --quiet "${base_ref}^{commit}"); then
    echo "error: base ref '${base_ref}' is not a commit in this repository" >&2
    echo "       (on CI, check out with fetch-depth: 0 so the base branch is fetched)" >&2
    exit 1
fi
head_sha=$(git rev-parse HEAD)

tmp_dir=$(mktemp -d)
trap 'rm -rf "$tmp_dir"' EXIT

# has_old_values: read a `dvc metrics|params diff --json` document on stdin and
# succeed if at least one value exists on the base side ("old" not null).
has_old_values() {
    "$PYTHON" -c '
import json
import sys

text = sys.stdin.read().strip()
data = json.loads(text) if text else {}
found = any(
    isinstance(entry, dict) and entry.get("old") is not None
    for per_file in (data or {}).values()
    if isinstance(per_file, dict)
    for entry in per_file.values()
)
sys.exit(0 if found else 1)
'
}

# table_has_rows FILE: succeed if the markdown table in FILE has data rows
# (dvc prints only the header and the separator when nothing changed).
table_has_rows() {
    [ "$(grep -c '^|' "$1" || true)" -gt 2 ]
}

# print_table FILE: print a dvc markdown table followed by exactly one blank line.
print_table() {
    awk 'NF { for (; blank > 0; blank--) print ""; print; next } { blank++ }' "$1"
    printf '\n'
}

# details TITLE FILE: append FILE (dvc's stderr) as a collapsed block, if any.
details() {
    if [ -s "$2" ]; then
        printf '<details><summary>%s</summary>\n\n```text\n' "$1"
        cat "$2"
        printf '```\n\n</details>\n\n'
    fi
}

# section KIND: write the "metrics" or "params" section to stdout.
section() {
    local kind=$1 rc=0
    local json="$tmp_dir/$kind.json" md="$tmp_dir/$kind.md" err="$tmp_dir/$kind.err"

    "$DVC" "$kind" diff --json --all "$base_ref" >"$json" 2>"$err" || rc=$?
    if [ "$rc" -ne 0 ] || ! has_old_values <"$json"; then
        # First PR (nothing on the base branch yet) or dvc could not read the
        # base revision: say so, and show the PR's own values.
        echo "note: no ${kind} on the base branch ${base_ref} yet" >&2
        printf 'There are no %s on the base branch yet (`%s`), so there is nothing to compare with.\n\n' \
            "$kind" "$base_ref"
        if [ "$kind" = metrics ]; then
            "$DVC" metrics show --md >"$md" 2>>"$err" || true
            if table_has_rows "$md"; then
                printf 'Metrics in this pull request:\n\n'
                print_table "$md"
            fi
        else
            # Every knob is new: list them, folded away.
            "$DVC" params diff --md --all "$base_ref" >"$md" 2>>"$err" || true
            if table_has_rows "$md"; then
                printf '<details><summary>Params in this pull request</summary>\n\n'
                print_table "$md"
                printf '</details>\n\n'
            fi
        fi
        details "dvc output" "$err"
        return 0
    fi

    : >"$err"
    "$DVC" "$kind" diff --md "$base_ref" >"$md" 2>"$err"
    if table_has_rows "$md"; then
        print_table "$md"
    else
        printf 'No %s changed compared with `%s`.\n\n' "$kind" "$base_ref"
    fi
    details "dvc warnings" "$err"
}

# include TITLE FILE open|folded: a section with a markdown report of the
# pipeline (the gate's verdict, the data tests), folded away when asked.
include() {
    local title=$1 file=$2 how=$3
    printf '## %s\n\n' "$title"
    if [ ! -s "$file" ]; then
        printf '_`%s` was not written by this run._\n\n' "$file"
    elif [ "$how" = folded ]; then
        printf '<details><summary>%s</summary>\n\n' "$file"
        demote "$file"
        printf '\n</details>\n\n'
    else
        demote "$file"
        printf '\n'
    fi
}

# demote [FILE]: its headings (or stdin's) two levels down, under this report's
# "##" sections.
demote() {
    sed -E 's/^(#+) /\1## /' "$@"
}

# monitoring: the production model as the base branch's last monitoring run saw
# it (production is what the base branch serves, whatever this PR changes).
monitoring() {
    local decisions=monitoring/decisions.jsonl last
    printf '## Production monitoring\n\n'
    last=$(git show "$base_sha:$decisions" 2>/dev/null | tail -n 1) || true
    if [ -z "$last" ]; then
        printf '_No monitoring run yet (no `%s` on `%s`)._\n\n' "$decisions" "$base_ref"
        return 0
    fi
    "$PYTHON" -c '
import json
import sys

d = json.loads(sys.argv[1])
when, model, action, done = (d.get(k) for k in ("decided_at", "model_version", "action", "done"))
why = "; ".join(d.get("reasons") or []) or "no rule of respond.policy held"
status = "Done" if d.get("ok") else "FAILED"
print(f"Last decision on `{sys.argv[2]}` ({when}, model {model}): **{action}**: {why}. {status}: {done}\n")
' "$last" "$base_ref"
    git show "$base_sha:monitoring/latest.md" 2>/dev/null | demote || true
    printf '\n'
}

# plots: every PNG the pipeline drew, as images linked relative to OUTPUT
# (cml comment uploads local images that a report links to).
plots() {
    local found=0 png rel
    for png in reports/plots/*.png reports/tuning/*.png; do
        [ -f "$png" ] || continue
        found=1
        rel=$("$PYTHON" -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
            "$repo_root/$png" "$(dirname "$output")")
        printf '![%s](%s)\n\n' "$(basename "$png" .png)" "$rel"
    done
    if [ "$found" -eq 0 ]; then
        printf '_No plots were drawn by this run._\n'
    fi
}

{
    printf '# MLOps report\n\n'
    printf 'Pull request workspace (`%s`, after `dvc repro`) compared with the base branch `%s` (`%s`).\n\n' \
        "${head_sha:0:12}" "$base_ref" "${base_sha:0:12}"
    # A pull request that lowers the ML Test Score says so first (audit.md's "> " lines,
    # written only when a test dropped against the base's audit).
    if [ -f reports/audit.md ] && grep -q '^> ' reports/audit.md; then
        grep '^> ' reports/audit.md
        printf '\n'
    fi
    printf '## Metrics\n\n'
    section metrics
    printf '## Params\n\n'
    section params
    include "Gate" reports/gate.md open
    include "ML Test Score" reports/audit.md folded
    include "Data validation" reports/validation.md folded
    include "Feature cost against value, with this runner's latencies" reports/runs/validate.md folded
    monitoring
    printf '## Plots\n\n'
    plots
} >"$output"

echo "wrote ${output}" >&2
