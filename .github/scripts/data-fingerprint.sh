#!/usr/bin/env bash
# Has the data source changed? The data-fingerprint.yml workflow runs this weekly.
#
# Usage: .github/scripts/data-fingerprint.sh
#
# For each file the project imports (`dvc import-url`, `dvc import`: a .dvc file in
# git with `deps:`), `dvc update --no-download` asks the source for its fingerprint
# now (an ETag, an md5, a checksum, a git revision; nothing is downloaded) and
# compares it with the one the committed .dvc file records. A change opens one
# GitHub issue titled with the new fingerprint, naming the old one; a later run
# that finds the same change finds that issue (open or closed) and opens none.
# The .dvc files are left as they were: retraining on the new data is ct.yml's job
# (`dvc update`, `dvc repro`, a pull request), or yours.
#
# Exit 0 when every source answered (changed or not), 1 when a source could not
# be reached or an issue could not be opened (the others are still checked).
# `dvc`, `python` (with PyYAML) and `gh` (GH_TOKEN) come from PATH; the job
# summary gets each verdict when $GITHUB_STEP_SUMMARY is set.
set -euo pipefail

[ "$#" -eq 0 ] || {
    echo "usage: $0" >&2
    exit 2
}

cd "$(git rev-parse --show-toplevel)"

say() {
    echo "data-fingerprint: $1"
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
        printf '%s\n\n' "$1" >>"$GITHUB_STEP_SUMMARY"
    fi
}

# fingerprint FILE: the source and its fingerprint a .dvc file records, as
# "SOURCE<TAB>FINGERPRINT" (the dependency's hash fields and size; for `dvc
# import`, the repository's locked revision).
fingerprint() {
    python - "$1" <<'PY'
import sys

import yaml

(dep,) = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))["deps"]
repo = dep.get("repo") or {}
source = f"{repo['url']}:{dep['path']}" if repo else dep["path"]
fields = {"rev_lock": repo["rev_lock"]} if repo else dep
print(source, ", ".join(f"{k} {v}" for k, v in fields.items() if k not in ("path", "hash")), sep="\t")
PY
}

imports=$(git ls-files -z -- '*.dvc' | xargs -0 -r grep -l '^deps:' || true)
if [ -z "$imports" ]; then
    say "no data imported with \`dvc import-url\` or \`dvc import\`: nothing to fingerprint"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=0
for file in $imports; do
    IFS=$'\t' read -r source old < <(fingerprint "$file" 2>/dev/null) || {
        echo "data-fingerprint: $file: no import's source and fingerprint in it (one deps entry)" >&2
        rc=1
        continue
    }
    cp "$file" "$tmp/recorded.dvc"
    if ! dvc update --no-download -q "$file"; then
        cp "$tmp/recorded.dvc" "$file"
        echo "data-fingerprint: $file: could not ask $source for its fingerprint (dvc update --no-download failed)" >&2
        rc=1
        continue
    fi
    IFS=$'\t' read -r _ new < <(fingerprint "$file")
    cp "$tmp/recorded.dvc" "$file"
    if [ "$new" = "$old" ]; then
        say "$file: $source unchanged ($old)"
        continue
    fi
    title="Data source changed: $file ($new)"
    # Any issue, open or closed, already about this change: said once.
    known=$(gh issue list --state all --limit 1000 --search '"Data source changed" in:title' --json title,url |
        python -c 'import json, sys; print(next((i["url"] for i in json.load(sys.stdin) if i["title"] == sys.argv[1]), ""))' "$title") || {
        echo "data-fingerprint: $file: could not list the repository's issues (gh issue list failed)" >&2
        rc=1
        continue
    }
    if [ -n "$known" ]; then
        say "$file: $source changed ($old -> $new); already reported: $known"
        continue
    fi
    cat >"$tmp/body.md" <<EOF
The data source of \`$file\` changed since the commit that recorded it.

| | fingerprint |
|---|---|
| recorded in \`$file\` | $old |
| the source now | $new |

Source: \`$source\`

Nothing was downloaded or retrained. To train on the new data, run the CT workflow
(Actions > CT > Run workflow: \`dvc update\`, \`dvc repro\`, and a pull request when the
model changed), or locally \`dvc update $file && make repro\`. If the change is not
expected, check the source before the next scheduled retraining.

_Opened by the data-fingerprint workflow (.github/scripts/data-fingerprint.sh)._
EOF
    if url=$(gh issue create --title "$title" --body-file "$tmp/body.md"); then
        say "$file: $source changed ($old -> $new); issue: $url"
    else
        echo "data-fingerprint: $file: could not open the issue (gh issue create failed)" >&2
        rc=1
    fi
done
exit "$rc"
