/*
 * TUN link adapter: the stack's packets go through a Linux TUN device
 * (IFF_TUN, no packet information header). Routing the stack's addresses to
 * the device is the caller's job (for example `ip route add A dev DEV`).
 */
#ifndef MPS_TUN_H
#define MPS_TUN_H

#include "mps.h"

struct mps_tun;

/*
 * Open (creating it if absent) the TUN device name, set it non-blocking and
 * bring it up. Returns a handle the caller frees with mps_tun_close(), or
 * NULL with *err = -EINVAL (bad name), -ENOMEM or the failing call's errno.
 */
struct mps_tun *mps_tun_open(const char *name, int *err);
void mps_tun_close(struct mps_tun *tun);

/* The device's file descriptor, for poll(); owned by tun. */
int mps_tun_fd(const struct mps_tun *tun);

/* Link adapter: ctx is a struct mps_tun *. next_ready is unknown (poll the fd). */
extern const struct mps_link_ops mps_tun_link_ops;

#endif
