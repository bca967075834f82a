# liboffload — top-level build. GNU make; everything lands in $(BUILD).
#
#   make            build liboffload, the simulated driver, the pipeline, the tests
#   make test       every test (unit + end-to-end), closing with "N passed, N failed"
#   make demo       the reference pipeline with and without liboffload, side by side
#   make bench      benchmarks -> $(BUILD)/bench.json
#   make install    bin/offload, lib/liboffload.so, the man page and the docs under
#                   $(DESTDIR)$(PREFIX) (PREFIX=/usr/local); make uninstall removes them
#   make fuzz FUZZ_S=3600   random driver-API programs, bare vs liboffload, for FUZZ_S seconds
#   make coverage   line and branch coverage of interpose/ and runtime/ (tests + fuzzing)
#   make SANITIZE=address,undefined test    (or SANITIZE=thread)
#   make DEBUG=1 test    internal consistency checks abort instead of logging
#
# Sources are found by wildcard: adding a .c file to a folder adds it to that
# folder's product; no list below needs editing.

CUDA_HOME ?= /usr/local/cuda
BUILD     ?= build
CC        ?= cc
CXX       ?= c++
NVCC      ?= $(CUDA_HOME)/bin/nvcc
GPU_ARCH  ?= sm_90
SANITIZE  ?=
VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=

WARN      := -Wall -Wextra -Werror
OPT       := -O2 -g
ifneq ($(SANITIZE),)
OPT       := -O1 -g -fno-omit-frame-pointer -fsanitize=$(SANITIZE)
SAN_LD    := -fsanitize=$(SANITIZE)
endif
# make DEBUG=1: internal checks abort (an illegal allocation state transition, say)
# instead of being logged.
ifneq ($(DEBUG),)
OPT       += -DOFFLOAD_DEBUG
endif
# COVERAGE=1: gcov instrumentation (make coverage builds that way in its own BUILD).
COVERAGE  ?=
ifneq ($(COVERAGE),)
OPT       := -O0 -g --coverage
SAN_LD    += --coverage
endif
CPPFLAGS  := -I$(CUDA_HOME)/include -I. -D_GNU_SOURCE
CFLAGS    := -std=c11 $(WARN) $(OPT) -fPIC -pthread
CXXFLAGS  := -std=c++17 $(WARN) $(OPT) -fPIC -pthread
LDFLAGS   := $(SAN_LD)

# --- liboffload.so: interpose/ -> runtime/ -> config/, driver/ -> base/ ---------------
LIB_SRCS  := $(wildcard interpose/*.c runtime/*.c runtime/*/*.c config/*.c driver/*.c base/*.c)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
INIH_A    := $(firstword $(wildcard /usr/lib/*/libinih.a /usr/lib/libinih.a))

# --- the offload command: cli/ on top of config/ and base/ (never the runtime) --------
CLI_SRCS  := $(wildcard cli/*.c)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o) \
             $(filter $(BUILD)/obj/config/% $(BUILD)/obj/base/%,$(LIB_OBJS))

# --- the simulated driver: tests/sim/*.c -> $(BUILD)/sim/libcuda.so.1 ----------------
SIM_SRCS  := $(wildcard tests/sim/*.c)
SIM_OBJS  := $(SIM_SRCS:%.c=$(BUILD)/obj/%.o)

# --- the reference pipeline -------------------------------------------------------
PIPE_SRCS := $(wildcard examples/pipeline/*.c)
PIPE_OBJS := $(PIPE_SRCS:%.c=$(BUILD)/obj/%.o)
KERNEL_CU := examples/pipeline/kernels.cu

# --- tests --------------------------------------------------------------------------
# tests/unit/test_sim_*.c  link against the simulated driver (they call cu* directly)
# tests/unit/test_rt_*.c   the runtime's objects and the simulated driver (see below)
# tests/unit/test_*.c      (others) link against liboffload's objects, no driver
# tests/progs/*.c          programs driven by the bats tests; linked to the driver
UNIT_SIM_SRCS := $(wildcard tests/unit/test_sim_*.c)
UNIT_LIB_SRCS := $(filter-out $(UNIT_SIM_SRCS),$(wildcard tests/unit/test_*.c))
UNIT_BINS     := $(UNIT_SIM_SRCS:tests/unit/%.c=$(BUILD)/tests/%) \
                 $(UNIT_LIB_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
PROG_SRCS     := $(wildcard tests/progs/*.c)
PROG_BINS     := $(PROG_SRCS:tests/progs/%.c=$(BUILD)/progs/%)
PROG_KERNELS  := $(wildcard tests/progs/*.cu)
PROG_KMODS    := $(PROG_KERNELS:tests/progs/%.cu=$(BUILD)/progs/%.so)
# tests/progs/shlib/NAME.c   shared libraries the programs load -> $(BUILD)/progs/libNAME.so
PROG_SHLIB_SRCS := $(wildcard tests/progs/shlib/*.c)
PROG_SHLIBS     := $(PROG_SHLIB_SRCS:tests/progs/shlib/%.c=$(BUILD)/progs/lib%.so)
# tests/bench/*.c, *.cu   benchmark programs and their kernel module (make bench)
# tests/fuzz/programs/   the program fuzzer: its interpreter and kernel module
FUZZPROG_BINS := $(BUILD)/fuzzprog/interp $(BUILD)/fuzzprog/interp_ptds $(BUILD)/fuzzprog/interp_proc \
                 $(BUILD)/fuzzprog/fuzz_kernels.so
BENCH_SRCS    := $(wildcard tests/bench/*.c)
BENCH_BINS    := $(BENCH_SRCS:tests/bench/%.c=$(BUILD)/bench/%) \
                 $(patsubst tests/bench/%.cu,$(BUILD)/bench/%.so,$(wildcard tests/bench/*.cu))

# tools/NAME/NAME.c   a small program beside the product (tools/README.md) -> $(BUILD)/tools/NAME
TOOL_NAMES    := $(notdir $(patsubst %/,%,$(dir $(wildcard tools/*/*.c))))
TOOL_BINS     := $(TOOL_NAMES:%=$(BUILD)/tools/%)

