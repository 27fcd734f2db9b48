// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * uffd_wp: the process's one userfaultfd, shared by every uffd_wp instance,
 * and what fork() does to it (see uffd.h for the other parts).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "uffd.h"
#include "uffd_abi.h"
#include "../util/fail.h"

/*
 * The one mutable global of libdamon, and why: the kernel lets only one
 * userfaultfd own a mapping; registering it with a second one fails with
 * EBUSY. Two contexts of the same process (two monitors, or one per heap)
 * must therefore share one userfaultfd, which only process-wide state can
 * give them. It is refcounted by the ops instances using it and closed with
 * the last one, which unregisters every mapping.
 *
 * It remembers the pid that created it: after fork() the child inherits the
 * descriptor, but that userfaultfd still acts on the parent's address space.
 * A child therefore forgets it (closing only its own inherited copy) and
 * makes its own on its first open(); instances inherited from the parent
 * never touch it in the child.
 *
 * The kernel releases a userfaultfd, and unregisters the mappings it holds,
 * only when the last descriptor of it closes, and a fork()ed child holds a
 * copy. While one did (a child that never uses libdamon, for as long as it
 * lived), every mapping of the parent stayed registered after the parent's
 * last close, and the parent's next start failed with EBUSY ("registered
 * with another userfaultfd"). So the child closes its copy as it is born
 * (pthread_atfork), and the last instance unregisters what it registered
 * before closing (unregister_ours() in uffd_wp.c): the child may not have
 * run its fork handler yet when the parent stops. The check in
 * dm_uffd_shared_get() still covers children made without fork() handlers
 * (a raw clone()).
 */
static struct {
	pthread_mutex_t lock;
	int fd;	     /* -1: none */
	pid_t owner; /* getpid() of the process that created fd */
	unsigned long refs;
	uint64_t features; /* enabled with UFFDIO_API */
	bool atfork;	   /* the fork() handlers are registered */
} shared_uffd = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

/* Held across fork(): the child sees no half-made descriptor. */
static void atfork_prepare(void)
{
	pthread_mutex_lock(&shared_uffd.lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&shared_uffd.lock);
}

static void atfork_child(void)
{
	if (shared_uffd.fd >= 0)
		close(shared_uffd.fd);
	shared_uffd.fd = -1;
	shared_uffd.refs = 0;
	pthread_mutex_unlock(&shared_uffd.lock);
}

