/*
 * relay/admin: the operator's endpoints. The booking deny/allow list (/bids/deny, /bids/allow:
 * relay:admin tokens) and operations (/status for relay:stats, /metrics, /healthz). Routing and
 * the writing of answers are http.c's.
 */
#define LOG_MODULE "admin"
#include "relay/internal.h"
#include "relay/cluster.h"
#include "relay/turn.h"
#include "pkg/log/log.h"
#include "pkg/utf8/utf8.h"

#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- /bids/deny and /bids/allow ---- */

static void add_bid(const char *bid, int64_t exp, void *arg)
{
	(void)exp;
	json_array_append_new(arg, json_string(bid));
}

static int bids_list(struct server *s, struct lws *wsi, struct conn *c, enum store_list which)
{
	json_t *ids = json_array(), *o;
	char *body;

	store_list(s->store, which, relay_now_ms() / 1000, add_bid, ids);
	o = json_pack("{s:o}", "booking_ids", ids);
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return body ? relay_respond(wsi, c, 200, body)
	            : relay_respond_error(wsi, c, 503, "out of memory");
}

/* One query argument as lws hands it (percent-decoded): "bid=" and a 127-byte id fit. */
#define ARG_MAX 256

/* The arguments of POST /bids/deny?bid=B&exp=T (also /bids/allow), in any order. */
struct bid_query {
	char bid[STORE_BID_MAX + 1];
	int64_t exp;
	bool has_bid, has_exp;
};

/* The last second of year 9999: an exp past it is refused (every instance and Redis's script
 * read what /bids accepts; a 19-digit exp once got lost between instances). */
#define EXP_MAX 253402300799LL

/*
 * exp: unix seconds, digits only. -EINVAL, or -ERANGE past EXP_MAX (and past 2^63-1, which
 * strtoll() would cap silently).
 */
