# Makefile — short commands over CMake, which does the building.
#
#   make            configure build/ (RelWithDebInfo) and build the library
#                   and the examples
#   make demo       build, then run the tour of the examples
#   make check      every test and check (scripts/check.sh), as CI runs it
#   make bench      Release build in build-bench/, then bench/run.py
#                   (ONLY="<id> ..." runs only those figures)
#   make install    install into PREFIX (default /usr/local; DESTDIR works)
#   make format     clang-format every .c/.h in place
#   make fuzz       run each fuzz target FUZZ_SECONDS seconds (default 60)
#   make clean      remove every build directory
#
# build/ has no tests, so that `make` and `make demo` need only a C compiler,
# cmake and make; the tests are built by `make check` (in build-check/).
# CMAKE_FLAGS adds options to the build/ configuration.

# The sub-makes that cmake --build runs need not announce their directories.
MAKEFLAGS += --no-print-directory

PREFIX ?= /usr/local
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
JOBS := $(shell nproc)
SOURCE_DIRS := include src tools tests examples bench fuzz
CONFIGURE := cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMP_BUILD_TESTS=OFF \
    -DMP_BUILD_BENCH=OFF $(CMAKE_FLAGS)

.PHONY: all demo check bench install format fuzz clean

all:
	$(CONFIGURE)
	cmake --build build -j $(JOBS)

demo: all
	cmake --build build --target demo

check:
	bash scripts/check.sh

bench:
	@if ! command -v gnuplot >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "bench: installing gnuplot for the chart"; \
	    apt-get update </dev/null && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y --no-install-recommends gnuplot-nox </dev/null \
	    || echo "bench: gnuplot not installed; no chart"; \
	fi
	cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DMP_BUILD_TESTS=OFF \
	    -DMP_BUILD_EXAMPLES=OFF
	cmake --build build-bench -j $(JOBS)
	python3 bench/run.py --build build-bench $(foreach id,$(ONLY),--only $(id))

# The install prefix is also given at configure time, because the pkg-config
# file records it then.
install:
	$(CONFIGURE) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build build -j $(JOBS)
	cmake --install build --prefix $(PREFIX)

format:
	find $(SOURCE_DIRS) -type f \( -name '*.c' -o -name '*.h' \) -print0 \
	    | xargs -0 clang-format -i

fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) MP_FUZZ_REQUIRED=1 bash scripts/check.sh fuzz

clean:
	rm -rf build build-check build-asan build-tsan build-fuzz build-bench
