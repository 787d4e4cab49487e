#!/usr/bin/env bash
# check_snippets.sh — the code a user copies compiles without a warning.
#
# Every ```c block of README.md must be a complete program (it has a main),
# and each of them, every examples/*.c and examples/distributed/*.c compiles
# with `cc -Wall -Wextra -Werror` against include/, as a user compiles a copy
# (the compiler's default dialect, no definition of the build's own). A block
# that is not a program fails the check: make it one, or show it as ```text.
#
# Usage: scripts/check_snippets.sh   (CC picks the compiler, default cc)
set -euo pipefail
cd "$(dirname "$0")/.."

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc=${CC:-cc}
flags=(-Wall -Wextra -Werror -Iinclude)

say() { echo "check_snippets: $*"; }

# Writes each ```c block of README.md to $tmp/readme_<line>.c, named by the
# line of its opening fence.
awk -v dir="$tmp" '
    /^```c[[:space:]]*$/ { out = sprintf("%s/readme_%04d.c", dir, NR); next }
    /^```/ && out != "" { close(out); out = ""; next }
    out != "" { print > out }
' README.md

failed=0
compile() {
    local src=$1 shown=$2
    if ! "$cc" "${flags[@]}" -c "$src" -o "$tmp/out.o" 2>"$tmp/log"; then
        cat "$tmp/log" >&2
        say "FAILED: $shown does not compile with ${flags[*]}" >&2
        failed=1
    fi
}

blocks=0
for src in "$tmp"/readme_*.c; do
    [[ -e $src ]] || continue
    blocks=$((blocks + 1))
    line=$(basename "$src" .c)
    line=$((10#${line#readme_}))
    if ! grep -Eq '^int main\(' "$src"; then
        say "FAILED: the \`\`\`c block at README.md:$line is not a complete program (no main)" >&2
        failed=1
        continue
    fi
    compile "$src" "the \`\`\`c block at README.md:$line"
done
if [[ $blocks -eq 0 ]]; then
    say "FAILED: README.md has no \`\`\`c block (is the extraction broken?)" >&2
    exit 1
fi

examples=0
for src in examples/*.c examples/distributed/*.c; do
    examples=$((examples + 1))
    compile "$src" "$src"
done

if [[ $failed -ne 0 ]]; then
    exit 1
fi
say "$blocks README blocks and $examples examples compile with ${flags[*]}"
