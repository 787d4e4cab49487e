#!/usr/bin/env bash
# check.sh — everything `make check` (and so CI, through .ci/run) verifies.
#
# Steps, in order, stopping at the first failure:
#   deps     the Debian packages (installed when root, else the apt-get line)
#   build    -Werror build in build-check/ and the whole ctest suite
#   asan     ASan+UBSan build in build-asan/ and the whole ctest suite but
#            the tests labelled "netns" (the tests across simulated hosts,
#            tests/net/: network behaviour, partitions and delays, which
#            instrumentation does not change; the library code they run is
#            the distributed pool's, which the Redis suites run under ASan)
#   tsan     TSan build in build-tsan/ and the whole ctest suite but the
#            tests labelled "notsan", "netns" and "method" (the suites'
#            runs under the spawn and forkserver start methods: the build
#            and asan steps run them)
#   format   clang-format check of every .c/.h
#   layers   each module of src/ uses only the modules below it in
#            docs/layers.txt, and no circle (scripts/check_layers.sh; no build)
#   headers  each public header compiles alone as C11 and as C++11
#   snippets every ```c block of README.md is a complete program, and each of
#            them and every example compiles with -Wall -Wextra -Werror
#            (scripts/check_snippets.sh; no build)
#   man      the man pages in man/man3 match the headers and every MP_API
#            function has one (scripts/gen_man.py --check), groff renders
#            them without a warning and man -l the module pages
#            (scripts/check_man.sh; no build)
#   fuzz     each libFuzzer target for FUZZ_SECONDS (default 10) s, if clang works
#   install  install build-check/ into a temporary prefix and use it from a
#            CMake project and through pkg-config
# then a summary with the time of each step.
#
# Usage: scripts/check.sh [STEP...]   (default: all steps, in the order above)
# Environment: FUZZ_SECONDS (10); MP_FUZZ_REQUIRED=1 makes a missing clang or
# libFuzzer a failure instead of a skip (make fuzz sets it).
set -euo pipefail
cd "$(dirname "$0")/.."

all_steps=(deps build asan tsan format layers headers snippets man fuzz install)
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-10}
# A step that exits with this status was skipped (automake's convention).
skip=77

notes=$(mktemp -d)
trap 'rm -rf "$notes"' EXIT

# Configures and builds one build directory: configure DIR [cmake options].
# Every option is given, defaults first and the step's own after them (the
# last -D wins), so that a cache left by an older run cannot change the build.
configure_and_build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMP_WERROR=OFF -DMP_SANITIZE= \
        -DMP_BUILD_TESTS=ON -DMP_BUILD_EXAMPLES=ON -DMP_BUILD_BENCH=ON -DMP_BUILD_FUZZ=OFF "$@"
    cmake --build "$dir" -j "$jobs"
}

# Runs ctest in a build directory, keeps its result line for the summary.
# Every test binary has its own TIMEOUT; --timeout is the bound for any test
# registered without one. A suite that registers no test is a failure.
# The array ctest_wrapper, when set, is a command that ctest runs under.
ctest_wrapper=()
run_ctest() {
    local dir=$1 step=$2
    shift 2
    (cd "$dir" && "${ctest_wrapper[@]}" ctest --output-on-failure -j 2 --timeout 600 \
        --no-tests=error "$@") | tee "$dir/ctest.log"
    grep -E 'tests passed|tests failed' "$dir/ctest.log" | tail -n 1 >"$notes/$step" || true
}

step_deps() {
    bash scripts/deps.sh
}

step_build() {
    configure_and_build build-check -DMP_WERROR=ON
    run_ctest build-check build
}

step_asan() {
    configure_and_build build-asan -DMP_SANITIZE=address,undefined -DMP_WERROR=ON \
        -DMP_BUILD_BENCH=OFF
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build-asan asan -LE netns
}

step_tsan() {
    # Every test runs here, the Criterion binaries included (tests/CMakeLists.txt
    # says how Criterion is made to start under TSan), except those labelled
    # "notsan", which tests/CMakeLists.txt lists with the reason.
    configure_and_build build-tsan -DMP_SANITIZE=thread -DMP_BUILD_BENCH=OFF
    # TSan's runtime expects the program's memory in fixed ranges; with the
    # high mmap ASLR entropy of recent kernels (vm.mmap_rnd_bits > 28) a
    # library can land elsewhere and TSan dies with "unexpected memory
    # mapping" before main. setarch -R turns ASLR off for ctest and,
    # inherited through fork and exec, for every test it runs. We always use
    # it when it works rather than guess from the sysctl, since which
    # entropy breaks depends on the compiler's TSan version.
    if command -v setarch >/dev/null 2>&1 && setarch "$(uname -m)" -R true 2>/dev/null; then
        ctest_wrapper=(setarch "$(uname -m)" -R)
    else
        echo "tsan: setarch -R unavailable; running with ASLR on (vm.mmap_rnd_bits=$(
            cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo '?'))"
    fi
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
        run_ctest build-tsan tsan -LE 'notsan|netns|method'
}