SIM_LINK  := -L$(BUILD)/sim -l:libcuda.so.1 -Wl,-rpath,'$$ORIGIN/../sim'

.PHONY: all lib cli sim pipeline tests test unit e2e demo bench fuzz coverage deps format \
    lint clean install uninstall
all: lib cli sim pipeline tests

lib: $(BUILD)/liboffload.so $(BUILD)/liboffload.a
cli: $(BUILD)/offload
sim: $(BUILD)/sim/libcuda.so.1
pipeline: $(BUILD)/pipeline $(BUILD)/kernels.host.so $(if $(wildcard $(NVCC)),$(BUILD)/kernels.cubin)
tests: $(UNIT_BINS) $(PROG_BINS) $(PROG_KMODS) $(PROG_SHLIBS) $(BENCH_BINS) $(FUZZPROG_BINS) \
    $(TOOL_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fvisibility=hidden -MMD -MP -c $< -o $@

# liboffload's dlsym runs inside every dlsym of the process, including the ones a sanitizer
# runtime makes while it initialises (libtsan's reference to dlsym binds to it in a
# statically linked test), before any instrumented function may run: those two objects are
# never instrumented, whatever their functions' attributes say.
$(BUILD)/obj/interpose/dlsym_route.o $(BUILD)/obj/driver/real_dlsym.o: CFLAGS += -fno-sanitize=all

# Only the symbols marked OFFLOAD_EXPORT (interpose/export.h) leave the library;
# inih's symbols stay inside it.
$(BUILD)/liboffload.so: $(LIB_OBJS)
	$(CC) -shared -o $@ $^ $(INIH_A) -Wl,--exclude-libs,ALL -Wl,-z,defs \
	    -Wl,--version-script=interpose/liboffload.map $(LDFLAGS) -ldl -pthread

$(BUILD)/liboffload.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/obj/cli/offload.o: CPPFLAGS += -DOFFLOAD_VERSION='"$(VERSION)"'
$(BUILD)/offload: $(CLI_OBJS)
	$(CC) -o $@ $^ $(INIH_A) $(LDFLAGS) -lm

# -Bsymbolic-functions: the pointers the simulator hands out (cuGetProcAddress) are its
# own functions, never whatever a preloaded library exports under the same name.
$(BUILD)/sim/libcuda.so.1: $(SIM_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -o $@ $^ -Wl,-soname,libcuda.so.1 -Wl,-Bsymbolic-functions \
	    -Wl,-z,defs $(LDFLAGS) -ldl -pthread -lrt
	ln -sf libcuda.so.1 $(BUILD)/sim/libcuda.so

# The pipeline links to the driver by soname; at run time it gets whichever
# libcuda.so.1 the loader finds (the simulator via LD_LIBRARY_PATH, or the real one).
$(BUILD)/pipeline: $(PIPE_OBJS) $(BUILD)/sim/libcuda.so.1
	$(CC) -o $@ $(PIPE_OBJS) -L$(BUILD)/sim -l:libcuda.so.1 $(LDFLAGS) -lz -lm -pthread

# One kernel source, two targets: a host shared object for the simulator...
# No contraction into FMA on either side (-ffp-contract=off, --fmad=false): with only
# correctly rounded operations in kernels.cu, both targets compute the same bits.
$(BUILD)/kernels.host.so: $(KERNEL_CU) tests/sim/cuda_host.h tests/sim/simkernel.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -O2 -ffp-contract=off -shared \
	    -x c++ -include tests/sim/cuda_host.h $< -o $@
# ...and a cubin for a real GPU, when nvcc is present.
$(BUILD)/kernels.cubin: $(KERNEL_CU)
	@mkdir -p $(@D)
	$(NVCC) -cubin -arch=$(GPU_ARCH) -O3 --fmad=false $< -o $@

$(BUILD)/tests/test_sim_%: tests/unit/test_sim_%.c tests/unit/check.h $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(SIM_LINK) $(LDFLAGS) -ldl -pthread

# tests/unit/test_rt_*.c drive the runtime itself against the simulated driver: the
# library's objects except its hooks (interpose/), so the test's cu* calls reach the
# simulator, and the runtime's through its driver table (driver/), as in a preloaded run.
RUNTIME_OBJS := $(filter-out $(BUILD)/obj/interpose/%,$(LIB_OBJS))
$(BUILD)/tests/test_rt_%: tests/unit/test_rt_%.c tests/unit/check.h $(RUNTIME_OBJS) \
    $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(RUNTIME_OBJS) $(INIH_A) $(SIM_LINK) $(LDFLAGS) \
	    -ldl -pthread -lm

$(BUILD)/tests/test_%: tests/unit/test_%.c tests/unit/check.h $(BUILD)/liboffload.a
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/liboffload.a $(INIH_A) $(LDFLAGS) -ldl -pthread -lm

# test_interpose_hooks is its own runtime (a fake of runtime/runtime.h that records what the
# hooks report): it links interpose/ and the layers below it (driver/, base/) only, never
# liboffload.a, so the real runtime cannot be linked beside the fake (nor silently replace
# part of it).
INTERPOSE_OBJS := $(filter $(BUILD)/obj/interpose/% $(BUILD)/obj/driver/% $(BUILD)/obj/base/%,$(LIB_OBJS))
$(BUILD)/tests/test_interpose_hooks: tests/unit/test_interpose_hooks.c tests/unit/check.h \
    $(INTERPOSE_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(INTERPOSE_OBJS) $(LDFLAGS) -ldl -pthread

# test_cli_json tests the offload command's JSON reader, which is no part of the library.
$(BUILD)/tests/test_cli_json: tests/unit/test_cli_json.c tests/unit/check.h $(BUILD)/obj/cli/json.o
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(BUILD)/obj/cli/json.o $(LDFLAGS)

# --as-needed: a program that only reaches the driver through dlopen (as the CUDA
# runtime does) keeps no link to it.
$(BUILD)/progs/%: tests/progs/%.c $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< -Wl,--as-needed $(SIM_LINK) $(LDFLAGS) -ldl -pthread

define TOOL_RULE
$(BUILD)/tools/$(1): tools/$(1)/$(1).c
	@mkdir -p $$(@D)
	$$(CC) $$(CPPFLAGS) $$(CFLAGS) -o $$@ $$< $$(LDFLAGS)
endef
$(foreach t,$(TOOL_NAMES),$(eval $(call TOOL_RULE,$(t))))

$(BUILD)/progs/lib%.so: tests/progs/shlib/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -shared -o $@ $< $(LDFLAGS) -ldl

$(BUILD)/progs/%.so: tests/progs/%.cu tests/sim/cuda_host.h tests/sim/simkernel.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -shared -x c++ -include tests/sim/cuda_host.h $< -o $@

$(BUILD)/bench/%: tests/bench/%.c tests/bench/bench.h $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< -Wl,--as-needed $(SIM_LINK) $(LDFLAGS) -ldl -pthread

$(BUILD)/bench/%.so: tests/bench/%.cu tests/sim/cuda_host.h tests/sim/simkernel.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -shared -x c++ -include tests/sim/cuda_host.h $< -o $@

$(BUILD)/fuzzprog/interp: tests/fuzz/programs/interp.c $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(SIM_LINK) $(LDFLAGS) -ldl -pthread

# The same interpreter calling the _ptds/_ptsz entry points (NULL = per-thread stream).
$(BUILD)/fuzzprog/interp_ptds: tests/fuzz/programs/interp.c $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DCUDA_API_PER_THREAD_DEFAULT_STREAM=1 $(CFLAGS) -o $@ $< $(SIM_LINK) $(LDFLAGS) -ldl -pthread

# ...and one calling the most used entry points through cuGetProcAddress pointers.
$(BUILD)/fuzzprog/interp_proc: tests/fuzz/programs/interp.c $(BUILD)/sim/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -DINTERP_VIA_PROC $(CFLAGS) -o $@ $< $(SIM_LINK) $(LDFLAGS) -ldl -pthread

$(BUILD)/fuzzprog/fuzz_kernels.so: tests/fuzz/programs/fuzz_kernels.cu tests/sim/cuda_host.h tests/sim/simkernel.h
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -shared -x c++ -include tests/sim/cuda_host.h $< -o $@

# For a real GPU (tests/gpu/run.sh): the same kernels as a cubin.
$(BUILD)/bench/%.cubin: tests/bench/%.cu
	@mkdir -p $(@D)
	$(NVCC) -cubin -arch=$(GPU_ARCH) -O3 $< -o $@

# --- running -------------------------------------------------------------------------
# Under AddressSanitizer, LD_PRELOAD=liboffload.so comes before the sanitizer runtime in
# the library list (every program links the runtime, so it is loaded all the same):
# ASan's check of that order would stop every preloaded run, so it is turned off.
SAN_ENV := $(if $(findstring address,$(SANITIZE)),ASAN_OPTIONS=verify_asan_link_order=0$(if $(ASAN_OPTIONS),:$(ASAN_OPTIONS)))

test: deps all
	$(SAN_ENV) BUILD=$(BUILD) tests/run-all

unit: deps all
	$(SAN_ENV) BUILD=$(BUILD) tests/run-all --unit

demo: deps all
	BUILD=$(BUILD) examples/pipeline/demo.sh

bench: deps all $(BENCH_BINS)
	BUILD=$(BUILD) tests/bench/run.sh

# --- installing ----------------------------------------------------------------------
# offload finds liboffload.so in ../lib beside its bin/, so the two stay together.
DOC_DIR  = $(DESTDIR)$(PREFIX)/share/doc/liboffload
INSTALLED = $(DESTDIR)$(PREFIX)/bin/offload $(DESTDIR)$(PREFIX)/lib/liboffload.so \
    $(DESTDIR)$(PREFIX)/share/man/man1/offload.1 $(DOC_DIR)/README.md \
    $(DOC_DIR)/config-reference.md $(DOC_DIR)/offload.conf.example
install: $(BUILD)/offload $(BUILD)/liboffload.so
	install -D -m 755 $(BUILD)/offload $(DESTDIR)$(PREFIX)/bin/offload
	install -D -m 755 $(BUILD)/liboffload.so $(DESTDIR)$(PREFIX)/lib/liboffload.so
	install -D -m 644 cli/offload.1 $(DESTDIR)$(PREFIX)/share/man/man1/offload.1
	install -D -m 644 README.md $(DOC_DIR)/README.md
	install -D -m 644 config/README.md $(DOC_DIR)/config-reference.md
	install -D -m 644 examples/pipeline/offload.conf $(DOC_DIR)/offload.conf.example

uninstall:
	rm -f $(INSTALLED)
	-rmdir $(DOC_DIR) 2>/dev/null
# Random programs for FUZZ_S seconds (default 600); shrunk failures land in
# tests/fuzz/programs/corpus/, which `make test` replays.
FUZZ_S ?= 600
fuzz: deps all
	BUILD=$(BUILD) python3 tests/fuzz/programs/fuzz.py fuzz --seconds $(FUZZ_S)

# gcov build in $(BUILD)-coverage: every test, then FUZZ_COVERAGE_S seconds of fuzzing,
# then the line and branch summary of interpose/ and runtime/ (tests/fuzz/programs/coverage.sh).
FUZZ_COVERAGE_S ?= 600
coverage: deps
	BUILD=$(BUILD)-coverage FUZZ_S=$(FUZZ_COVERAGE_S) tests/fuzz/programs/coverage.sh

# Debian packages the build and the tests need. Installs them when run as root,
# otherwise prints the exact command.
DEB_PKGS := uthash-dev libinih-dev zlib1g-dev bats jq groff-base
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ]; then \
	        echo "deps: installing$$missing"; \
	        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; \
	    else \
	        echo "deps: missing$$missing; run: sudo apt-get install -y$$missing"; exit 1; \
	    fi; \
	fi

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' '*.cu')
format:
	clang-format -i $(FORMAT_SRCS)

lint: all
	clang-format --dry-run --Werror $(FORMAT_SRCS)
	runtime/devcode/gen_ptx.sh --check
	cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	    --inline-suppr --suppress=missingIncludeSystem -I. -D_GNU_SOURCE -D__x86_64__ \
	    base driver interpose runtime config cli examples/pipeline tests/sim tools
	groff -ww -man -z cli/offload.1

clean:
	rm -rf $(BUILD)

-include $(LIB_OBJS:.o=.d) $(SIM_OBJS:.o=.d) $(PIPE_OBJS:.o=.d) $(CLI_SRCS:%.c=$(BUILD)/obj/%.d)
