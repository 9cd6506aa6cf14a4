#!/usr/bin/env python3
"""Refuse to deliver a commit that did not come from a merged, reviewed pull request.

Usage: .github/scripts/reviewed-pr.py OWNER/REPO SHA

cd.yml runs this before anything is promoted, so a direct push to the default
branch (an admin's bypass, a token's push) cannot reach production: the branch
ruleset asks for a review, this proves one happened for the very commit CD is
about to promote. Asked of GitHub's API through `gh` (GH_TOKEN, with
pull-requests: read):

- ``repos/OWNER/REPO/commits/SHA/pulls``: a pull request that is merged and whose
  merge commit is SHA (a squash, a rebase or a merge commit: what the merge pushed);
- ``repos/OWNER/REPO/pulls/N/reviews``: at least one reviewer other than the pull
  request's author whose last decisive review (approve, request changes, dismissed)
  is an approval of the pull request's last commit, the one that was merged.

Exit 0 with one line naming the pull request and its approvers; exit 1 with one
line on stderr saying why not, when any of it does not hold or GitHub cannot be
asked (no answer is no proof); exit 2 on bad arguments. Standard library only: it
runs before the environment is built.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

# Review states that decide a reviewer's verdict; a later one replaces an earlier one
# (COMMENTED and PENDING change nothing), as GitHub counts approvals.
DECISIVE = frozenset({"APPROVED", "CHANGES_REQUESTED", "DISMISSED"})


class Refused(Exception):
    """Why the commit is not delivered: the one line printed."""


def api(endpoint: str) -> list[Any]:
    """Every item of a paginated list endpoint (``gh api --paginate`` prints one JSON
    array per page, back to back)."""
    done = subprocess.run(
        ["gh", "api", "--paginate", endpoint], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        detail = " ".join(done.stderr.split()) or f"exit {done.returncode}"
        raise Refused(f"GitHub's API did not answer {endpoint} ({detail}): no proof of a review")
    items: list[Any] = []
    decoder = json.JSONDecoder()
    text, position = done.stdout.strip(), 0
    try:
        while position < len(text):
            page, position = decoder.raw_decode(text, position)
            if not isinstance(page, list):
                raise ValueError("not a list")
            items.extend(page)
            while position < len(text) and text[position].isspace():
                position += 1
    except ValueError as exc:
        raise Refused(f"GitHub's API answered {endpoint} with no list ({exc})") from None
    return items


def login(item: Any) -> str:
    return str((item.get("user") or {}).get("login", "")) if isinstance(item, dict) else ""


def check(repo: str, sha: str) -> str:
    """The line saying which reviewed pull request ``sha`` came from; Refused if none."""
    pulls = api(f"repos/{repo}/commits/{sha}/pulls")
    merged = [
        p
        for p in pulls
        if isinstance(p, dict) and p.get("merged_at") and p.get("merge_commit_sha") == sha
    ]
    if not merged:
        raise Refused(
            f"{sha[:12]} is not the merge commit of a merged pull request (a direct push?): "
            "only a reviewed pull request's merge reaches production"
        )
    pull = merged[0]
    number, author, head = pull["number"], login(pull), (pull.get("head") or {}).get("sha")
    verdicts: dict[str, dict[str, Any]] = {}
    for review in api(f"repos/{repo}/pulls/{number}/reviews"):
        if isinstance(review, dict) and review.get("state") in DECISIVE:
            verdicts[login(review)] = review
    approvals = {who: r for who, r in verdicts.items() if r["state"] == "APPROVED"}
    others = {who: r for who, r in approvals.items() if who != author}
    if not others:
        by = " (approved only by its author)" if approvals else ""
        raise Refused(
            f"pull request #{number} (by {author}) was merged without an approving review "
            f"by someone other than its author{by}"
        )
    current = sorted(who for who, r in others.items() if r.get("commit_id") == head)
    if not current:
        raise Refused(
            f"pull request #{number}: its approvals ({', '.join(sorted(others))}) are of an "
            f"earlier commit than its last, {str(head)[:12]}, which was merged unreviewed"
        )
    approvers = ", ".join(current)
    return f"{sha[:12]} is the merge of pull request #{number} by {author}, approved by {approvers}"


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not re.fullmatch(r"[\w.-]+/[\w.-]+", argv[0]):
        print(f"usage: {sys.argv[0]} OWNER/REPO SHA", file=sys.stderr)
        return 2
    repo, sha = argv
    if not re.fullmatch(r"[0-9a-f]{40}", sha):
        print(
            f"usage: {sys.argv[0]} OWNER/REPO SHA (a 40-digit commit id, not {sha!r})",
            file=sys.stderr,
        )
        return 2
    try:
        print(f"cd: {check(repo, sha)}")
    except Refused as refused:
        print(f"cd: refusing to promote {sha[:12]}: {refused}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