static int uffd_syscall(struct dm_err *err)
{
	int fd = (int)(DM_FAIL(EPERM) ? -1
				      : syscall(SYS_userfaultfd,
						O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOSYS:
		return dm_err_set(err, -EOPNOTSUPP,
				  "uffd_wp: this kernel has no userfaultfd system call "
				  "(CONFIG_USERFAULTFD is off)");
	case EINVAL:
		return dm_err_set(err, -EOPNOTSUPP,
				  "uffd_wp: this kernel's userfaultfd lacks UFFD_USER_MODE_ONLY "
				  "(needs Linux >= 5.11, and >= 6.7 for UFFD_FEATURE_WP_ASYNC)");
	case EPERM:
		return dm_err_set(err, -EPERM,
				  "uffd_wp: userfaultfd was denied (EPERM): set sysctl "
				  "vm.unprivileged_userfaultfd=1 or lift the seccomp/security "
				  "policy that blocks it");
	default:
		return dm_err_set(err, -errno, "uffd_wp: userfaultfd failed: %s", strerror(errno));
	}
}

/* A new userfaultfd with asynchronous write protection enabled. */
int dm_uffd_create(uint64_t *ret_features, struct dm_err *err)
{
	struct uffdio_api api = {.api = UFFD_API};
	uint64_t want;
	int fd, r;

	/* UFFDIO_API may be called once per descriptor: ask what the kernel
	 * offers on a throwaway one, so that a refusal can name what is missing. */
	fd = uffd_syscall(err);
	if (fd < 0)
		return fd;
	r = DM_FAIL(EINVAL) ? -1 : ioctl(fd, UFFDIO_API, &api);
	close(fd);
	if (r < 0)
		return dm_err_set(err, -EOPNOTSUPP, "uffd_wp: UFFDIO_API handshake failed: %s",
				  strerror(errno));
	if (!(api.features & UFFD_FEATURE_WP_ASYNC))
		return dm_err_set(err, -EOPNOTSUPP,
				  "uffd_wp: this kernel's userfaultfd lacks UFFD_FEATURE_WP_ASYNC "
				  "(needs Linux >= 6.7 built with CONFIG_PTE_MARKER_UFFD_WP)");
	/* WP_UNPOPULATED: an armed page that is purged keeps a marker, and
	 * reads as not written (a page that is not there is never armed: see
	 * dm_uffd_arm_page()). WP_HUGETLBFS_SHMEM: shared anonymous memory
	 * (shmem) can be registered as well. */
	want = UFFD_FEATURE_WP_ASYNC |
	       (api.features & (UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM));

	fd = uffd_syscall(err);
	if (fd < 0)
		return fd;
	memset(&api, 0, sizeof(api));
	api.api = UFFD_API;
	api.features = want;
	if ((DM_FAIL(EINVAL) ? -1 : ioctl(fd, UFFDIO_API, &api)) < 0) {
		r = -errno;
		close(fd);
		return dm_err_set(err, r == -EINVAL ? -EOPNOTSUPP : r,
				  "uffd_wp: UFFDIO_API refused features 0x%llx: %s",
				  (unsigned long long)want, strerror(-r));
	}
	*ret_features = want;
	return fd;
}

int dm_uffd_shared_get(uint64_t *ret_features, struct dm_err *err)
{
	pid_t self = getpid();
	int fd;

	pthread_mutex_lock(&shared_uffd.lock);
	if (!shared_uffd.atfork) {
		if ((DM_FAIL(ENOMEM)
			     ? ENOMEM
			     : pthread_atfork(atfork_prepare, atfork_parent, atfork_child)) != 0) {
			pthread_mutex_unlock(&shared_uffd.lock);
			return dm_err_set(err, -ENOMEM, "uffd_wp: pthread_atfork failed");
		}
		shared_uffd.atfork = true;
	}
	if (shared_uffd.fd >= 0 && shared_uffd.owner != self) {
		/* Inherited through fork(): it belongs to the parent's address
		 * space. Dropping our copy does not affect the parent's. */
		close(shared_uffd.fd);
		shared_uffd.fd = -1;
		shared_uffd.refs = 0;
	}
	if (shared_uffd.fd < 0) {
		fd = dm_uffd_create(&shared_uffd.features, err);
		if (fd < 0) {
			pthread_mutex_unlock(&shared_uffd.lock);
			return fd;
		}
		shared_uffd.fd = fd;
		shared_uffd.owner = self;
		shared_uffd.refs = 0;
	}
	shared_uffd.refs++;
	fd = shared_uffd.fd;
	*ret_features = shared_uffd.features;
	pthread_mutex_unlock(&shared_uffd.lock);
	return fd;
}

void dm_uffd_shared_put(int fd, pid_t owner)
{
	if (owner != getpid())
		return; /* an instance inherited by a fork()ed child */
	pthread_mutex_lock(&shared_uffd.lock);
	if (shared_uffd.fd == fd && shared_uffd.owner == owner && shared_uffd.refs &&
	    !--shared_uffd.refs) {
		close(shared_uffd.fd);
		shared_uffd.fd = -1;
	}
	pthread_mutex_unlock(&shared_uffd.lock);
}

bool dm_uffd_sole_begin(int fd)
{
	pthread_mutex_lock(&shared_uffd.lock);
	return shared_uffd.refs == 1 && shared_uffd.fd == fd;
}

void dm_uffd_sole_end(void)
{
	pthread_mutex_unlock(&shared_uffd.lock);
}
