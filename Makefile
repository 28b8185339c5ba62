# mika: the two commands a newcomer needs.
#   make run   install what is missing, build, start the tracker on the embedded defaults
#   make test  install what is missing, build (plain and ASan+UBSan), run every test
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
CMAKE_FLAGS ?=
MAKEFLAGS += --no-print-directory

.PHONY: all deps deps-test build build-asan run test test-plain test-asan fuzz clean bench

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

fuzz:
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DMIKA_FUZZ=ON -DMIKA_SANITIZE=ON >/dev/null
	@cmake --build build-fuzz -j $(JOBS)

# mika, opentracker and the nginx floor under the same load (docs/BENCHMARKS.md).
bench:
	@/usr/bin/python3 bench/run

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
