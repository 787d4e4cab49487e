#!/usr/bin/env bash
# deps.sh — make sure the Debian packages that `make check` needs are there.
#
# As root, installs what is missing (apt-get, non-interactive). Otherwise
# prints the exact `sudo apt-get install ...` line and exits 1 if a required
# package is missing. Optional packages (fuzzing, formatting) only produce a
# notice when they cannot be installed.
set -euo pipefail

# The packages, one list. An entry is "package" (present when dpkg says it is
# installed) or "package:command" (present as soon as that command is on the
# PATH, so that a tool installed another way, e.g. python3 from pyenv, counts).
# Add new dependencies here. redis-server and libhiredis-dev: the Redis backend
# of the manager and its tests (a real server on 127.0.0.1). iproute2 (ip,
# tc): the distributed pool's tests across hosts (tests/net/, network
# namespaces). groff-base and man-db: the man step renders the man pages
# (groff, man -l).
MP_DEPS="cmake:cmake make:make gcc:gcc g++:g++ pkg-config:pkg-config python3:python3
libcriterion-dev redis-server:redis-server libhiredis-dev iproute2:tc groff-base:groff
man-db:man"

# Optional: clang with libFuzzer for the fuzz step, clang-format for the format
# check. The libFuzzer runtime is in the clang-rt package of the installed
# clang's major version (libclang-rt-14-dev on Debian 12), so it is worked out
# once clang is there.
MP_DEPS_OPTIONAL="clang:clang clang-format:clang-format"

clang_rt_package() {
    if command -v clang >/dev/null 2>&1; then
        echo "libclang-rt-$(clang -dumpversion | cut -d. -f1)-dev"
    fi
}

is_present() {
    local entry=$1 package=${1%%:*} cmd
    if [[ $entry == *:* ]]; then
        cmd=${entry#*:}
        command -v "$cmd" >/dev/null 2>&1 && return 0
    fi
    [[ $(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null) == installed ]]
}

# Prints the packages of a list that are missing, space separated.
missing_of() {
    local entry absent=()
    for entry in $1; do
        is_present "$entry" || absent+=("${entry%%:*}")
    done
    echo "${absent[*]}"
}

apt_install() {
    # shellcheck disable=SC2086 # the package list is meant to split
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $1 </dev/null
}

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "deps: not a Debian system (no dpkg-query); install by hand the equivalents of:" \
        "$MP_DEPS" >&2
    exit 0
fi

missing=$(missing_of "$MP_DEPS")
missing_optional=$(missing_of "$MP_DEPS_OPTIONAL $(clang_rt_package)")

# The tests across hosts delay packets with tc's netem qdisc; a kernel
# built without it (CONFIG_NET_SCH_NETEM) makes them emulate the latency
# in user space instead (tests/net/netns.sh), which is said here.
netem_notice() {
    [[ $(id -u) -eq 0 ]] && command -v tc >/dev/null 2>&1 || return 0
    if command -v modprobe >/dev/null 2>&1; then
        modprobe sch_netem 2>/dev/null || true
    fi
    local ns=mpdeps$$ err
    ip netns add "$ns" 2>/dev/null || return 0
    if ! err=$(tc -n "$ns" qdisc add dev lo root netem delay 1ms 2>&1); then
        echo "deps: notice: tc netem does not work here ($err): the kernel lacks sch_netem;" \
            "tests/net emulates the latency with a relay instead"
    fi
    ip netns del "$ns" 2>/dev/null || true
}

if [[ -z $missing && -z $missing_optional ]]; then
    echo "deps: all present"
    netem_notice
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    if [[ -n $missing_optional ]]; then
        echo "deps: notice: optional packages missing (the fuzz/format steps will be skipped):"
        echo "    sudo apt-get install -y --no-install-recommends $missing_optional"
    fi
    if [[ -n $missing ]]; then
        echo "deps: required packages missing; run:" >&2
        echo "    sudo apt-get install -y --no-install-recommends $missing" >&2
        exit 1
    fi
    exit 0
fi

echo "deps: installing: $missing $missing_optional"
DEBIAN_FRONTEND=noninteractive apt-get update </dev/null
if [[ -n $missing ]]; then
    apt_install "$missing"
fi
# Optional packages are best effort: a failure only skips the steps using them.
if [[ -n $missing_optional ]]; then
    apt_install "$missing_optional" || true
    # clang may only now be there, and with it the name of its clang-rt package.
    missing_optional=$(missing_of "$MP_DEPS_OPTIONAL $(clang_rt_package)")
    if [[ -n $missing_optional ]] && ! apt_install "$missing_optional"; then
        echo "deps: notice: optional packages not installed ($missing_optional);" \
            "the fuzz/format steps may be skipped" >&2
    fi
fi
missing=$(missing_of "$MP_DEPS")
if [[ -n $missing ]]; then
    echo "deps: still missing after apt-get: $missing" >&2
    exit 1
fi
echo "deps: all required packages present"
netem_notice
