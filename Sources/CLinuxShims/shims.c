// SPDX-License-Identifier: MIT
#include "CLinuxShims.h"

#include <errno.h>
#include <net/if.h>
#include <sched.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <spawn.h>
#include <signal.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <netinet/udp.h>
#include <linux/errqueue.h>

// MARK: - Errors

const char *vpnd_errno_name(int errnum) {
    const char *name = strerrorname_np(errnum);
    return name ? name : "E?";
}

const char *vpnd_errno_text(int errnum) {
    const char *text = strerrordesc_np(errnum);
    return text ? text : "unknown error";
}

// MARK: - Endpoints

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int vpnd_endpoint_to_sockaddr(const vpnd_endpoint *ep, int family, struct sockaddr_storage *out, socklen_t *len) {
    memset(out, 0, sizeof(*out));
    if (family == AF_INET) {
        if (memcmp(ep->address, v4_mapped_prefix, 12) != 0) {
            *len = 0;
            return -EAFNOSUPPORT;
        }
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(ep->port);
        memcpy(&sin->sin_addr, ep->address + 12, 4);
        *len = sizeof(*sin);
        return 0;
    }
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(ep->port);
    memcpy(&sin6->sin6_addr, ep->address, 16);
    sin6->sin6_scope_id = ep->scope_id;
    *len = sizeof(*sin6);
    return 0;
}

int vpnd_sockaddr_to_endpoint(const struct sockaddr_storage *sa, vpnd_endpoint *out) {
    memset(out, 0, sizeof(*out));
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(out->address, v4_mapped_prefix, 12);
        memcpy(out->address + 12, &sin->sin_addr, 4);
        out->port = ntohs(sin->sin_port);
        return 0;
    }
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->address, &sin6->sin6_addr, 16);
        out->port = ntohs(sin6->sin6_port);
        out->scope_id = sin6->sin6_scope_id;
        return 0;
    }
    return -EAFNOSUPPORT;
}

// MARK: - TCP

