# kiln build: the VMM, its unit tests, test guests and the demo guest.
#   make            release build in build/
#   make SAN=1      ASan+UBSan build in build-san/
#   make check      unit tests (no /dev/kvm), then guest tests (need /dev/kvm)
#   make unit       unit tests only

CC      ?= cc
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT     := -O1 -g
else
BUILD   ?= build
SANFLAGS :=
OPT     := -O2 -g
endif

VERSION := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wundef -Wvla -Wno-unused-parameter
CFLAGS  := -std=gnu11 $(OPT) $(WARN) -fstack-protector-strong -D_FORTIFY_SOURCE=2 \
           -D_GNU_SOURCE -DKILN_VERSION='"$(VERSION)"' -Isrc -MMD -MP $(SANFLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SANFLAGS) -pthread
LDLIBS  := -ljansson -luring -lhttp_parser -lslirp

SRCS    := $(shell find src -name '*.c' | sort)
LIBSRCS := $(filter-out src/cli/main.c,$(SRCS))
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
LIBOBJS := $(LIBSRCS:%.c=$(BUILD)/%.o)

.PHONY: all unit check guests demo clean
all: $(BUILD)/kiln

$(BUILD)/kiln: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Unit tests: each tests/unit/*.mk adds a name to UNIT_TESTS and sets NAME_SRCS
# (the kiln sources it links besides tests/unit/NAME.c). cmocka.
UNIT_TESTS :=
include $(wildcard tests/unit/*.mk)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null || echo -lcmocka)
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/tests/unit/%)

define unit_rule
$(BUILD)/tests/unit/$(1): $(BUILD)/tests/unit/$(1).o $$(patsubst %.c,$(BUILD)/%.o,$$($(1)_SRCS))
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(CMOCKA_LIBS) $$(LDLIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))

unit: $(UNIT_BINS)
	@bash tests/run-unit.sh $(BUILD) $(UNIT_TESTS)

# Test guests and the demo guest are freestanding PVH ELFs (tests/guests/Makefile).
guests:
	$(MAKE) -C tests/guests
demo:
	$(MAKE) -C guests/demo

check: all unit guests demo
	@bash tests/run-guests.sh $(BUILD)/kiln

clean:
	rm -rf build build-san
	$(MAKE) -C tests/guests clean
	$(MAKE) -C guests/demo clean

-include $(shell find $(BUILD) -name "*.d" 2>/dev/null)
