/*
 * TUN link adapter. Reads and writes whole IP packets; a short or failed
 * write is reported to the caller, who treats the packet as lost.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mps_tun.h"

struct mps_tun {
	int fd;
	char name[IFNAMSIZ];
};

static int set_up(const char *name)
{
	struct ifreq ifr;
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (s < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		rc = -errno;
	} else if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			rc = -errno;
	}
	close(s);
	return rc;
}

struct mps_tun *mps_tun_open(const char *name, int *err)
{
	struct mps_tun *tun;
	struct ifreq ifr;

	if (!name || !*name || strlen(name) >= IFNAMSIZ) {
		*err = -EINVAL;
		return NULL;
	}
	tun = calloc(1, sizeof(*tun));
	if (!tun) {
		*err = -ENOMEM;
		return NULL;
	}
	tun->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tun->fd < 0) {
		*err = -errno;
		free(tun);
		return NULL;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
	if (ioctl(tun->fd, TUNSETIFF, &ifr) < 0) {
		*err = -errno;
		mps_tun_close(tun);
		return NULL;
	}
	memcpy(tun->name, ifr.ifr_name, IFNAMSIZ);
	*err = set_up(tun->name);
	if (*err) {
		mps_tun_close(tun);
		return NULL;
	}
	return tun;
}

void mps_tun_close(struct mps_tun *tun)
{
	if (!tun)
		return;
	close(tun->fd);
	free(tun);
}

int mps_tun_fd(const struct mps_tun *tun)
{
	return tun->fd;
}

static int tun_send(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
	struct mps_tun *tun = ctx;
	ssize_t n;

	(void)now;
	n = write(tun->fd, pkt, len);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	return (size_t)n == len ? 0 : -EIO;
}

static int tun_recv(void *ctx, uint8_t *buf, size_t cap, uint64_t now)
{
	struct mps_tun *tun = ctx;
	ssize_t n;

	(void)now;
	n = read(tun->fd, buf, cap);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	return (int)n;
}

const struct mps_link_ops mps_tun_link_ops = {
	.name = "tun",
	.send = tun_send,
	.recv = tun_recv,
	.next_ready = NULL,
};
