#!/usr/bin/env bash
# Production monitoring and the response to it, as the monitor.yml workflow runs
# them, and as anyone can run them by hand in a fresh checkout.
#
# Usage: .github/scripts/monitor.sh REMOTE BRANCH [ROWS]
#
#   REMOTE  git remote (name or URL) that gets the commits, the tags and a branch
#   BRANCH  branch the decision goes to (for a retraining: the pull request's base)
#   ROWS    judge only the last ROWS logged rows (default: every row of the
#           production model)
#
# Environment:
#   PREDICTION_LOGS_URL  where the serving hosts sync params.yaml serve.log_dir
#                        (s3://, gs://, azure://, a local folder: anything
#                        `dvc get-url` reads). Unset: nothing to do, exit 0.
#   LABELS_URL           optional: a CSV or Parquet file of request_id and the
#                        target, the outcomes known so far
#   GH_TOKEN, CT_TOKEN   for `gh`: the alert's issue (GH_TOKEN), the retraining
#                        pull request (CT_TOKEN if set, as ct.yml)
#
# Steps: fetch the logs into serve.log_dir (and the labels), `mlops monitor`,
# then `mlops respond --no-promote`, which records its decision in
# monitoring/decisions.jsonl (committed with the verdict: monitoring/latest.md for
# people, monitoring/latest.json for machines) and acts on it:
#   none      push the decision commit
#   alert     push it; open an issue with reports/monitoring/alert.md
#   rollback  respond rolled production back: push the branch and the tags in
#             one atomic push (as `release.sh rollback`)
#   retrain   respond committed the retrained model (not promoted): that commit
#             goes on a new branch retrain/monitor-<time>, the decision commit
#             on BRANCH without it, both in one atomic push; a pull request
#             opens with the gate report and the verdict; CD promotes on merge
#
# Exit 0 when the response was carried out, 1 when it failed (the decision is
# still pushed) or monitor itself failed, 2 on bad input or arguments (nothing
# pushed). `mlops`, `dvc`,
# `python` (with mlops installed) and `gh` come from PATH; $GITHUB_STEP_SUMMARY
# gets the report when set.
set -euo pipefail

usage() {
    echo "usage: $0 REMOTE BRANCH [ROWS]" >&2
    exit 2
}

fail() {
    echo "monitor: $1" >&2
    exit 2
}

[ "$#" -ge 2 ] && [ "$#" -le 3 ] || usage
remote=$1
branch=$2
rows=${3:-}
[ -n "$remote" ] && [ -n "$branch" ] || usage
case "$rows" in
    *[!0-9]* | 0*) usage ;; # a positive whole number, or nothing
esac

cd "$(git rev-parse --show-toplevel)"

# summary: stdin to the job summary on GitHub, else nowhere (stdout has it).
summary() {
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        cat >>"$GITHUB_STEP_SUMMARY"
    else
        cat >/dev/null
    fi
}

# say TEXT: a line for the log and the summary.
say() {
    echo "monitor: $1"
    printf '%s\n\n' "$1" | summary
}

if [ -z "${PREDICTION_LOGS_URL:-}" ]; then
    say "no prediction logs to read: set the repository variable PREDICTION_LOGS_URL to where the serving hosts sync serve.log_dir (README: Monitoring on GitHub)"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The logs go where params.yaml says serve and predict write them: monitor reads
# them there, and so do respond's retraining (the labelled rows) and the canary.
log_dir=$(python -c 'from mlops.io.files import load_params; print(load_params().serve.log_dir)')
if [ -n "$(ls -A "$log_dir" 2>/dev/null)" ]; then
    fail "$log_dir already holds prediction logs; this script fetches them from PREDICTION_LOGS_URL: run it in a fresh checkout"
fi
dvc get-url "$PREDICTION_LOGS_URL" "$tmp/logs" ||
    fail "could not fetch the prediction logs from PREDICTION_LOGS_URL ($PREDICTION_LOGS_URL)"
mkdir -p "$(dirname "$log_dir")"
rm -rf "$log_dir"
mv "$tmp/logs" "$log_dir"

