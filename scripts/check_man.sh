#!/usr/bin/env bash
# check_man.sh — the man pages say what the headers say, and render.
#
#   - scripts/gen_man.py --check: man/man3 holds exactly the pages the
#     headers give (one per MP_API function, one per module header, and
#     multiproc(3)), each identical to what the script makes now; a public
#     function without a page or without a comment fails;
#   - groff renders every page without a warning (-ww), and man -l renders
#     the library page and each module page, when groff and man-db are
#     installed (scripts/deps.sh installs them).
#
# Usage: scripts/check_man.sh   (after changing a header: scripts/gen_man.py)
set -euo pipefail
cd "$(dirname "$0")/.."

python3 scripts/gen_man.py --check

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! command -v groff >/dev/null 2>&1; then
    echo "check_man: groff not installed; pages not rendered (apt-get install groff-base)"
else
    groff -man -Tutf8 -ww -z man/man3/*.3 2>"$tmp/groff.log" || true
    if [[ -s $tmp/groff.log ]]; then
        cat "$tmp/groff.log" >&2
        echo "check_man: FAILED: groff warns about the pages above" >&2
        exit 1
    fi
    echo "check_man: groff renders $(find man/man3 -name '*.3' | wc -l) pages without a warning"
fi
if ! command -v man >/dev/null 2>&1; then
    echo "check_man: man not installed; man -l not tried (apt-get install man-db)"
    exit 0
fi
n=0
for page in man/man3/multiproc.3 man/man3/multiproc_*.3; do
    MANWIDTH=80 man --warnings -l "$page" >"$tmp/out" 2>"$tmp/err" || true
    title=$(basename "$page" .3)
    if [[ -s $tmp/err ]] || ! grep -q "^NAME" "$tmp/out" || ! grep -Eq "^ *$title +- " "$tmp/out"; then
        cat "$tmp/err" >&2
        echo "check_man: FAILED: man -l $page does not render its NAME section cleanly" >&2
        exit 1
    fi
    n=$((n + 1))
done
echo "check_man: man -l renders the library page and the $((n - 1)) module pages"