int vpnd_accept(int fd, struct sockaddr_storage *out) {
    int rc;
    do {
        socklen_t len = sizeof(*out);
        rc = accept4(fd, (struct sockaddr *)out, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : rc;
}

// MARK: - TUN/TAP

int vpnd_tun_set_iff(int fd, const char *name, int flags, char *out_name) {
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    if (strlen(name) >= IFNAMSIZ) return -EINVAL;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    ifr.ifr_flags = (short)flags;
    int rc;
    do {
        rc = ioctl(fd, TUNSETIFF, &ifr);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return -errno;
    memcpy(out_name, ifr.ifr_name, IFNAMSIZ);
    out_name[IFNAMSIZ - 1] = 0;
    return 0;
}

static int tun_ioctl_int(int fd, unsigned long request, void *arg) {
    int rc;
    do {
        rc = ioctl(fd, request, arg);
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

int vpnd_tun_get_features(int fd, unsigned *out) {
    unsigned int features = 0;
    int rc = tun_ioctl_int(fd, TUNGETFEATURES, &features);
    *out = rc == 0 ? features : 0;
    return rc;
}

int vpnd_tun_set_vnet_hdr_size(int fd, int size) { return tun_ioctl_int(fd, TUNSETVNETHDRSZ, &size); }

int vpnd_tun_set_vnet_le(int fd, int on) { return tun_ioctl_int(fd, TUNSETVNETLE, &on); }

int vpnd_tun_set_offload(int fd, unsigned flags) {
    int rc;
    do {
        rc = ioctl(fd, TUNSETOFFLOAD, (unsigned long)flags);  // the value itself, not a pointer
    } while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

// MARK: - Namespaces

int vpnd_enter_network_namespace(int fd) { return setns(fd, CLONE_NEWNET) < 0 ? -errno : 0; }

// MARK: - UDP batches

/// Control-message room per datagram: one UDP_SEGMENT (uint16_t) or UDP_GRO (int) message, with
/// space to spare for one more the kernel might add.
#define VPND_CONTROL_SIZE 64

struct vpnd_mmsg {
    unsigned capacity;
    struct mmsghdr *messages;
    struct iovec *iovecs;
    struct sockaddr_storage *addresses;
    char *control;  // capacity * VPND_CONTROL_SIZE, aligned for cmsghdr by calloc
};

vpnd_mmsg *vpnd_mmsg_create(unsigned capacity) {
    if (capacity == 0) return NULL;
    vpnd_mmsg *batch = calloc(1, sizeof(*batch));
    if (!batch) return NULL;
    batch->capacity = capacity;
    batch->messages = calloc(capacity, sizeof(struct mmsghdr));
    batch->iovecs = calloc(capacity, sizeof(struct iovec));
    batch->addresses = calloc(capacity, sizeof(struct sockaddr_storage));
    batch->control = calloc(capacity, VPND_CONTROL_SIZE);
    if (!batch->messages || !batch->iovecs || !batch->addresses || !batch->control) {
        vpnd_mmsg_destroy(batch);
        return NULL;
    }
    for (unsigned i = 0; i < capacity; i++) {
        batch->messages[i].msg_hdr.msg_iov = &batch->iovecs[i];
        batch->messages[i].msg_hdr.msg_iovlen = 1;
        batch->messages[i].msg_hdr.msg_name = &batch->addresses[i];
    }
    return batch;
}

void vpnd_mmsg_destroy(vpnd_mmsg *batch) {
    if (!batch) return;
    free(batch->messages);
    free(batch->iovecs);
    free(batch->addresses);
    free(batch->control);
    free(batch);
}

unsigned vpnd_mmsg_capacity(const vpnd_mmsg *batch) { return batch->capacity; }

// With IP_RECVERR an ICMP error for any datagram we sent (port unreachable, too big, ...) is also
// reported once by the next receive call; it says nothing about the datagrams waiting to be read
// (the error itself is in the error queue), so the receive is simply repeated.
static int is_reported_icmp_error(int err) {
    switch (err) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EMSGSIZE:
    case EHOSTDOWN:
    case ENOPROTOOPT:
    case EPROTO:
    case EOPNOTSUPP:
    case EACCES:
    case ENETDOWN:
    case ETIMEDOUT:
        return 1;
    default:
        return 0;
    }
}

int vpnd_udp_recv_batch(int fd, vpnd_mmsg *batch, void *const *bases, const size_t *capacities, unsigned count,
                        size_t *out_lengths, vpnd_endpoint *out_sources) {
    if (count > batch->capacity) count = batch->capacity;
    if (count == 0) return 0;
    for (unsigned i = 0; i < count; i++) {
        batch->iovecs[i].iov_base = bases[i];
        batch->iovecs[i].iov_len = capacities[i];
        struct msghdr *h = &batch->messages[i].msg_hdr;
        h->msg_namelen = sizeof(struct sockaddr_storage);
        h->msg_control = NULL;
        h->msg_controllen = 0;
        h->msg_flags = 0;
        batch->messages[i].msg_len = 0;
    }
    int received;
    int reported = 0;
    do {
        received = recvmmsg(fd, batch->messages, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && (errno == EINTR || (is_reported_icmp_error(errno) && ++reported < 8)));
    if (received < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
    for (int i = 0; i < received; i++) {
        out_lengths[i] = batch->messages[i].msg_len;
        vpnd_sockaddr_to_endpoint(&batch->addresses[i], &out_sources[i]);
    }
    return received;
}

/// True for errors that concern one destination only: drop that datagram and go on.
static int is_per_destination_error(int err) {
    switch (err) {
    case ENETUNREACH:
    case EHOSTUNREACH:
    case EACCES:
    case EPERM:
    case EMSGSIZE:
    case EAFNOSUPPORT:
    case EINVAL:
    case EADDRNOTAVAIL:
    case ECONNREFUSED:
    case EDESTADDRREQ:
    case ENETDOWN:
        return 1;
    default:
        return 0;
    }
}

int vpnd_udp_send_batch(int fd, vpnd_mmsg *batch, int family, const void *const *bases, const size_t *lengths,
                        const vpnd_endpoint *destinations, unsigned count, unsigned *out_dropped) {
    if (count > batch->capacity) count = batch->capacity;
    *out_dropped = 0;
    unsigned done = 0;
    while (done < count) {
        // Build the run of datagrams from `done` whose destinations fit the socket's family.
        unsigned run = 0;
        while (done + run < count) {
            unsigned i = done + run;
            socklen_t len;
            if (vpnd_endpoint_to_sockaddr(&destinations[i], family, &batch->addresses[run], &len) != 0) break;
            batch->iovecs[run].iov_base = (void *)bases[i];
            batch->iovecs[run].iov_len = lengths[i];
            struct msghdr *h = &batch->messages[run].msg_hdr;
            h->msg_namelen = len;
            h->msg_control = NULL;
            h->msg_controllen = 0;
            h->msg_flags = 0;
            run++;
        }
        if (run == 0) {  // an IPv6 destination on an IPv4 socket
            (*out_dropped)++;
            done++;
            continue;
        }
        int sent;
        do {
            sent = sendmmsg(fd, batch->messages, run, MSG_DONTWAIT);
        } while (sent < 0 && errno == EINTR);
        if (sent > 0) {
            done += (unsigned)sent;
            continue;
        }
        int err = sent < 0 ? errno : EAGAIN;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
        if (is_per_destination_error(err)) {
            (*out_dropped)++;
            done++;
            continue;
        }
        return done > 0 ? (int)done : -err;
    }
    return (int)done;
}

// MARK: - UDP GSO/GRO

int vpnd_udp_probe_gso(int fd) {
    int size = 0;
    return setsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, sizeof(size)) < 0 ? -errno : 0;
}

int vpnd_udp_enable_pmtu(int fd, int family) {
    int on = 1;
    int discover = IP_PMTUDISC_DO;
    if (family == AF_INET6) {
        int discover6 = IPV6_PMTUDISC_DO;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &discover6, sizeof discover6) != 0) return -errno;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on) != 0) return -errno;
        // IPv4-mapped traffic of a dual-stack socket follows the IPv4 options; an IPv6-only
        // socket may refuse them, which is fine.
        (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &discover, sizeof discover);
        (void)setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
        return 0;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &discover, sizeof discover) != 0) return -errno;
    if (setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on) != 0) return -errno;
    return 0;
}

