# tether build. One binary (build/tether), a static library of everything but
# main.c (shared by the binary, the unit tests and the fuzzers).
#
#   make                 build/tether
#   make SAN=1           build-san/tether with ASan+UBSan (tests too)
#   make unit            build and run the cmocka unit tests
#   make fuzz            build libFuzzer harnesses (clang) into build-fuzz/
#   make fuzz-smoke      run every harness over its corpus plus 20 s of fuzzing
#
# Sources are found by wildcard: a new src/<dir>/*.c, tests/unit/test_*.c or
# fuzz/fuzz_*.c needs no Makefile change.

CC      ?= cc
VERSION := 0.1.0
PKGS    := libuv jansson yaml-0.1
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lm

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wold-style-definition -Wpointer-arith -Wformat=2 -Wvla -Wundef \
        -Wwrite-strings -Wmissing-declarations -Wnull-dereference -Wno-unused-parameter

ifeq ($(SAN),1)
  BUILD  ?= build-san
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  LDSAN  := -fsanitize=address,undefined
else
  BUILD  ?= build
  OPT    := -O2 -g
  LDSAN  :=
endif

CFLAGS_ALL := -std=gnu11 $(OPT) $(WARN) -D_GNU_SOURCE -DTETHER_VERSION='"$(VERSION)"' \
              -Isrc $(PKG_CFLAGS) $(CFLAGS)

LIB_SRC  := $(wildcard src/core/*.c src/agent/*.c src/hub/*.c src/proxy/*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
MAIN_OBJ := $(BUILD)/obj/src/main.o
TEST_SRC := $(wildcard tests/unit/test_*.c)
TEST_BIN := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=build-fuzz/%)

.PHONY: all unit fuzz fuzz-smoke clean
all: $(BUILD)/tether

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libtether.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tether: $(MAIN_OBJ) $(BUILD)/libtether.a
	$(CC) $(LDSAN) -o $@ $^ $(PKG_LIBS) $(LDFLAGS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/guard.h $(BUILD)/libtether.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wno-missing-prototypes -Wno-missing-declarations -o $@ $< \
	    $(BUILD)/libtether.a $(LDSAN) -lcmocka $(PKG_LIBS) $(LDFLAGS)

unit: $(TEST_BIN)
	@rc=0; for t in $(TEST_BIN); do echo "== $$t"; TETHER_FIXTURES=tests/fixtures $$t || { echo "FAILED: $$t"; rc=1; }; done; exit $$rc

# libFuzzer harnesses: clang, ASan+UBSan, linked against every library source.
FUZZ_CFLAGS := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
               -DTETHER_VERSION='"$(VERSION)"' -Isrc $(PKG_CFLAGS)
build-fuzz/%: fuzz/%.c $(LIB_SRC)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(PKG_LIBS)

fuzz: $(FUZZ_BIN)

fuzz-smoke: $(FUZZ_BIN)
	@rc=0; for f in $(FUZZ_BIN); do n=$$(basename $$f); echo "== $$n"; \
	  mkdir -p build-fuzz/corpus-$$n build-fuzz/artifacts; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-20} -print_final_stats=0 \
	     -artifact_prefix=build-fuzz/artifacts/$$n- \
	     build-fuzz/corpus-$$n fuzz/corpus/$${n#fuzz_} > build-fuzz/$$n.log 2>&1 \
	     && tail -1 build-fuzz/$$n.log || { tail -40 build-fuzz/$$n.log; echo "FAILED: $$n"; rc=1; }; done; exit $$rc

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
