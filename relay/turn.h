/*
 * relay/turn: the built-in STUN/TURN server (RFC 8489, RFC 8656) on a thread and libuv loop of
 * its own, so that a TURN flood does not delay relay serve's websockets. UDP and TCP on
 * --turn-listen, TLS on --turns-listen; long-term credentials in coturn's REST form
 * (pkg/turncred). See docs/turn.md.
 *
 * Threads: every function here is called from relay serve's main loop thread. configure and
 * start set everything up there and then start the TURN thread; stop joins it. The calls that
 * read or change TURN state (end_booking, metrics, status_json, bookings_json) run on the TURN
 * loop and wait for it; the settings (on, port, turns_port, secret, realm) are fixed before the
 * thread starts and are read directly. The TURN thread calls back into the main loop only through
 * a queue (a Binding's USERNAME for relay_meet_udp_seen) and reads the deny list through
 * pkg/store's lock.
 */
#ifndef RELAY_TURN_H
#define RELAY_TURN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>
#include <uv.h>

struct server;

/*
 * Check and load the TURN settings (addresses, ports, allowed peers, realm, secret): 0, also
 * when TURN is off, or -EINVAL with the reason in @why (a bad setting: the relay exits 2).
 */
int relay_turn_configure(struct server *s, char why[256]);
/*
 * Start the listeners and the TURN thread when --turn-listen or --turns-listen is set (else 0,
 * nothing runs), after relay_turn_configure(). @loop is the main loop (STUN Bindings for
 * meetings are posted to it). 0, or -errno with the reason in @why (the relay then refuses to
 * start; call relay_turn_stop()).
 */
int relay_turn_start(struct server *s, uv_loop_t *loop, char why[256]);
/* Close every allocation and listener on the TURN loop and join the thread; a handle on @loop
 * (the Binding queue's) closes on the main loop's next pass. */
void relay_turn_stop(void);

/* true when a TURN listener runs. */
bool relay_turn_on(void);
/* Bound ports of --turn-listen (UDP and TCP share it) and --turns-listen; 0 when off. */
int relay_turn_port(void);
int relay_turns_port(void);
/* The REST secret credentials are checked against (@*len bytes, not NUL-terminated); NULL when
 * TURN is off. Borrowed: never log it. */
const char *relay_turn_secret(size_t *len);
/* The realm (--turn-realm or the audience's host), "" when off. */
const char *relay_turn_realm(void);

/*
 * The memory budget (--max-memory; relay/ws.c and turn_stream.c): bytes TURN over TCP/TLS holds
 * in output buffers (capacity, in flight included), from any thread; and, from the main thread,
 * what websockets hold now, which TURN output may not push past the budget (it is dropped
 * instead). Atomics, no lock: safe whether or not TURN runs.
 */
size_t relay_turn_stream_held(void);
/* What TCP/TLS connections without an allocation hold (small requests and STUN answers, each
 * bounded): counted apart, outside the budget. */
size_t relay_turn_stream_unallocated(void);
void relay_turn_note_ws_held(size_t bytes);

/* End the allocations of booking @bid (the user part of their usernames); returns how many. */
size_t relay_turn_end_booking(const char *bid);
/* The same for @n bookings in one round trip to the TURN thread (a cluster's link-up load). */
size_t relay_turn_end_bookings(const char *const *bids, size_t n);
/* Prometheus lines of the TURN counters into @f (nothing when off). */
void relay_turn_metrics(FILE *f);
/* {"booking": allocations, ...} for /status (new reference; {} when off). */
json_t *relay_turn_status_json(void);
/* {"booking": {allocations, to_peer_packets, to_peer_bytes, from_peer_packets, from_peer_bytes}}
 * (new reference; {} when off). */
json_t *relay_turn_bookings_json(void);

#endif
