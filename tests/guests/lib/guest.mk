# Shared build rules for freestanding PVH guests (tests/guests/Makefile, guests/demo/Makefile).
# The includer sets GUEST_LIB (path of this directory) and GUEST_BUILD (object directory).

GUEST_CC ?= gcc
GUEST_CFLAGS := -std=gnu11 -m64 -O2 -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -ffreestanding -fno-pic -fno-pie -mcmodel=small -mno-red-zone \
	-mgeneral-regs-only -fno-stack-protector -fcf-protection=none \
	-fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
	-fno-common -I$(GUEST_LIB) -MMD -MP
GUEST_ASFLAGS := -m64 -fno-pic -fno-pie -I$(GUEST_LIB) -MMD -MP
GUEST_LDFLAGS := -m64 -nostdlib -static -no-pie -Wl,-T,$(GUEST_LIB)/guest.ld -Wl,--build-id=none \
	-Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments
GUEST_LIBS := -lgcc

GUEST_LIB_SRCS := $(wildcard $(GUEST_LIB)/*.c $(GUEST_LIB)/*.S)
GUEST_LIB_OBJS := $(patsubst $(GUEST_LIB)/%,$(GUEST_BUILD)/lib/%.o,$(GUEST_LIB_SRCS))

$(GUEST_BUILD)/lib/%.c.o: $(GUEST_LIB)/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -c -o $@ $<

$(GUEST_BUILD)/lib/%.S.o: $(GUEST_LIB)/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_ASFLAGS) -c -o $@ $<

-include $(GUEST_LIB_OBJS:.o=.d)
