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
    /// A virtio-net header in front of every packet read or written (the offload path).
    VPND_IFF_VNET_HDR = 0x4000,
};

/// TUNSETOFFLOAD flags (linux/if_tun.h); USO4 and USO6 are only accepted together (Linux >= 6.2).
enum {
    VPND_TUN_F_CSUM = 0x01,
    VPND_TUN_F_TSO4 = 0x02,
    VPND_TUN_F_TSO6 = 0x04,
    VPND_TUN_F_TSO_ECN = 0x08,
    VPND_TUN_F_USO4 = 0x20,
    VPND_TUN_F_USO6 = 0x40,
    /// sizeof(struct virtio_net_hdr): flags, gso_type, hdr_len, gso_size, csum_start, csum_offset.
    VPND_VIRTIO_NET_HDR_LEN = 10,
};

/// Attaches the open /dev/net/tun `fd` to interface `name` (created if absent) with `flags`
/// (VPND_IFF_*), and copies the kernel's chosen name into `out_name` (VPND_IFNAMSIZ bytes,
/// NUL-terminated). Returns 0 or -errno. The corresponding C call is `ioctl(TUNSETIFF)`.
int vpnd_tun_set_iff(int fd, const char *name, int flags, char *out_name);

/// The IFF_* flags this kernel's tun driver supports, into `out`. Returns 0 or -errno.
/// The corresponding C call is `ioctl(TUNGETFEATURES)`.
int vpnd_tun_get_features(int fd, unsigned *out);
/// Sets the virtio-net header length of a device opened with VPND_IFF_VNET_HDR. Returns 0 or -errno.
/// The corresponding C call is `ioctl(TUNSETVNETHDRSZ)`.
int vpnd_tun_set_vnet_hdr_size(int fd, int size);
/// Makes the virtio-net header little-endian (the default on little-endian hosts anyway).
/// Returns 0 or -errno. The corresponding C call is `ioctl(TUNSETVNETLE)`.
int vpnd_tun_set_vnet_le(int fd, int on);
/// Announces which offloads user space handles (VPND_TUN_F_*): the kernel then hands over
/// super-packets and unchecksummed packets. Returns 0 or -errno (-EINVAL for a flag this kernel does
/// not know). The corresponding C call is `ioctl(TUNSETOFFLOAD)`.
int vpnd_tun_set_offload(int fd, unsigned flags);

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

// MARK: - UDP segmentation offload (GSO) and receive coalescing (GRO)

enum {
    /// The most segments one UDP_SEGMENT send may carry (the kernel's UDP_MAX_SEGMENTS on every
    /// kernel since 4.18; newer kernels allow 128).
    VPND_UDP_MAX_SEGMENTS = 64,
    /// The most payload bytes one UDP_SEGMENT send may carry (65535 - 20 - 8, the IPv4 limit).
    VPND_UDP_GSO_MAX_BYTES = 65507,
};

/// Checks that the kernel knows UDP_SEGMENT by setting the socket's default segment size to 0
/// (no segmentation). Returns 0 or -errno (-ENOPROTOOPT before Linux 4.18).
/// The corresponding C call is `setsockopt(SOL_UDP, UDP_SEGMENT)`.
int vpnd_udp_probe_gso(int fd);
/// Turns on receive coalescing: the kernel may hand one buffer holding several datagrams of one
/// flow, all of the same size but the last, with that size in a UDP_GRO control message.
/// Returns 0 or -errno. The corresponding C call is `setsockopt(SOL_UDP, UDP_GRO, 1)`.
int vpnd_udp_enable_gro(int fd);

/// Path MTU discovery on a UDP socket: the DF bit on every datagram (IP_PMTUDISC_DO; on an IPv6
/// socket IPV6_PMTUDISC_DO, and IPv4's too for a dual-stack one), so the kernel never fragments
/// them, and errors queued on the socket (IP_RECVERR, IPV6_RECVERR), so "fragmentation needed",
/// "packet too big" and local EMSGSIZE can be read back with vpnd_udp_read_error. 0 or -errno.
int vpnd_udp_enable_pmtu(int fd, int family);

/// Reads one error queued on `fd` (MSG_ERRQUEUE) without blocking. Returns 1 and sets
/// `*destination` (the original datagram's destination; port 0 for a local error) and `*mtu` (the
/// path MTU for a "too big" error from ICMP, ICMPv6 or the local stack; 0 for any other error);
/// 0 when the queue is empty; -errno on failure.
int vpnd_udp_read_error(int fd, vpnd_endpoint *destination, uint32_t *mtu);

