#!/usr/bin/env bash
# check_format.sh — every .c/.h file follows the committed .clang-format.
#
# Lists the files that are not formatted, with the diff clang-format would
# apply (the first lines of it), and exits 1; `make format` fixes them. Skips,
# with a notice, when clang-format is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang-format >/dev/null 2>&1; then
    echo "check_format: clang-format not found; skipped (apt-get install clang-format)"
    exit 0
fi

mapfile -t files < <(find include src tools tests examples bench fuzz \
    -type f \( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)

# One clang-format run over every file (a process per file cost 30 s): each
# misformatted line is reported as "FILE:LINE:COL: error: ...", from which
# the files are taken.
bad=()
if ! report=$(clang-format --dry-run --Werror "${files[@]}" 2>&1); then
    mapfile -t bad < <(printf '%s\n' "$report" |
        sed -nE 's/^(.+):[0-9]+:[0-9]+: (error|warning): .*/\1/p' | sort -u)
    if [[ ${#bad[@]} -eq 0 ]]; then
        printf '%s\n' "$report" | head -n 20 >&2
        echo "check_format: clang-format failed" >&2
        exit 1
    fi
fi

if [[ ${#bad[@]} -eq 0 ]]; then
    echo "check_format: ${#files[@]} files formatted ($(clang-format --version))"
    exit 0
fi

for f in "${bad[@]}"; do
    clang-format "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - || true
done | head -n 200
echo "check_format: ${#bad[@]} of ${#files[@]} files not formatted; run 'make format':" >&2
printf '    %s\n' "${bad[@]}" >&2
exit 1