static int parse_exp(const char *s, int64_t *exp)
{
	int64_t v = 0;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -EINVAL;
	for (; *s; s++) {
		if (v > (INT64_MAX - (*s - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (*s - '0');
	}
	*exp = v;
	return v > EXP_MAX ? -ERANGE : 0;
}

/* Take one "name=value" argument; NULL, or the reason for a 400. Others are ignored. */
static const char *bid_query_arg(struct bid_query *q, const char *arg)
{
	size_t len = strlen(arg);

	if (strncmp(arg, "bid=", 4) == 0) {
		if (q->has_bid)
			return "bid given twice";
		if (len - 4 > STORE_BID_MAX)
			return "bid (booking id) longer than 127 bytes";
		/* A token's booking_id is a JSON string, so UTF-8: another id could never match
		 * one, and could not be listed. */
		if (!utf8_valid((const uint8_t *)arg + 4, len - 4))
			return "bid (booking id) is not UTF-8";
		memcpy(q->bid, arg + 4, len - 4 + 1);
		q->has_bid = true;
	} else if (strncmp(arg, "exp=", 4) == 0) {
		if (q->has_exp)
			return "exp given twice";
		switch (parse_exp(arg + 4, &q->exp)) {
		case 0:
			break;
		case -ERANGE:
			return "exp (booking expiry) is past year 9999 (253402300799)";
		default:
			return "exp (booking expiry) must be unix seconds";
		}
		q->has_exp = true;
	}
	return NULL;
}

/* Once every argument is in: NULL, or the reason for a 400. */
static const char *bid_query_check(const struct bid_query *q, int64_t now_s)
{
	if (!q->has_bid || !q->bid[0])
		return "bid (booking id) missing";
	if (!q->has_exp)
		return "exp (booking expiry, unix seconds) missing";
	if (q->exp <= now_s)
		return "exp (booking expiry) is in the past";
	return NULL;
}

/*
 * Every query argument, whatever its length and order (lws_get_urlarg_by_name() stops at the
 * first argument longer than its buffer, so a long bid hid the exp after it); NULL or the
 * reason for a 400.
 */
static const char *bid_query_read(struct lws *wsi, struct bid_query *q, int64_t now_s)
{
	char arg[ARG_MAX];
	const char *why;

	memset(q, 0, sizeof(*q));
	for (int i = 0;; i++) {
		if (lws_hdr_copy_fragment(wsi, arg, sizeof(arg), WSI_TOKEN_HTTP_URI_ARGS, i) < 0) {
			if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
				return "a query argument is too long (bid: at most 127 bytes)";
			break;
		}
		why = bid_query_arg(q, arg);
		if (why)
			return why;
	}
	return bid_query_check(q, now_s);
}

static int bids_change(struct server *s, struct lws *wsi, struct conn *c, bool deny)
{
	struct bid_query q;
	const char *why = bid_query_read(wsi, &q, relay_now_ms() / 1000);
	int err;
	size_t closed = 0;
	/* Redis's clock, raised past every version seen here if need be (store_change) */
	int64_t ver = relay_cluster_now_ms();

	if (why)
		return relay_respond_error(wsi, c, 400, why);
	err = store_change(s->store, q.bid, deny, q.exp, &ver);
	if (err) {
		log_err("cannot %s booking '%s': state write failed", deny ? "deny" : "allow",
		        q.bid);
		return relay_respond_error(wsi, c, 503, "cannot write state");
	}
	relay_cluster_bid(deny, q.bid, q.exp, ver); /* every instance, and Redis */
	if (deny) {
		s->m.bookings_denied++;
		codes_drop_booking(s->codes, q.bid);
		closed = relay_close_booking(q.bid);
		relay_turn_end_booking(q.bid); /* its TURN allocations end now too */
	}
	log_notice("booking '%s' %s until %lld%s%zu connection(s) closed", q.bid,
	           deny ? "denied" : "allowed", (long long)q.exp, deny ? ", " : "", closed);
	return relay_respond(wsi, c, 204, NULL);
}

int relay_bids(struct server *s, struct lws *wsi, struct conn *c, bool list, bool deny)
{
	struct rjwt_claims cl;
	const char *why = relay_verify(s, wsi, &cl);
	bool admin;

	if (why)
		return relay_respond_error(wsi, c, 401, why);
	admin = rjwt_has_scope(&cl, "relay:admin");
	rjwt_claims_release(&cl);
	if (!admin)
		return relay_respond_error(wsi, c, 401, "token missing relay:admin scope");
	if (list)
		return bids_list(s, wsi, c, deny ? STORE_DENIED : STORE_ALLOWED);
	return bids_change(s, wsi, c, deny);
}

/* ---- operations: /status, /metrics, /healthz ---- */

/* The query has the argument @arg ("name" or "name=value") exactly. */
static bool has_query_arg(struct lws *wsi, const char *arg)
{
	char buf[64];

	for (int i = 0;
	     lws_hdr_copy_fragment(wsi, buf, sizeof(buf), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++)
		if (strcmp(buf, arg) == 0)
			return true;
	return false;
}

int relay_get_status(struct server *s, struct lws *wsi, struct conn *c)
{
	struct rjwt_claims cl;
	const char *why = relay_verify(s, wsi, &cl);
	json_t *a;
	char *body;
	bool allowed, cluster;

	if (why)
		return relay_respond_error(wsi, c, 401, why);
	cluster = has_query_arg(wsi, "scope=cluster");
	allowed = cluster ? rjwt_has_scope(&cl, "relay:admin") : relay_has_stats_scope(&cl);
	rjwt_claims_release(&cl);
	if (!allowed)
		return relay_respond_error(wsi, c, 401,
		                           cluster ? "token missing relay:admin scope"
		                                   : "token missing relay:stats scope");
	a = cluster ? relay_cluster_status() : relay_status_json();
	body = a ? json_dumps(a, JSON_COMPACT) : NULL;
	json_decref(a);
	return body ? relay_respond(wsi, c, 200, body)
	            : relay_respond_error(wsi, c, 503, "out of memory");
}

int relay_get_metrics(struct lws *wsi, struct conn *c)
{
	char *text = relay_metrics_text();

	if (!text)
		return relay_respond_error(wsi, c, 503, "out of memory");
	return relay_respond_type(wsi, c, 200, "text/plain; version=0.0.4", text);
}

int relay_get_healthz(struct server *s, struct lws *wsi, struct conn *c)
{
	const char *trouble = relay_cluster_trouble(); /* NULL without --redis */
	bool live = has_query_arg(wsi, "live");        /* liveness: the process answers */
	bool ok = live || (!s->stopping && store_is_healthy(s->store) && !trouble);
	json_t *o = json_pack("{s:s}", "status",
	                      ok                            ? "ok"
	                      : s->stopping                 ? "stopping"
	                      : !store_is_healthy(s->store) ? "state not writable"
	                                                    : trouble);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return relay_respond(wsi, c, ok ? 200 : 503, body);
}
