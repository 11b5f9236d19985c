/*
 * ttlmap: see ttlmap.h. Chained buckets with new entries first (the order of each() is the
 * order relay/cluster_*.c had before they shared this table).
 */
#include "pkg/ttlmap/ttlmap.h"

#include <stdlib.h>

uint32_t ttlmap_hash(uint32_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

struct ttlmap_entry **ttlmap_find(struct ttlmap *m, uint32_t hash, const void *key)
{
	struct ttlmap_entry **p = &m->b[hash % m->buckets];

	while (*p && !m->match(*p, key))
		p = &(*p)->next;
	return p;
}

bool ttlmap_fresh(const struct ttlmap *m, const struct ttlmap_entry *e, int64_t now_ms)
{
	return now_ms - e->seen_ms <= m->ttl_ms;
}

struct ttlmap_entry *ttlmap_get(struct ttlmap *m, uint32_t hash, const void *key, int64_t now_ms)
{
	struct ttlmap_entry *e = *ttlmap_find(m, hash, key);

	return e && ttlmap_fresh(m, e, now_ms) ? e : NULL;
}

void *ttlmap_add(struct ttlmap *m, uint32_t hash, size_t size, int64_t now_ms)
{
	struct ttlmap_entry *e, **head = &m->b[hash % m->buckets];

	if (m->n >= m->max || size < sizeof(*e) || !(e = calloc(1, size)))
		return NULL;
	e->seen_ms = now_ms;
	e->next = *head;
	*head = e;
	m->n++;
	return e;
}

void ttlmap_remove(struct ttlmap *m, struct ttlmap_entry **link, bool tell)
{
	struct ttlmap_entry *e = *link;

	*link = e->next;
	m->n--;
	if (m->gone)
		m->gone(e, tell);
	free(e);
}

void ttlmap_sweep(struct ttlmap *m, int64_t now_ms)
{
	for (size_t i = 0; i < m->buckets; i++)
		for (struct ttlmap_entry **p = &m->b[i]; *p;)
			if (ttlmap_fresh(m, *p, now_ms))
				p = &(*p)->next;
			else
				ttlmap_remove(m, p, true);
}

void ttlmap_clear(struct ttlmap *m)
{
	for (size_t i = 0; i < m->buckets; i++)
		while (m->b[i])
			ttlmap_remove(m, &m->b[i], false);
}

static void each_of(struct ttlmap *m, size_t i, int64_t now_ms,
                    void (*cb)(struct ttlmap_entry *e, void *arg), void *arg)
{
	for (struct ttlmap_entry *e = m->b[i]; e; e = e->next)
		if (ttlmap_fresh(m, e, now_ms))
			cb(e, arg);
}

void ttlmap_each(struct ttlmap *m, int64_t now_ms, void (*cb)(struct ttlmap_entry *e, void *arg),
                 void *arg)
{
	for (size_t i = 0; i < m->buckets; i++)
		each_of(m, i, now_ms, cb, arg);
}

void ttlmap_each_in(struct ttlmap *m, uint32_t hash, int64_t now_ms,
                    void (*cb)(struct ttlmap_entry *e, void *arg), void *arg)
{
	each_of(m, hash % m->buckets, now_ms, cb, arg);
}
