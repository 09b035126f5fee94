/* virtio-rng (virtio 1.2 §5.4): created at VM setup when --rng is given. */
#ifndef KILN_VIRTIO_RNG_H
#define KILN_VIRTIO_RNG_H

struct vm;

/* Largest requestq size offered; Linux keeps one buffer in flight. */
#define RNG_QUEUE_MAX 64

/* The DEVICE_REGISTER init: nothing without vm->cfg.rng; else a virtio-rng on the chosen transport. 0 or -errno. */
int rng_init(struct vm *vm);

#endif
