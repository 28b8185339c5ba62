# mika: the two commands a newcomer needs.
#   make run   install what is missing, build, start the tracker on the embedded defaults
#   make test  install what is missing, build (plain and ASan+UBSan), run every test
#   make fuzz  every libFuzzer target for FUZZ_SECONDS each (docs/SECURITY.md)
#   make valgrind  unit tests, corpus replays and one daemon test under memcheck
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 3
VALGRIND_BUILD ?= build-valgrind
VALGRIND_FLAGS ?= --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	--errors-for-leak-kinds=definite,indirect --track-origins=yes --quiet

.PHONY: all deps deps-test build build-asan run test test-plain test-asan fuzz fuzz-build \
	fuzz-smoke valgrind clean bench

all: build

deps:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

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

# Memcheck over a plain Debug build: every unit test, every corpus replay and
# the daemon itself through the HTTP integration test. Any error or definite
# leak fails (valgrind exits 99).
valgrind: deps-test
	@command -v valgrind >/dev/null || { echo "make valgrind needs valgrind:" \
		"apt-get install -y valgrind" >&2; exit 1; }
	@cmake -S . -B $(VALGRIND_BUILD) -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(VALGRIND_BUILD) -j $(JOBS)
	@echo "== valgrind: unit tests =="
	@mkdir -p $(VALGRIND_BUILD)/valgrind-logs
	@for src in tests/unit/test_*.c; do n=$$(basename $$src .c); t=$(VALGRIND_BUILD)/$$n; \
		log=$(VALGRIND_BUILD)/valgrind-logs/$$n.log; \
		valgrind $(VALGRIND_FLAGS) $$t >$$log 2>&1 || { tail -n 60 $$log; exit 1; }; \
		printf '  %-22s %s\n' $$n "$$(grep -E '^\[  PASSED  \]' $$log)"; done
	@echo "== valgrind: fuzz corpus replays =="
	@for src in fuzz/fuzz_*.c; do n=$$(basename $$src .c); \
		valgrind $(VALGRIND_FLAGS) $(VALGRIND_BUILD)/replay_$$n fuzz/corpus/$${n#fuzz_} \
			|| exit 1; done
	@echo "== valgrind: the daemon under tests/integration/test_http.py =="
	@printf '#!/bin/sh\nexec valgrind %s --log-file=%s/valgrind-logs/mika.%%p.log %s/mika "$$@"\n' \
		"$(VALGRIND_FLAGS)" "$(abspath $(VALGRIND_BUILD))" "$(abspath $(VALGRIND_BUILD))" \
		>$(VALGRIND_BUILD)/mika-valgrind && chmod +x $(VALGRIND_BUILD)/mika-valgrind
	@MIKA_BIN=$(abspath $(VALGRIND_BUILD))/mika-valgrind MIKA_TEST_TIMEOUT_SCALE=20 \
		/usr/bin/python3 tests/integration/test_http.py

# mika, opentracker and the nginx floor under the same load (docs/BENCHMARKS.md).
bench:
	@/usr/bin/python3 bench/run

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(VALGRIND_BUILD)