step_format() {
    if ! command -v clang-format >/dev/null 2>&1; then
        echo "format: clang-format not installed; skipped"
        return $skip
    fi
    bash scripts/check_format.sh
}

step_layers() {
    bash scripts/check_layers.sh
}

step_headers() {
    bash scripts/check_headers.sh
}

step_snippets() {
    bash scripts/check_snippets.sh
}

step_man() {
    bash scripts/check_man.sh
}

# Skips (or fails, when MP_FUZZ_REQUIRED=1) when no clang can build a
# libFuzzer program: clang may be installed without its clang-rt package.
fuzz_unavailable() {
    echo "fuzz: $*"
    if [[ ${MP_FUZZ_REQUIRED:-0} == 1 ]]; then
        return 1
    fi
    echo "fuzz: skipped"
    return $skip
}

# Runs one fuzz target on a copy of its corpus (fuzz/corpus/<name without
# fuzz_>/), so that the inputs it finds do not land in the repository.
# Crash reproducers go to build-fuzz/artifacts/.
run_fuzzer() {
    local bin=$1 name work log
    name=$(basename "$bin")
    name=${name#fuzz_}
    work=$(mktemp -d)
    log=build-fuzz/fuzz_$name.log
    if [[ -d fuzz/corpus/$name ]]; then
        cp -R "fuzz/corpus/$name/." "$work/"
    fi
    mkdir -p build-fuzz/artifacts
    echo "fuzz: $name for ${fuzz_seconds}s, $(find "$work" -type f | wc -l) corpus inputs"
    if ! "$bin" -max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=4096 \
        -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$name-" \
        "$work" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $name FAILED (full log: $log; reproducer in build-fuzz/artifacts/)" >&2
        rm -rf "$work"
        return 1
    fi
    grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/fuzz: $name: /" || true
    rm -rf "$work"
}

step_fuzz() {
    if ! command -v clang >/dev/null 2>&1; then
        fuzz_unavailable "clang not installed (apt-get install clang libclang-rt-dev)"
        return
    fi
    local probe
    probe=$(mktemp -d)
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
        >"$probe/probe.c"
    if ! clang -fsanitize=fuzzer,address "$probe/probe.c" -o "$probe/probe" 2>"$probe/log"; then
        cat "$probe/log"
        rm -rf "$probe"
        fuzz_unavailable "clang cannot build a libFuzzer program" \
            "(apt-get install libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev)"
        return
    fi
    rm -rf "$probe"

    configure_and_build build-fuzz -DCMAKE_C_COMPILER=clang -DMP_BUILD_FUZZ=ON \
        -DMP_BUILD_TESTS=OFF -DMP_BUILD_EXAMPLES=OFF -DMP_BUILD_BENCH=OFF
    local bins=() bin
    for bin in build-fuzz/fuzz/fuzz_*; do
        if [[ -f $bin && -x $bin ]]; then
            bins+=("$bin")
        fi
    done
    if [[ ${#bins[@]} -eq 0 ]]; then
        echo "fuzz: MP_BUILD_FUZZ=ON built no build-fuzz/fuzz/fuzz_* program" >&2
        return 1
    fi
    for bin in "${bins[@]}"; do
        run_fuzzer "$bin"
    done
    echo "${#bins[@]} target(s), ${fuzz_seconds}s each" >"$notes/fuzz"
}

step_install() {
    bash scripts/check_install.sh build-check
}

# ---------------------------------------------------------------------------

steps=("$@")
if [[ ${#steps[@]} -eq 0 ]]; then
    steps=("${all_steps[@]}")
fi
for s in "${steps[@]}"; do
    if [[ " ${all_steps[*]} " != *" $s "* ]]; then
        echo "check: unknown step '$s' (steps: ${all_steps[*]})" >&2
        exit 2
    fi
done

results=()
fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

summary() {
    local total=$(($(date +%s) - start)) line
    echo
    echo "==================== check summary ===================="
    for line in "${results[@]}"; do
        echo "$line"
    done
    echo "check: $1 in $(fmt_time "$total")"
}

start=$(date +%s)
for s in "${steps[@]}"; do
    echo
    echo "==================== check: $s ===================="
    t0=$(date +%s)
    # The step runs in a subshell outside any condition, with set -e turned
    # back on inside it, so that its first failing command ends it (in a
    # condition such as `if step`, bash would ignore set -e in the step).
    set +e
    (
        set -e
        "step_$s"
    )
    rc=$?
    set -e
    elapsed=$(fmt_time $(($(date +%s) - t0)))
    note=$(cat "$notes/$s" 2>/dev/null || true)
    case $rc in
    0) status=ok ;;
    "$skip") status=skipped ;;
    *) status=FAILED ;;
    esac
    results+=("$(printf '  %-8s %-8s %7s  %s' "$status" "$s" "$elapsed" "$note")")
    if [[ $status == FAILED ]]; then
        summary "FAILED at step '$s' (exit status $rc)"
        exit 1
    fi
done
summary "passed (${#steps[@]} of ${#all_steps[@]} steps run)"
