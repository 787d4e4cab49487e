#!/usr/bin/env bash
# check_install.sh — what `make install` produces works for a user.
#
# Installs an already built tree into a temporary prefix, then checks that:
#   - the operations tool bin/multiproc (built with the Redis backend) runs
#     and prints its usage;
#   - every exported function has a man page in share/man/man3, which man
#     finds by the function's name;
#   - the shared library has a SONAME and exports only the public mp_ API
#     (no internal mp__ symbol, nothing unprefixed), and the static library
#     defines no unprefixed global symbol (it would clash in a user's link);
#   - a CMake project (tests/install) finds the package with find_package and
#     links and runs against multiproc::multiproc (shared) and multiproc::static;
#   - the same program builds with `pkg-config --cflags --libs multiproc` and
#     runs with LD_LIBRARY_PATH;
#   - the exported CMake package names no path of this machine's hiredis
#     (multiproc::static finds it through pkg-config, PkgConfig::HIREDIS);
#   - the README's short example, built with the README's own rpath line
#     (the line of README.md that starts with `cc demo.c` and has -rpath),
#     runs without LD_LIBRARY_PATH and prints its hello.
# Each consumer program must print OK.
#
# Usage: scripts/check_install.sh [BUILD_DIR]   (default: build-check)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-build-check}

if [[ ! -f $build/cmake_install.cmake ]]; then
    echo "check_install: $build is not a configured build directory" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

say() { echo "check_install: $*"; }
die() {
    echo "check_install: FAILED: $*" >&2
    exit 1
}

# Runs a consumer program and checks that its last line is OK.
run_consumer() {
    local out
    out=$("$@") || die "$1 exited with status $?"
    echo "$out" | sed 's/^/    /'
    [[ $(echo "$out" | tail -n 1) == OK ]] || die "$1 did not print OK"
}

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
    { cat "$tmp/install.log"; die "cmake --install"; }
so=$(find "$prefix" -name libmultiproc.so -print -quit)
[[ -n $so ]] || die "no libmultiproc.so installed under $prefix"
libdir=$(dirname "$so")
[[ -f $libdir/libmultiproc.a ]] || die "no libmultiproc.a beside $so"
say "installed into ${libdir#"$prefix"/} and include/"

# The operations tool, installed with the Redis backend (a build without
# hiredis has no tool): it must run from the prefix and print its usage.
if [[ -f $build/tools/multiproc/multiproc ]]; then
    tool=$prefix/bin/multiproc
    [[ -x $tool ]] || die "the multiproc tool is not installed in $prefix/bin"
    "$tool" --help | grep -q '^usage: multiproc' || die "multiproc --help prints no usage"
    status=0
    "$tool" >/dev/null 2>&1 || status=$?
    [[ $status == 2 ]] || die "multiproc without arguments exits $status, not 2 (usage)"
    say "tool: bin/multiproc --help runs"
fi

# The SONAME lets a program built against 0.1 run with any 0.x.
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[[ $soname == libmultiproc.so.* ]] || die "libmultiproc.so has no SONAME (got '$soname')"
say "SONAME $soname"

# Exported symbols: only mp_*, never the internal mp__*. The linker's own
# markers (_init, _edata, ...) are not ours and are ignored.
bad=$(nm -D --defined-only "$so" | awk '{print $NF}' |
    grep -Ev '^(_init|_fini|_edata|_end|__bss_start)$' |
    grep -Ev '^mp_[^_]' || true)
[[ -z $bad ]] || die "libmultiproc.so exports non-API symbols:"$'\n'"$bad"
say "$(nm -D --defined-only "$so" | grep -c ' mp_') exported symbols, all mp_"

# Every exported function has its man page in share/man/man3, and man finds
# it there by name.
mandir=$prefix/share/man
missing=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}' | grep '^mp_' |
    while read -r fn; do [[ -f $mandir/man3/$fn.3 ]] || echo "$fn"; done)
