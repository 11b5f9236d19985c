/* host/msgq: the bounded queue from the encoder and the main thread to a stream's thread. */
#define LOG_MODULE "stream"
#include "host/internal.h"
#include "pkg/clock/clock.h"
#include "pkg/log/log.h"

#include <stdlib.h>
#include <string.h>

void host__queue_put(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n, bool video,
                     bool key)
{
	struct msgq *q = &s->q;
	uint8_t *copy = malloc(n ? n : 1);
	bool full;

	if (copy && n)
		memcpy(copy, p, n);
	pthread_mutex_lock(&q->lock);
	full = !copy || q->n == QUEUE_MAX || q->bytes + n > QUEUE_MAX_BYTES;
	if (full) {
		if (video)
			q->video_dropped++;
		else
			q->feed_dropped++;
	} else {
		struct qmsg *m = &q->m[(q->head + q->n) % QUEUE_MAX];

		*m = (struct qmsg){copy, n, opcode, video, key};
		q->n++;
		q->bytes += n;
	}
	pthread_mutex_unlock(&q->lock);
	if (full) {
		free(copy);
		return;
	}
	host__wake(s, &s->queue_async);
}

bool host__queue_take(struct host_stream *s, struct qmsg *out)
{
	struct msgq *q = &s->q;
	bool got;

	pthread_mutex_lock(&q->lock);
	got = q->n > 0;
	if (got) {
		*out = q->m[q->head];
		q->head = (q->head + 1) % QUEUE_MAX;
		q->n--;
		q->bytes -= out->len;
	}
	pthread_mutex_unlock(&q->lock);
	return got;
}

void host_stream_push(struct host_stream *s, uint8_t opcode, const uint8_t *p, size_t n)
{
	host__queue_put(s, opcode, p, n, false, false);
}

void host__feed_dropped(struct host_stream *s)
{
	pthread_mutex_lock(&s->q.lock);
	s->q.feed_dropped++;
	pthread_mutex_unlock(&s->q.lock);
}
