// SPDX-License-Identifier: MIT
// The floor of a user-space tunnel on this machine, for scripts/bench: a tun <-> UDP relay with no
// encryption, no authentication and no batching (poll, then one read and one send per packet, as
// OpenVPN, QuickTun or vtun move packets). It is not a VPN and must never carry real traffic; its
// row in the benchmark shows what the kernel's wake-ups and copies alone cost a round trip.
//
//   relay IFNAME LOCAL_PORT PEER_IPV4 PEER_PORT      (the interface is configured by the caller)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: relay IFNAME LOCAL_PORT PEER_IPV4 PEER_PORT\n");
        return 2;
    }
    int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    struct ifreq request;
    memset(&request, 0, sizeof request);
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    strncpy(request.ifr_name, argv[1], IFNAMSIZ - 1);
    if (tun < 0 || ioctl(tun, TUNSETIFF, &request) < 0) {
        fprintf(stderr, "relay: tun %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    struct sockaddr_in peer = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[4]))};
    if (sock < 0 || bind(sock, (struct sockaddr *)&local, sizeof local) < 0 ||
        inet_pton(AF_INET, argv[3], &peer.sin_addr) != 1) {
        fprintf(stderr, "relay: UDP socket: %s\n", strerror(errno));
        return 1;
    }
    static char packet[65536];
    struct pollfd ready[2] = {{.fd = tun, .events = POLLIN}, {.fd = sock, .events = POLLIN}};
    for (;;) {
        if (poll(ready, 2, -1) < 0) continue;
        if (ready[0].revents & POLLIN) {
            ssize_t n = read(tun, packet, sizeof packet);
            if (n > 0) sendto(sock, packet, (size_t)n, 0, (struct sockaddr *)&peer, sizeof peer);
        }
        if (ready[1].revents & POLLIN) {
            ssize_t n = recv(sock, packet, sizeof packet, 0);
            if (n > 0 && write(tun, packet, (size_t)n) < 0) continue;
        }
    }
}
