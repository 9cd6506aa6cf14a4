#!/usr/bin/env bash
# Continuous delivery and rollback, as the cd.yml, ct.yml and rollback.yml
# workflows run them, and as anyone can run them by hand.
#
# Usage: .github/scripts/release.sh promote  REMOTE BRANCH
#        .github/scripts/release.sh rollback REMOTE BRANCH [VERSION]
#        .github/scripts/release.sh retrain  REMOTE BRANCH
#
#   promote   make the committed model's bytes available (dvc pull from the DVC
#             remote, else dvc repro, which remakes them byte for byte), then
#             `mlops gate --check` and `mlops promote` on the committed gate
#             report: a new version in prod.
#             A failed gate exits 1 and changes nothing.
#   rollback  `mlops rollback` (to VERSION, or to the last functional version):
#             the bytes come from the DVC cache, else the remote, else a replay.
#   retrain   `dvc repro` on the data the params name today; when the model
#             changed, commit the pipeline's outputs on a new branch
#             (retrain/<date>) and push it, for a pull request to review.
#   REMOTE    git remote (name or URL) that gets the branch and the tags
#   BRANCH    branch the new commit goes to (for retrain: the base of the new branch)
#
# `mlops` and `dvc` come from PATH (`make env` builds them into .venv/bin).
# Nothing is pushed unless every step before succeeded.
set -euo pipefail

usage() {
    echo "usage: $0 promote|retrain REMOTE BRANCH | rollback REMOTE BRANCH [VERSION]" >&2
    exit 2
}

[ "$#" -ge 3 ] || usage
action=$1
remote=$2
branch=$3
version=${4:-}
case "$action" in
    promote | retrain) [ "$#" -eq 3 ] || usage ;;
    rollback) [ "$#" -le 4 ] || usage ;;
    *) usage ;;
esac

cd "$(git rev-parse --show-toplevel)"

# Fetch what the DVC remote has (if one is configured); what it lacks, dvc
# repro (or the rollback's replay) makes again. A remote that cannot be used
# (unreachable, credentials refused) stops the run here, before anything
# changed, with one line naming it: reproducing everything would only fail at
# the push.
pull() {
    local errors name
    [ -n "$(dvc remote list)" ] || return 0
    if ! errors=$(dvc pull --allow-missing 2>&1 >/dev/null); then
        name=$(dvc remote default || true)
        errors=$(grep -m1 '^ERROR: ' <<<"$errors" || echo "ERROR: no reason given")
        echo "error: DVC remote '$name' ($(dvc config "remote.$name.url")): dvc pull failed: ${errors#ERROR: }" >&2
        exit 1
    fi
}

# Push the branch and every tag GTO created (registrations, stages,
# deprecations) in one atomic push: the remote gets all of them or none, so its
# manifest never names a version whose tags it lacks.
publish() {
    git push --atomic "$remote" "HEAD:refs/heads/$1" --tags
}

case "$action" in
    promote)
        pull
        mlops recover
        # The model's bytes, remade if the remote lacks them (train is
        # deterministic: the same md5 as the committed dvc.lock records).
        dvc repro train
        # The committed gate report decides, on the committed dvc.lock: not the
        # files the repro above refreshed.
        git checkout -- .
        mlops gate --check
        mlops promote
        publish "$branch"
        ;;
    rollback)
        if [ -n "$version" ]; then
            mlops rollback --to "$version"
        else
            mlops rollback
        fi
        publish "$branch"
        ;;
    retrain)
        pull
        # Data the project imports (`dvc import-url`, `dvc import`): fetch what changed.
        imports=$(git ls-files -z -- '*.dvc' | xargs -0 -r grep -l '^deps:' || true)
        if [ -n "$imports" ]; then
            # shellcheck disable=SC2086 # one path per word
            dvc update $imports
        fi
        mlops recover
        dvc repro
        # Propose only what a reviewer should see: new data, a new model (DVC
        # outputs, against the committed dvc.lock) or new metrics (in git, as
        # reports/metrics.json is not cached). A rerun that changed none of them
        # (a comment edited in a module moves dvc.lock's dep hashes, not the
        # outputs) opens no pull request.
        if git cat-file -e "HEAD:dvc.lock" 2>/dev/null &&
            [ "$(dvc diff --json --targets data/raw/dataset.parquet models/model.skops)" = "{}" ] &&
            git diff --quiet HEAD -- reports/metrics.json; then
            echo "retrain: data, model and metrics unchanged: no branch"
            exit 0
        fi
        new_branch="retrain/$(date -u +%Y%m%d-%H%M%S)"
        git switch -q -c "$new_branch"
        git add -A -- dvc.lock reports models data
        git commit -q -m "Retrain on the data of $(date -u +%Y-%m-%d)"
        if [ -n "$(dvc remote list)" ]; then
            dvc push
        fi
        publish "$new_branch"
        echo "retrain: pushed $new_branch (base $branch)"
        if [ -n "${GITHUB_OUTPUT:-}" ]; then
            echo "branch=$new_branch" >>"$GITHUB_OUTPUT"
        fi
        ;;
esac
