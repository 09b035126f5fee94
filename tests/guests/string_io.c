/* string_io: rep insb/outsw of 64 KiB through an unclaimed port (KVM hands kiln page-sized batches); reads fill all ones. */
#include "lib.h"

#define UNCLAIMED 0x288
#define LEN (64 * 1024)

static uint8_t buf[LEN] __attribute__((aligned(4096)));

void guest_main(void)
{
	void *p = buf;
	unsigned long n = LEN;

	memset(buf, 0x11, LEN);
	/* One instruction, 64 Ki iterations: KVM exits with io.count > 1, kiln dispatches each. */
	__asm__ volatile("cld; rep insb" : "+D"(p), "+c"(n) : "d"(UNCLAIMED) : "memory");
	if (n != 0)
		fail("rep insb left rcx = %lu", n);
	for (unsigned i = 0; i < LEN; i++)
		if (buf[i] != 0xff)
			fail("byte %u = %#x after rep insb from an unclaimed port, expected 0xff", i, buf[i]);
	p = buf;
	n = LEN / 2;
	__asm__ volatile("cld; rep outsw" : "+S"(p), "+c"(n) : "d"(UNCLAIMED) : "memory");
	if (n != 0)
		fail("rep outsw left rcx = %lu", n);
	printf("string_io: %u bytes in by rep insb, %u words out by rep outsw\n", LEN, LEN / 2);
	putstr("SUCCESS\n");
}
