/*
 * relay/admin: the operator's endpoints. The booking deny/allow list (/bids/deny, /bids/allow:
 * relay:admin tokens) and operations (/status for relay:stats, /metrics, /healthz). Routing and
 * the writing of answers are http.c's.
 */
#define LOG_MODULE "admin"
#include "relay/internal.h"
#include "pkg/log/log.h"

#include <errno.h>
#include <jansson.h>
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

/* Parse ?bid=B&exp=T; on failure answer 400 and return false. */
static bool bid_args(struct lws *wsi, struct conn *c, char *bid, size_t len, int64_t *exp, int *ret)
{
	char ebuf[64];
	const char *b = lws_get_urlarg_by_name(wsi, "bid=", bid, (int)len);
	const char *e = lws_get_urlarg_by_name(wsi, "exp=", ebuf, sizeof(ebuf));
	char *end;

	if (!b || !*b || strlen(b) > STORE_BID_MAX) {
		*ret = relay_respond_error(wsi, c, 400,
		                           "bid (booking id) missing or longer than 127 bytes");
		return false;
	}
	memmove(bid, b, strlen(b) + 1);
	*exp = e ? strtoll(e, &end, 10) : 0;
	if (!e || !*e || *end || *exp <= relay_now_ms() / 1000) {
		*ret = relay_respond_error(
		        wsi, c, 400, "exp (booking expiry, unix seconds) missing or in the past");
		return false;
	}
	return true;
}

static int bids_change(struct server *s, struct lws *wsi, struct conn *c, bool deny)
{
	char bid[STORE_BID_MAX + 8];
	int64_t exp;
	int ret = 0, err;
	size_t closed = 0;

	if (!bid_args(wsi, c, bid, sizeof(bid), &exp, &ret))
		return ret;
	err = deny ? store_deny(s->store, bid, exp) : store_allow(s->store, bid, exp);
	if (err) {
		log_err("cannot %s booking '%s': state write failed", deny ? "deny" : "allow", bid);
		return relay_respond_error(wsi, c, 503, "cannot write state");
	}
	if (deny) {
		s->m.bookings_denied++;
		codes_drop_booking(s->codes, bid);
		closed = relay_close_booking(bid);
	}
	log_notice("booking '%s' %s until %lld%s%zu connection(s) closed", bid,
	           deny ? "denied" : "allowed", (long long)exp, deny ? ", " : "", closed);
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

int relay_get_status(struct server *s, struct lws *wsi, struct conn *c)
{
	struct rjwt_claims cl;
	const char *why = relay_verify(s, wsi, &cl);
	json_t *a;
	char *body;
	bool allowed;

	if (why)
		return relay_respond_error(wsi, c, 401, why);
	allowed = relay_has_stats_scope(&cl);
	rjwt_claims_release(&cl);
	if (!allowed)
		return relay_respond_error(wsi, c, 401, "token missing relay:stats scope");
	a = relay_status_json();
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
	bool ok = !s->stopping && store_is_healthy(s->store);
	json_t *o = json_pack("{s:s}", "status",
	                      ok            ? "ok"
	                      : s->stopping ? "stopping"
	                                    : "state not writable");
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	return relay_respond(wsi, c, ok ? 200 : 503, body);
}