int vpnd_udp_read_error(int fd, vpnd_endpoint *destination, uint32_t *mtu) {
    struct sockaddr_storage address;
    char payload[64];
    char control[512];
    struct iovec iov = {.iov_base = payload, .iov_len = sizeof payload};
    struct msghdr h;
    memset(&h, 0, sizeof h);
    memset(&address, 0, sizeof address);
    h.msg_name = &address;
    h.msg_namelen = sizeof address;
    h.msg_iov = &iov;
    h.msg_iovlen = 1;
    h.msg_control = control;
    h.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = recvmsg(fd, &h, MSG_ERRQUEUE | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -errno;
    *mtu = 0;
    memset(destination, 0, sizeof *destination);
    vpnd_sockaddr_to_endpoint(&address, destination);
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&h); c != NULL; c = CMSG_NXTHDR(&h, c)) {
        int v4 = c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR;
        int v6 = c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR;
        if (!(v4 || v6) || c->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err))) continue;
        struct sock_extended_err e;
        memcpy(&e, CMSG_DATA(c), sizeof e);
        int too_big = e.ee_errno == EMSGSIZE
            && (e.ee_origin == SO_EE_ORIGIN_LOCAL || e.ee_origin == SO_EE_ORIGIN_ICMP || e.ee_origin == SO_EE_ORIGIN_ICMP6);
        if (too_big) *mtu = e.ee_info;
    }
    return 1;
}

int vpnd_udp_enable_gro(int fd) {
    int on = 1;
    return setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) < 0 ? -errno : 0;
}

