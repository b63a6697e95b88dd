// SPDX-License-Identifier: MIT
// Only what Swift cannot call directly: variadic ioctls, CMSG macros, mmsg helpers, GNU-only calls.
// Plain C types in, plain C types out; every function that fails returns -errno (never sets errno
// for the caller to read) and retries EINTR itself.
#ifndef VPND_CLINUXSHIMS_H
#define VPND_CLINUXSHIMS_H
#include <stdint.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

// MARK: - Errors

/// The symbolic name of an errno value, e.g. "EADDRINUSE"; "E<number>" when unknown.
const char *vpnd_errno_name(int errnum);
/// The text of an errno value, e.g. "Address already in use".
const char *vpnd_errno_text(int errnum);

// MARK: - Endpoints

/// An endpoint in a plain-C shape: 16 address bytes in network order (IPv4-mapped for IPv4),
/// the port in host order, the IPv6 scope id.
typedef struct vpnd_endpoint {
    uint8_t address[16];
    uint16_t port;
    uint32_t scope_id;
} vpnd_endpoint;

/// Writes `ep` as a sockaddr for a socket of `family` (AF_INET or AF_INET6) into `out` and its size
/// into `len`. On AF_INET6 an IPv4 endpoint becomes its IPv4-mapped address. Returns 0, or
/// -EAFNOSUPPORT when an IPv6 endpoint is given for an AF_INET socket.
int vpnd_endpoint_to_sockaddr(const vpnd_endpoint *ep, int family, struct sockaddr_storage *out, socklen_t *len);
/// Reads a sockaddr_in or sockaddr_in6 into `out` (IPv4 becomes IPv4-mapped). Returns 0, or
/// -EAFNOSUPPORT for another family (then `out` is zeroed).
int vpnd_sockaddr_to_endpoint(const struct sockaddr_storage *sa, vpnd_endpoint *out);

// MARK: - TCP

/// Accepts one connection as a non-blocking, close-on-exec socket; its peer goes to `out`.
/// Returns the new descriptor or -errno. The corresponding C call is
/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`.
int vpnd_accept(int fd, struct sockaddr_storage *out);

// MARK: - TUN/TAP

enum {
    VPND_IFNAMSIZ = 16,
    VPND_IFF_TUN = 0x0001,
    VPND_IFF_TAP = 0x0002,
    VPND_IFF_NO_PI = 0x1000,
    /// Reserved for the offload path (virtio-net header in front of every packet); unused yet.
    VPND_IFF_VNET_HDR = 0x4000,
};

/// Attaches the open /dev/net/tun `fd` to interface `name` (created if absent) with `flags`
/// (VPND_IFF_*), and copies the kernel's chosen name into `out_name` (VPND_IFNAMSIZ bytes,
/// NUL-terminated). Returns 0 or -errno. The corresponding C call is `ioctl(TUNSETIFF)`.
int vpnd_tun_set_iff(int fd, const char *name, int flags, char *out_name);

// MARK: - Namespaces

/// Moves the calling thread into the network namespace open at `fd` (a /var/run/netns/NAME or
/// /proc/.../ns/net descriptor); sockets and tun devices it opens afterwards live there.
/// Returns 0 or -errno. The corresponding C call is `setns(fd, CLONE_NEWNET)`.
int vpnd_enter_network_namespace(int fd);

// MARK: - UDP batches

/// Preallocated mmsghdr/iovec/sockaddr arrays for up to `capacity` datagrams per call; opaque.
typedef struct vpnd_mmsg vpnd_mmsg;

/// Allocates a batch for `capacity` datagrams (once, at socket creation); NULL when out of memory.
vpnd_mmsg *vpnd_mmsg_create(unsigned capacity);
/// Frees a batch from vpnd_mmsg_create.
void vpnd_mmsg_destroy(vpnd_mmsg *batch);
/// The batch's capacity.
unsigned vpnd_mmsg_capacity(const vpnd_mmsg *batch);

/// Receives up to `count` (at most the capacity) datagrams: datagram i goes to `bases[i]` (room for
/// `capacities[i]` bytes), its length to `out_lengths[i]`, its sender to `out_sources[i]`.
/// Returns how many were received, 0 when none is waiting, or -errno.
/// A datagram longer than its buffer is cut to the buffer (MSG_TRUNC).
/// The corresponding C call is `recvmmsg(2)`.
int vpnd_udp_recv_batch(int fd, vpnd_mmsg *batch, void *const *bases, const size_t *capacities, unsigned count,
                        size_t *out_lengths, vpnd_endpoint *out_sources);

/// Sends datagram i (`bases[i]`, `lengths[i]` bytes) to `destinations[i]` for i < `count` (at most
/// the capacity) on a socket of `family`. Returns how many were consumed: sent, or dropped because
/// the kernel refused that one destination (unreachable, not permitted, too big, wrong family);
/// `*out_dropped` counts the latter. Stops early when the socket would block. Returns -errno when
/// the socket itself fails before anything was consumed. The corresponding C call is `sendmmsg(2)`.
int vpnd_udp_send_batch(int fd, vpnd_mmsg *batch, int family, const void *const *bases, const size_t *lengths,
                        const vpnd_endpoint *destinations, unsigned count, unsigned *out_dropped);

#endif