/// Like vpnd_udp_recv_batch, and also reads each message's UDP_GRO control message into
/// `out_segment_sizes[i]` (0 when the buffer holds one plain datagram). Uses the batch's
/// preallocated control buffers. The corresponding C call is `recvmmsg(2)`.
int vpnd_udp_recv_batch_gro(int fd, vpnd_mmsg *batch, void *const *bases, const size_t *capacities, unsigned count,
                            size_t *out_lengths, vpnd_endpoint *out_sources, uint16_t *out_segment_sizes);

/// Sends message i (`bases[i]`, `lengths[i]` bytes) to `destinations[i]` with one sendmmsg; when
/// `segment_sizes[i]` is non-zero and below the length, the message carries a UDP_SEGMENT control
/// message and the kernel cuts it into datagrams of that size (the last one shorter).
/// Returns how many messages were consumed, as vpnd_udp_send_batch does. When the kernel refuses a
/// segmented message itself (EIO: no checksum offload on the route, on older kernels; EMSGSIZE, or
/// EINVAL on older kernels: a segment is larger than the route's MTU allows) it stops there, stores the errno in `*out_gso_error` (else 0) and
/// returns the index of that message, so the caller can send it as single datagrams.
/// The corresponding C call is `sendmmsg(2)` with `cmsg(SOL_UDP, UDP_SEGMENT)`.
int vpnd_udp_send_gso_batch(int fd, vpnd_mmsg *batch, int family, const void *const *bases, const size_t *lengths,
                            const uint16_t *segment_sizes, const vpnd_endpoint *destinations, unsigned count,
                            unsigned *out_dropped, int *out_gso_error);

// MARK: - Privileges

/// Sets the no_new_privs bit: no later execve can gain privileges (setuid bits, file capabilities).
/// Returns 0 or -errno. The corresponding C call is `prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)`.
int vpnd_set_no_new_privs(void);
/// Reads the calling thread's effective and permitted capability sets (64 bits each).
/// Returns 0 or -errno. The corresponding C call is the raw `capget(2)` syscall (version 3).
int vpnd_capabilities(uint64_t *effective, uint64_t *permitted);
/// Empties the effective, permitted and inheritable capability sets (and so the ambient set).
/// Returns 0 or -errno. The corresponding C call is the raw `capset(2)` syscall (version 3).
int vpnd_clear_capabilities(void);
/// Sets the real, effective and saved group id to `gid`. Returns 0 or -errno.
/// The corresponding C call is `setresgid(2)` (GNU).
int vpnd_set_all_gids(uint32_t gid);
/// Sets the real, effective and saved user id to `uid`. Returns 0 or -errno.
/// The corresponding C call is `setresuid(2)` (GNU).
int vpnd_set_all_uids(uint32_t uid);
/// Reads real, effective and saved user ids into `uids[0..2]` and group ids into `gids[0..2]`.
/// The corresponding C calls are `getresuid(2)` and `getresgid(2)` (GNU).
void vpnd_get_ids(uint32_t uids[3], uint32_t gids[3]);

// MARK: - Capabilities kept across a user switch

/// PR_SET_KEEPCAPS: 1 keeps the permitted capabilities across setresuid from root; 0 or -errno.
int vpnd_set_keep_capabilities(int on);
/// Sets the effective and permitted sets to exactly `mask` (bit n = capability n, below 64),
/// the inheritable set to none; 0 or -errno.
int vpnd_limit_capabilities(uint64_t mask);

// MARK: - Unix sockets

/// The user id of the process at the other end of Unix socket `fd` (SO_PEERCRED) into `uid`;
/// 0 or -errno.
int vpnd_peer_uid(int fd, uint32_t *uid);

// MARK: - Processes

/// Starts `path` with `argv` and `envp` (NULL-terminated arrays) in a new session, stdin from
/// /dev/null (stdout and stderr too unless `keep_output`), `ready_fd` as descriptor 3; returns
/// the child's pid or -errno.
int vpnd_spawn_detached(const char *path, char *const argv[], char *const envp[], int ready_fd, int keep_output);

/// Starts `path` with `argv` (NULL-terminated) and this process's environment in a process group
/// of its own (so a time limit can kill what it started too), with no signal blocked and the
/// daemon's signals at their defaults; stdin from `stdin_fd` (-1: /dev/null), stdout and stderr
/// to `output_fd`, every other descriptor closed. Returns the child's pid or -errno.
int vpnd_spawn_captured(const char *path, char *const argv[], int stdin_fd, int output_fd);

/// pipe2(O_CLOEXEC): 0 or -errno.
int vpnd_pipe_cloexec(int fds[2]);

/// waitpid for `pid` (EINTR retried; WNOHANG with `no_hang`): 1 with the exit status (-1 when
/// it did not exit) and the signal that killed it (0 when none), 0 while it runs, or -errno.
int vpnd_wait_status(int pid, int no_hang, int *exit_status, int *signal_number);

/// The CPUs this process may run on (its affinity mask, as nproc counts), at least 1.
int vpnd_usable_cpus(void);

#endif