int vpnd_udp_recv_batch_gro(int fd, vpnd_mmsg *batch, void *const *bases, const size_t *capacities, unsigned count,
                            size_t *out_lengths, vpnd_endpoint *out_sources, uint16_t *out_segment_sizes) {
    if (count > batch->capacity) count = batch->capacity;
    if (count == 0) return 0;
    for (unsigned i = 0; i < count; i++) {
        batch->iovecs[i].iov_base = bases[i];
        batch->iovecs[i].iov_len = capacities[i];
        struct msghdr *h = &batch->messages[i].msg_hdr;
        h->msg_namelen = sizeof(struct sockaddr_storage);
        h->msg_control = batch->control + (size_t)i * VPND_CONTROL_SIZE;
        h->msg_controllen = VPND_CONTROL_SIZE;
        h->msg_flags = 0;
        batch->messages[i].msg_len = 0;
    }
    int received;
    int reported = 0;
    do {
        received = recvmmsg(fd, batch->messages, count, MSG_DONTWAIT, NULL);
    } while (received < 0 && (errno == EINTR || (is_reported_icmp_error(errno) && ++reported < 8)));
    if (received < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return -errno;
    }
    for (int i = 0; i < received; i++) {
        struct msghdr *h = &batch->messages[i].msg_hdr;
        out_lengths[i] = batch->messages[i].msg_len;
        vpnd_sockaddr_to_endpoint(&batch->addresses[i], &out_sources[i]);
        uint16_t segment = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c != NULL; c = CMSG_NXTHDR(h, c)) {
            if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                int value;
                memcpy(&value, CMSG_DATA(c), sizeof(value));
                if (value > 0 && value <= 0xFFFF) segment = (uint16_t)value;
            }
        }
        out_segment_sizes[i] = segment;
    }
    return received;
}

int vpnd_udp_send_gso_batch(int fd, vpnd_mmsg *batch, int family, const void *const *bases, const size_t *lengths,
                            const uint16_t *segment_sizes, const vpnd_endpoint *destinations, unsigned count,
                            unsigned *out_dropped, int *out_gso_error) {
    if (count > batch->capacity) count = batch->capacity;
    *out_dropped = 0;
    *out_gso_error = 0;
    unsigned done = 0;
    while (done < count) {
        unsigned run = 0;
        while (done + run < count) {
            unsigned i = done + run;
            socklen_t len;
            if (vpnd_endpoint_to_sockaddr(&destinations[i], family, &batch->addresses[run], &len) != 0) break;
            batch->iovecs[run].iov_base = (void *)bases[i];
            batch->iovecs[run].iov_len = lengths[i];
            struct msghdr *h = &batch->messages[run].msg_hdr;
            h->msg_namelen = len;
            h->msg_flags = 0;
            if (segment_sizes[i] != 0 && lengths[i] > segment_sizes[i]) {
                char *control = batch->control + (size_t)run * VPND_CONTROL_SIZE;
                memset(control, 0, CMSG_SPACE(sizeof(uint16_t)));
                h->msg_control = control;
                h->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
                struct cmsghdr *c = CMSG_FIRSTHDR(h);
                c->cmsg_level = SOL_UDP;
                c->cmsg_type = UDP_SEGMENT;
                c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                uint16_t size = segment_sizes[i];
                memcpy(CMSG_DATA(c), &size, sizeof(size));
            } else {
                h->msg_control = NULL;
                h->msg_controllen = 0;
            }
            run++;
        }
        if (run == 0) {  // an IPv6 destination on an IPv4 socket
            (*out_dropped)++;
            done++;
            continue;
        }
        int sent;
        do {
            sent = sendmmsg(fd, batch->messages, run, MSG_DONTWAIT);
        } while (sent < 0 && errno == EINTR);
        if (sent > 0) {
            done += (unsigned)sent;
            continue;
        }
        int err = sent < 0 ? errno : EAGAIN;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
        if ((err == EIO || err == EINVAL || err == EMSGSIZE) && batch->messages[0].msg_hdr.msg_controllen != 0) {
            *out_gso_error = err;
            return (int)done;
        }
        if (is_per_destination_error(err)) {
            (*out_dropped)++;
            done++;
            continue;
        }
        return done > 0 ? (int)done : -err;
    }
    return (int)done;
}