[[ -z $missing ]] || die "exported functions without a man page in $mandir/man3:"$'\n'"$missing"
if command -v man >/dev/null 2>&1; then
    MANWIDTH=80 man -M "$mandir" 3 mp_pool_map 2>/dev/null | grep -Eq '^ *mp_pool_map +- ' ||
        die "man -M $mandir mp_pool_map does not show its page"
fi
say "man pages: every exported function has one in share/man/man3"
bad=$(nm -g --defined-only "$libdir/libmultiproc.a" | awk 'NF == 3 {print $3}' |
    grep -Ev '^mp_' | sort -u || true)
[[ -z $bad ]] || die "libmultiproc.a defines global symbols without the mp_ prefix:"$'\n'"$bad"

# A CMake consumer, found from the prefix alone.
cmake -S "$root/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$tmp/consumer.log" ||
    { cat "$tmp/consumer.log"; die "configuring tests/install"; }
found=$(sed -n 's/^multiproc_DIR:PATH=//p' "$tmp/consumer/CMakeCache.txt")
[[ $found == "$prefix"/* ]] || die "find_package found $found, not the installed package"
cmake --build "$tmp/consumer" >"$tmp/consumer.log" ||
    { cat "$tmp/consumer.log"; die "building tests/install"; }
readelf -d "$tmp/consumer/consumer_shared" | grep -q "NEEDED.*\[$soname\]" ||
    die "consumer_shared does not link $soname"
say "CMake consumer (shared):"
run_consumer "$tmp/consumer/consumer_shared"
say "CMake consumer (static):"
run_consumer "$tmp/consumer/consumer_static"
targets=$(find "$prefix" -name 'multiprocTargets*.cmake')
if grep -n 'hiredis\.so\|/libhiredis' $targets; then
    die "the exported CMake package hard-codes a path of hiredis"
fi
if [[ -f $build/tools/multiproc/multiproc ]]; then
    grep -q 'PkgConfig::HIREDIS' $targets ||
        die "multiproc::static (Redis backend) does not name PkgConfig::HIREDIS"
    say "multiproc::static links hiredis through PkgConfig::HIREDIS"
fi

# A pkg-config consumer. The flags must point into the prefix: a .pc file
# that still names the configure-time prefix would silently use another
# installation.
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs multiproc) || die "pkg-config does not know multiproc"
say "pkg-config: $flags"
incdir=$(pkg-config --variable=includedir multiproc)
pc_libdir=$(pkg-config --variable=libdir multiproc)
[[ $(realpath -m "$incdir") == "$(realpath "$prefix/include")" &&
    $(realpath -m "$pc_libdir") == "$(realpath "$libdir")" ]] ||
    die "multiproc.pc does not point into the install prefix $prefix" \
        "(includedir=$incdir libdir=$pc_libdir)"
# shellcheck disable=SC2086 # the flags are meant to split
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$root/tests/install/main.c" $flags \
    -o "$tmp/pc_consumer" || die "compiling with the pkg-config flags"
say "pkg-config consumer:"
LD_LIBRARY_PATH=$libdir run_consumer "$tmp/pc_consumer"

# The README's example and build line, exactly as written there.
awk '/^```c[[:space:]]*$/ { n++; if (n == 1) { on = 1; next } } /^```/ { on = 0 } on' \
    "$root/README.md" >"$tmp/demo.c"
grep -q '^int main' "$tmp/demo.c" || die "no short example (first \`\`\`c block) in README.md"
line=$(grep -E '^cc demo\.c .*-rpath' "$root/README.md" | head -n 1)
[[ -n $line ]] || die "README.md has no 'cc demo.c ... -rpath ...' build line"
say "README line: $line"
out=$(cd "$tmp" && env -u LD_LIBRARY_PATH bash -c "$line" 2>&1) ||
    { echo "$out"; die "the README's build line failed"; }
echo "$out" | sed 's/^/    /'
[[ $out == "hello from "* ]] || die "the README's example printed '$out', not its hello"
readelf -d "$tmp/demo" | grep -Fq "[$pc_libdir]" ||
    die "the README's program records no rpath to $pc_libdir"

say "all good"
