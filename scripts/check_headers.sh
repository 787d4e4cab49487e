#!/usr/bin/env bash
# check_headers.sh — every public header compiles on its own, as C11 and as
# C++11, with strict warnings as errors.
#
# A header that relies on its includer (a missing #include, a type used before
# it is declared), that breaks C++ (no extern "C", a C-only construct) or that
# warns under a user's -Wpedantic fails here. Each header is also included
# twice to check its include guard.
#
# Environment: CC (default cc), CXX (default c++).
set -euo pipefail
cd "$(dirname "$0")/.."

cc=${CC:-cc}
cxx=${CXX:-c++}
c_flags=(-std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wundef -Werror)
cxx_flags=(-std=c++11 -Wall -Wextra -Wpedantic -Wshadow -Wundef -Werror)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mapfile -t headers < <(cd include && ls multiproc.h multiproc/*.h)
failed=()
for h in "${headers[@]}"; do
    printf '#include <%s>\n#include <%s>\ntypedef int mp_check_headers_dummy;\n' \
        "$h" "$h" >"$tmp/tu.c"
    if ! "$cc" "${c_flags[@]}" -Iinclude -fsyntax-only "$tmp/tu.c"; then
        failed+=("$h (C11)")
    fi
    if ! "$cxx" "${cxx_flags[@]}" -Iinclude -fsyntax-only -x c++ "$tmp/tu.c"; then
        failed+=("$h (C++11)")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "check_headers: these headers do not compile on their own:" >&2
    printf '    %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "check_headers: ${#headers[@]} headers compile alone as C11 ($cc) and C++11 ($cxx)"