// MARK: - Privileges

int vpnd_set_no_new_privs(void) {
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

int vpnd_capabilities(uint64_t *effective, uint64_t *permitted) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &header, data) != 0) return -errno;
    *effective = (uint64_t)data[0].effective | ((uint64_t)data[1].effective << 32);
    *permitted = (uint64_t)data[0].permitted | ((uint64_t)data[1].permitted << 32);
    return 0;
}

int vpnd_clear_capabilities(void) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

int vpnd_set_all_gids(uint32_t gid) {
    return setresgid((gid_t)gid, (gid_t)gid, (gid_t)gid) == 0 ? 0 : -errno;
}

int vpnd_set_all_uids(uint32_t uid) {
    return setresuid((uid_t)uid, (uid_t)uid, (uid_t)uid) == 0 ? 0 : -errno;
}

void vpnd_get_ids(uint32_t uids[3], uint32_t gids[3]) {
    uid_t r = 0, e = 0, s = 0;
    gid_t gr = 0, ge = 0, gs = 0;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    uids[0] = r; uids[1] = e; uids[2] = s;
    gids[0] = gr; gids[1] = ge; gids[2] = gs;
}

int vpnd_peer_uid(int fd, uint32_t *uid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -errno;
    *uid = credentials.uid;
    return 0;
}

int vpnd_spawn_detached(const char *path, char *const argv[], char *const envp[], int ready_fd, int keep_output) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    pid_t pid = 0;
    int rc;
    if ((rc = posix_spawn_file_actions_init(&actions)) != 0) return -rc;
    if ((rc = posix_spawnattr_init(&attributes)) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return -rc;
    }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (!keep_output) {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&actions, ready_fd, 3);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return rc == 0 ? (int)pid : -rc;
}

extern char **environ;

int vpnd_spawn_captured(const char *path, char *const argv[], int stdin_fd, int output_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    pid_t pid = 0;
    int rc;
    if ((rc = posix_spawn_file_actions_init(&actions)) != 0) return -rc;
    if ((rc = posix_spawnattr_init(&attributes)) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return -rc;
    }
    if (stdin_fd >= 0) {
        posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
    } else {
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    }
    posix_spawn_file_actions_adddup2(&actions, output_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, output_fd, 2);
    // Nothing else of the daemon's (tun, sockets, control socket) reaches the command.
    posix_spawn_file_actions_addclosefrom_np(&actions, 3);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attributes, 0);
    sigset_t none, defaults;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigemptyset(&defaults);
    int reset[] = {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2, SIGQUIT, SIGCHLD};
    for (size_t i = 0; i < sizeof reset / sizeof reset[0]; i++) sigaddset(&defaults, reset[i]);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return rc == 0 ? (int)pid : -rc;
}

int vpnd_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}

int vpnd_wait_status(int pid, int no_hang, int *exit_status, int *signal_number) {
    int status = 0;
    pid_t got;
    do {
        got = waitpid(pid, &status, no_hang ? WNOHANG : 0);
    } while (got < 0 && errno == EINTR);
    if (got < 0) return -errno;
    if (got == 0) return 0;
    *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    *signal_number = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    return 1;
}

int vpnd_set_keep_capabilities(int on) {
    return prctl(PR_SET_KEEPCAPS, on ? 1 : 0, 0, 0, 0) == 0 ? 0 : -errno;
}

int vpnd_limit_capabilities(uint64_t mask) {
    struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = (uint32_t)mask;
    data[1].effective = data[1].permitted = (uint32_t)(mask >> 32);
    return syscall(SYS_capset, &header, data) == 0 ? 0 : -errno;
}

int vpnd_usable_cpus(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int count = CPU_COUNT(&set);
        if (count > 0) return count;
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)online : 1;
}
