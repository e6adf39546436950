# planapi: build, test and tooling.
#   make                 build planapi/core.so for Lua 5.4
#   make LUA=luajit      build build/luajit/planapi/core.so for LuaJIT 2.1
#   make LUA=lua5.3      build build/lua5.3/planapi/core.so for Lua 5.3
#   make demo            the bridge end to end on a local sandbox: Planfix tasks become Planado jobs and back
#   make test            install missing packages (as root), build, run every spec against the sandbox
#   make valgrind        the C-heavy specs under valgrind, failing on any leak or invalid access
#   make sanitize        every spec against an ASan+UBSan (clang) build, failing on any report
#   make fuzz            each libFuzzer target (fuzz/) for FUZZ_SECONDS (default 600) from its seed corpus
#   make lint            cppcheck and clang-tidy on src/, luacheck on lua/, no function over 80 lines
#   make gen             regenerate lua/planapi/planfix_rest/ops.lua from the OpenAPI spec, then the
#                        editor definitions (types/) and the API pages (docs/api/) from the tables
#   make bench           benchmarks against baselines measured in the same run (bench/)
#   make embed           build/embed/planapi-host: a C program embedding Lua 5.4 with the core linked in
#   make sandbox-start / sandbox-stop
#   make env             `eval "$(make -s env)"`: lua5.4, lua5.3, luajit and bin/planapi use this checkout

LUA ?= lua5.4
CC ?= cc

ifeq ($(LUA),luajit)
  LUA_PC := luajit
  OUT_DIR := build/luajit/planapi
else ifeq ($(LUA),lua5.3)
  LUA_PC := lua5.3
  OUT_DIR := build/lua5.3/planapi
else
  LUA_PC := lua5.4
  OUT_DIR := planapi
endif

DEPS_PC := libcurl libxml-2.0 libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(LUA_PC) $(DEPS_PC) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(DEPS_PC) 2>/dev/null) -lm

# -Werror keeps warnings from piling up; liblua is never linked: the host
# that loads the module provides the Lua API.
WARN := -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes
CFLAGS ?= -O2 -g
ALL_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fPIC -fvisibility=hidden \
              $(WARN) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_SHARED := -shared -Wl,--as-needed

SRCS := $(wildcard src/*.c)
OBJ_DIR := build/$(LUA)/obj
OBJS := $(patsubst src/%.c,$(OBJ_DIR)/%.o,$(SRCS))
MODULE := $(OUT_DIR)/core.so

.PHONY: all test valgrind sanitize fuzz lint gen bench embed sandbox-start sandbox-stop clean deps env

all: $(MODULE)

$(OBJ_DIR)/%.o: src/%.c $(wildcard src/*.h) | $(OBJ_DIR)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(MODULE): $(OBJS) | $(OUT_DIR)
	$(CC) $(LDFLAGS_SHARED) -o $@ $(OBJS) $(PKG_LIBS) $(LDFLAGS)

$(OBJ_DIR) $(OUT_DIR):
	mkdir -p $@

deps:
	@tools/ensure-deps

test: deps
	@$(MAKE) --no-print-directory all LUA=lua5.4
	@tools/run-tests

demo: deps
	@$(MAKE) --no-print-directory -s all
	@tools/run-demo

valgrind: all
	@tools/run-valgrind

# Hardening (SECURITY.md): instrumented builds live under build/sanitize and
# build/fuzz, never in ./planapi.
sanitize: deps
	@tools/run-sanitize

FUZZ_SECONDS ?= 600
fuzz: deps
	@tools/run-fuzz --seconds $(FUZZ_SECONDS)

lint: deps
	@tools/run-lint

# The generators are Lua 5.4 programs whatever LUA is (their output is the same
# for every build; gen_rest_ops uses math.tointeger, which LuaJIT lacks);
# gen_defs reads the clients' tables through the built module (./planapi/core.so).
gen:
	lua5.4 tools/gen_rest_ops.lua
	@$(MAKE) --no-print-directory all LUA=lua5.4
	lua5.4 tools/gen_defs.lua

# bench: every benchmark against baselines measured in the same run; rewrites
# BENCHMARKS.md and bench/*.png (bench/run). bench-smoke: the same harness at
# tiny sizes, one repetition, in seconds; prints the tables, writes only under
# build/bench-smoke and does not judge targets.
.PHONY: bench-smoke
bench: deps all
	@bench/run

bench-smoke: deps all
	@bench/run --smoke

# The plugin-host example: a program that embeds Lua 5.4 (so it, unlike the
# module, links liblua) with the module's objects linked in statically.
EMBED_HOST := build/embed/planapi-host
EMBED_PC := lua5.4 $(DEPS_PC)
EMBED_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE $(WARN) \
                $(shell pkg-config --cflags $(EMBED_PC) 2>/dev/null) $(CFLAGS)
EMBED_LIBS := $(shell pkg-config --libs $(EMBED_PC) 2>/dev/null) -lm

ifeq ($(LUA_PC),lua5.4)
embed: all $(EMBED_HOST)

$(EMBED_HOST): examples/embed/host.c $(OBJS) | build/embed
	$(CC) $(EMBED_CFLAGS) -o $@ examples/embed/host.c $(OBJS) $(EMBED_LIBS) $(LDFLAGS)

build/embed:
	mkdir -p $@
else
embed:
	@echo "make embed: the host embeds Lua 5.4; run it without LUA=$(LUA)" >&2; exit 2
endif

sandbox-start:
	@sandbox/run start

sandbox-stop:
	@sandbox/run stop

# The paths that make `lua5.4 examples/...` (and any script, from any folder)
# find this checkout's modules and builds: Lua 5.4 reads LUA_CPATH_5_4 and Lua
# 5.3 LUA_CPATH_5_3 before LUA_CPATH, so each interpreter gets its own core.so
# (`make`, `make LUA=luajit`, `make LUA=lua5.3`).
env:
	@echo "export LUA_PATH='$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;;'"
	@echo "export LUA_CPATH_5_4='$(CURDIR)/?.so;;'"
	@echo "export LUA_CPATH_5_3='$(CURDIR)/build/lua5.3/?.so;;'"
	@echo "export LUA_CPATH='$(CURDIR)/build/luajit/?.so;;'"
	@echo "export PATH='$(CURDIR)/bin':\"\$$PATH\""

clean:
	rm -rf build planapi
