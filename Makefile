# edgehub — the two commands: `make run` and `make test`.
# Everything else here is what those two need.

JOBS    ?= $(shell nproc)
BUILD   ?= build/release
ASAN    ?= build/asan
CONFIG  ?= config/edgehub.yaml
CMAKE   ?= cmake
CTEST   ?= ctest
FUZZ    ?= build/fuzz
FUZZ_RUNS ?= 10000000

.PHONY: all deps build build-asan run test test-release test-asan bench fuzz format tidy clean

all: build

# Installs Debian packages when anything is missing; quiet otherwise.
deps:
	@./scripts/install-deps.sh

$(BUILD)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

$(ASAN)/CMakeCache.txt: | deps
	$(CMAKE) -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DEDGEHUB_SANITIZE=ON -DEDGEHUB_BUILD_BENCH=OFF

build: deps $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN)/CMakeCache.txt
	$(CMAKE) --build $(ASAN) -j $(JOBS)

# Starts the hub in dev mode: embedded API server, dev certificates, loopback only.
run: deps $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS) --target edgehub edgehub-sim
	$(BUILD)/edgehub --dev --config $(CONFIG)

test-release: build
	$(CTEST) --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-asan: build-asan
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CTEST) --test-dir $(ASAN) --output-on-failure -j $(JOBS)

# The whole suite, normal build then sanitizer build; ends with ctest's summary.
test: test-asan test-release

bench: build
	./bench/run.sh $(BUILD)

# libFuzzer targets (test/fuzz) in their own clang build; `make test` only replays the corpora.
# Each target runs FUZZ_RUNS inputs (FUZZ_TARGETS="a b" picks some) from a scratch copy of its corpus.
$(FUZZ)/CMakeCache.txt: | deps
	@command -v clang++ >/dev/null || { echo "make fuzz needs clang++ (Debian: apt-get install clang)"; exit 1; }
	$(CMAKE) -S . -B $(FUZZ) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DEDGEHUB_FUZZ=ON -DEDGEHUB_BUILD_BENCH=OFF

fuzz: deps $(FUZZ)/CMakeCache.txt
	$(CMAKE) --build $(FUZZ) -j $(JOBS) --target fuzz_all
	./test/fuzz/run.sh $(FUZZ) $(FUZZ_RUNS) $(FUZZ_TARGETS)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

tidy: build
	clang-tidy -p $(BUILD) $$(git ls-files 'src/*.cpp')

clean:
	rm -rf build
