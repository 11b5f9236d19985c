/*
 * group_test: pkg/group against its contract (pkg/group/group.h): Disco's README body parses
 * and builds into Disco's field order with defaults; fields given replace those of a base and
 * the rest are kept; ID, AppID and LastUpdated come from the caller; unknown fields and
 * LastUpdated are dropped; each wrong shape is refused with a reason; id syntax.
 */
#include "pkg/group/group.h"
#include "test/harness.h"

#include <errno.h>
#include <stdlib.h>

static json_t *parse(const char *s)
{
	char why[GROUP_WHY];
	json_t *g = NULL;
	int ret = group_parse(s, strlen(s), &g, why);

	CHECK_EQ(ret, 0);
	if (ret)
		fprintf(stderr, "group_parse(%s): %s\n", s, why);
	return g;
}

static char *text(const json_t *base, const json_t *fields)
{
	json_t *g = group_build(base, fields, "id-1", "App", 1700000000, 300);
	char *s = json_dumps(g, JSON_COMPACT);

	json_decref(g);
	return s;
}

static void test_disco_body(void)
{
	json_t *f =
	        parse("{\"Name\":\"office group\",\"AppID\":\"BabbleChat\",\"Peers\":[{\"NetAddr\":"
	              "\"thenetaddr\",\"PubKeyHex\":\"thepubkey\",\"Moniker\":\"Monica\"}],"
	              "\"LastUpdated\":5,\"Extra\":[1]}");
	char *s = text(NULL, f);

	CHECK_EQ(strcmp(s, "{\"ID\":\"id-1\",\"Name\":\"office group\",\"AppID\":\"App\","
	                   "\"PubKey\":\"\",\"LastUpdated\":1700000000,\"TTL\":300,\"Peers\":[{"
	                   "\"NetAddr\":\"thenetaddr\",\"PubKeyHex\":\"thepubkey\",\"Moniker\":"
	                   "\"Monica\"}],\"GenesisPeers\":[]}"),
	         0);
	CHECK(json_object_get(f, "Extra") == NULL);
	CHECK(json_object_get(f, "LastUpdated") == NULL);
	free(s);
	json_decref(f);
}

static void test_merge(void)
{
	json_t *base = parse("{\"Name\":\"a\",\"PubKey\":\"k\",\"Peers\":[{\"Moniker\":\"x\"}]}");
	json_t *patch = parse("{\"Name\":\"b\",\"Peers\":null}");
	char *b = text(NULL, base);
	json_t *stored = json_loads(b, 0, NULL);
	char *s = text(stored, patch);

	CHECK(strstr(s, "\"Name\":\"b\"") != NULL);
	CHECK(strstr(s, "\"PubKey\":\"k\"") != NULL);
	CHECK(strstr(s, "\"Peers\":[]") != NULL); /* null: empty */
	CHECK(strstr(b, "{\"NetAddr\":\"\",\"PubKeyHex\":\"\",\"Moniker\":\"x\"}") !=
	      NULL); /* peer filled */
	free(s);
	free(b);
	json_decref(stored);
	json_decref(base);
	json_decref(patch);
}

static void test_refused(void)
{
	static const char *const bad[] = {
	        "",
	        "{",
	        "[]",
	        "\"x\"",
	        "{} {}",
	        "{\"Name\":1}",
	        "{\"ID\":\"\"}",
	        "{\"ID\":\"a b\"}",
	        "{\"TTL\":1.5}",
	        "{\"TTL\":-3}",
	        "{\"Peers\":[1]}",
	        "{\"GenesisPeers\":\"x\"}",
	        "{\"Peers\":[{\"Moniker\":[]}]}",
	        "{\"a\":1,\"a\":2}",
	        "{\"Name\":\"\\u0000\"}",
	};
	char why[GROUP_WHY];
	json_t *g;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		g = (json_t *)1;
		CHECK_EQ(group_parse(bad[i], strlen(bad[i]), &g, why), -EINVAL);
		CHECK(g == NULL);
		CHECK(why[0] != '\0');
	}
}

static void test_limits(void)
{
	char why[GROUP_WHY], *big = malloc(GROUP_STR_MAX + 32);
	json_t *g = NULL;

	snprintf(big, GROUP_STR_MAX + 32, "{\"Name\":\"%0*d\"}", GROUP_STR_MAX, 0);
	CHECK_EQ(group_parse(big, strlen(big), &g, why), 0);
	json_decref(g);
	snprintf(big, GROUP_STR_MAX + 32, "{\"Name\":\"%0*d\"}", GROUP_STR_MAX + 1, 0);
	CHECK_EQ(group_parse(big, strlen(big), &g, why), -EINVAL);
	free(big);
	CHECK(group_id_ok("8f41c928-360b-4202-90f1-a7efa6b7ffd3"));
	CHECK(group_id_ok("a.b_c~d:e"));
	CHECK(!group_id_ok(""));
	CHECK(!group_id_ok("a/b"));
	CHECK(!group_id_ok("a%2F"));
	CHECK(!group_id_ok("0123456789012345678901234567890123456789012345678901234567890123X"));
}

int main(void)
{
	RUN(test_disco_body());
	RUN(test_merge());
	RUN(test_refused());
	RUN(test_limits());
	return harness_done();
}