labels=
if [ -n "${LABELS_URL:-}" ]; then
    labels="$tmp/$(basename "$LABELS_URL")"
    dvc get-url "$LABELS_URL" "$labels" || fail "could not fetch the labels from LABELS_URL ($LABELS_URL)"
fi

# Exit 1 is a breach, for respond to act on; 2 is bad input (nothing written).
# No report (bad input, or monitor failed): nothing to act on, nor a stale one.
report=reports/monitoring/monitoring
rm -f "$report.json" "$report.md"
rc=0
mlops monitor ${labels:+--labels "$labels"} ${rows:+--last "$rows"} || rc=$?
[ "$rc" -le 1 ] && [ -f "$report.json" ] || exit "$rc"
summary <"$report.md"
if [ "$rc" -eq 1 ] && [ -n "$(dvc remote list)" ]; then
    # A breach may retrain: the pipeline's outputs from the DVC remote, not remade.
    dvc pull --allow-missing || echo "note: dvc pull failed; missing outputs are reproduced" >&2
fi

decision=reports/monitoring/decision.json
rm -f "$decision"
start=$(git rev-parse HEAD)
rc=0
mlops respond --no-promote ${labels:+--labels "$labels"} || rc=$?
# No decision recorded (bad input, exit 2): nothing to push.
[ -f "$decision" ] || exit "$rc"

field() {
    python -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$decision" "$1"
}
action=$(field action)
done_text=$(field done)

# The verdict goes into the decision's commit, for people (latest.md: monitoring.md
# up to its per-check sections; the PR report quotes it from the base branch) and
# for machines (latest.json: the model judged, the window, when, each check's
# verdict; `mlops audit` reads it as the scheduled run's evidence).
mkdir -p monitoring
sed '/^## /,$d' "$report.md" >monitoring/latest.md
python - "$report.json" monitoring/latest.json <<'PY'
import json, sys

report = json.load(open(sys.argv[1], encoding="utf-8"))
summary = {k: report[k] for k in ("monitored_at", "model_version", "window", "rows", "breach")}
summary["findings"] = [{k: f[k] for k in ("check", "breach", "summary")} for f in report["findings"]]
with open(sys.argv[2], "w", encoding="utf-8") as out:
    out.write(json.dumps(summary, indent=2) + "\n")
PY
git add monitoring/latest.md monitoring/latest.json
git commit -q --amend --no-edit --only -- monitoring/latest.md monitoring/latest.json

say "decision: $action: $done_text"

# Push BRANCH, the tags and any other REFSPECs in one atomic push: the remote gets
# all of them or none, so its manifest never names a version whose tags it lacks.
publish() {
    git push --atomic "$remote" "HEAD:refs/heads/$branch" "$@" --tags
}

commit=$(field commit)
proposal=
if [ "$action" = retrain ] && [ "$commit" != "$start" ]; then
    # respond committed the retrained model (not promoted), then the decision on
    # it. BRANCH gets the decision alone; the model goes on a branch of its own,
    # for review (a failed retraining: nowhere).
    if [ "$rc" -eq 0 ]; then
        proposal="retrain/monitor-$(date -u +%Y%m%d-%H%M%S)"
        git branch "$proposal" "$commit"
        {
            printf 'Proposed by the monitor workflow: %s\n\n' "$done_text"
            cat monitoring/latest.md
            printf '\n'
            cat reports/gate.md
        } >"$tmp/body.md"
        if [ -n "$(dvc remote list)" ]; then
            dvc push # the new data version and model, for the PR report and CD
        fi
    fi
    git rebase -q --onto "$start" "$commit"
fi

if [ -n "$proposal" ]; then
    publish "refs/heads/$proposal:refs/heads/$proposal"
    url=$(GH_TOKEN=${CT_TOKEN:-${GH_TOKEN:-}} gh pr create --base "$branch" --head "$proposal" \
        --title "Retrain on production data: $proposal" --body-file "$tmp/body.md")
    say "pull request: $url"
else
    publish
fi
if [ "$action" = alert ] && [ "$rc" -eq 0 ]; then
    title=$(sed -n '1s/^# //p' reports/monitoring/alert.md)
    url=$(gh issue create --title "$title" --body-file reports/monitoring/alert.md)
    say "issue: $url"
fi
exit "$rc"
