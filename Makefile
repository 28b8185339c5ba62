# mika: the two commands a newcomer needs.
#   make run   install what is missing, build, start the tracker on the embedded defaults
#   make test  install what is missing, build (plain and ASan+UBSan), run every test,
#              then the libFuzzer smoke run and memcheck (make valgrind)
#   make fuzz  every libFuzzer target for FUZZ_SECONDS each (docs/SECURITY.md)
#   make valgrind  unit tests, corpus replays and one daemon test under memcheck
#   make install   binary, example config, man pages, systemd unit (PREFIX, DESTDIR)
#   make deb       $(BUILD)/pkg/mika_<version>_<arch>.deb (debhelper)
#   make test-pkg  the systemd unit (verify, exposure), the Grafana dashboard's
#                  metrics, and the .deb in a chroot
#   make test-docker  the image, built with podman from a debootstrapped base
#   make test-arm64   cross build for arm64; the unit tests under qemu-user
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 3
VALGRIND_BUILD ?= build-valgrind
PREFIX ?= /usr/local
DESTDIR ?=
# The packaging tests share one debootstrapped bookworm tree (made once, a few
# minutes): make test-deb installs into a copy, make test-docker imports it.
PKG_DIR ?= $(BUILD)/pkg
ARM64_BUILD ?= build-arm64

.PHONY: all deps deps-test build build-asan run test test-plain test-asan fuzz fuzz-build \
	fuzz-smoke valgrind clean bench install deps-pkg deps-arm64 deb test-systemd test-deb \
	test-grafana test-pkg test-docker test-arm64

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

deps-pkg:
	@scripts/deps.sh pkg

deps-arm64:
	@scripts/deps.sh arm64

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps-test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DMIKA_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	./$(BUILD)/mika serve

# ctest prints its own totals; test-summary.sh adds each runner's summary
# line (cmocka, unittest, corpus replay) so CI shows the counts per test.
test: deps-test
	@/usr/bin/python3 tests/pkg/check_build_deps.py
	@$(MAKE) --no-print-directory build
	@$(MAKE) --no-print-directory build-asan
	@echo "== tests: plain build (unit, fuzz replay, integration, end-to-end) =="
	@rc=0; (cd $(BUILD) && ctest --output-on-failure -j $(JOBS)) || rc=$$?; \
		scripts/test-summary.sh $(BUILD); exit $$rc
	@echo "== tests: ASan+UBSan build (unit, fuzz replay, integration) =="
	@rc=0; (cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		MIKA_TEST_TIMEOUT_SCALE=3 ctest --output-on-failure -j $(JOBS) -LE e2e) || rc=$$?; \
		scripts/test-summary.sh $(ASAN_BUILD); exit $$rc
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory valgrind

# libFuzzer targets (clang, ASan+UBSan, coverage of the whole library).
fuzz-build: deps-test
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DMIKA_FUZZ=ON -DMIKA_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS) --target \
		$(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))

# Every target for FUZZ_SECONDS (default 10 minutes each), one after another.
fuzz: fuzz-build
	@echo "== fuzz: $(FUZZ_SECONDS) s per target =="
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# make test's short run of each target over its seed corpus.
fuzz-smoke: fuzz-build
	@echo "== tests: libFuzzer smoke, $(FUZZ_SMOKE_SECONDS) s per target =="
	@fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

# Memcheck over a plain Debug build (scripts/valgrind.sh): every unit test,
# every corpus replay and the daemon itself through the HTTP integration
# test. Any error or definite leak fails. make test runs it last.
valgrind: deps-test
	@cmake -S . -B $(VALGRIND_BUILD) -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(VALGRIND_BUILD) -j $(JOBS)
	@scripts/valgrind.sh $(VALGRIND_BUILD) $(JOBS)

# mika, opentracker and the nginx floor under the same load (docs/BENCHMARKS.md).
bench:
	@/usr/bin/python3 bench/run

# The build's install prefix is whatever PREFIX said last; make install
# always says it.
install: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) \
		$(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target mika man
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# The unit as packaged (prefix /usr): systemd-analyze verify and security.
test-systemd: deps-pkg
	@echo "== tests: systemd unit =="
	@cmake -S . -B $(PKG_DIR)/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
		-DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(PKG_DIR)/usr -j $(JOBS) --target mika man
	@scripts/pkg/test-systemd.sh $(PKG_DIR)/usr

deb: deps-pkg
	@scripts/pkg/deb.sh $(PKG_DIR)

test-deb: deps-pkg
	@echo "== tests: Debian package in a bookworm chroot =="
	@deb=$$(scripts/pkg/deb.sh $(PKG_DIR)) && rootfs=$$(scripts/pkg/rootfs.sh $(PKG_DIR)) && \
		scripts/pkg/test-deb.sh "$$deb" "$$rootfs"

# Every metric the Grafana dashboard queries is one mika exports.
test-grafana:
	@/usr/bin/python3 tests/pkg/check_grafana.py

test-pkg: test-systemd test-grafana test-deb

test-docker: deps-pkg
	@echo "== tests: container image =="
	@rootfs=$$(scripts/pkg/rootfs.sh $(PKG_DIR)) && scripts/pkg/test-docker.sh "$$rootfs" $(PKG_DIR)

test-arm64: deps-arm64
	@echo "== tests: arm64 cross build, unit tests under qemu-user =="
	@scripts/arm64.sh $(ARM64_BUILD) $(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(VALGRIND_BUILD) $(ARM64_BUILD)
