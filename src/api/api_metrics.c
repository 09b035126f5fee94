/* API metrics: request counts and latency histograms, the JSON metrics line, and the 60 s timer that writes it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "api/api_vmm.h"
#include "core/log.h"

void api_stats_record(struct api_vmm *v, int ep, int method, int status, uint64_t us)
{
	struct api_lat_stats *s = &v->unrouted;
	unsigned b = 0;

	if (ep >= 0 && ep < API_EP_COUNT && method >= 0 && method < API_METHOD_COUNT)
		s = &v->stats[ep][method];
	s->count++;
	if (status >= 400)
		s->errors++;
	s->sum_us += us;
	if (us > s->max_us)
		s->max_us = us;
	/* Bucket b holds latencies in [2^(b-1), 2^b) µs; bucket 0 is < 1 µs. */
	while (b < API_LAT_BUCKETS - 1 && us >= (1ull << b))
		b++;
	s->hist[b]++;
}

uint64_t api_stats_percentile(const struct api_lat_stats *s, unsigned pct)
{
	uint64_t want, seen = 0;

	if (!s->count || !pct)
		return 0;
	if (pct > 100)
		pct = 100;
	/* The rank of the percentile, rounded up: p99 of 100 samples is the 99th. */
	want = (s->count * pct + 99) / 100;
	for (unsigned b = 0; b < API_LAT_BUCKETS; b++) {
		seen += s->hist[b];
		if (seen >= want) {
			uint64_t upper = b < API_LAT_BUCKETS - 1 ? (1ull << b) : s->max_us;
			/* A bucket's bound can exceed every sample in it: never report above the max. */
			return upper < s->max_us ? upper : s->max_us;
		}
	}
	return s->max_us;
}

static json_t *lat_obj(const struct api_lat_stats *s)
{
	return json_pack("{sIsIsIsIsIsI}", "count", (json_int_t)s->count,
			 "errors", (json_int_t)s->errors,
			 "mean_us", (json_int_t)(s->count ? s->sum_us / s->count : 0),
			 "p50_us", (json_int_t)api_stats_percentile(s, 50),
			 "p99_us", (json_int_t)api_stats_percentile(s, 99),
			 "max_us", (json_int_t)s->max_us);
}

/* "api": totals over every endpoint, then one entry per endpoint and method that saw requests. */
static json_t *api_obj(const struct api_vmm *v)
{
	struct api_lat_stats all = v->unrouted;
	json_t *o = json_object(), *eps = json_object();
	char key[64];

	if (!o || !eps) {
		json_decref(o);
		json_decref(eps);
		return NULL;
	}
	for (int e = 0; e < API_EP_COUNT; e++) {
		for (int m = 0; m < API_METHOD_COUNT; m++) {
			const struct api_lat_stats *s = &v->stats[e][m];

			if (!s->count)
				continue;
			all.count += s->count;
			all.errors += s->errors;
			all.sum_us += s->sum_us;
			if (s->max_us > all.max_us)
				all.max_us = s->max_us;
			for (unsigned b = 0; b < API_LAT_BUCKETS; b++)
				all.hist[b] += s->hist[b];
			snprintf(key, sizeof(key), "%s %s", api_method_str((enum api_method)m),
				 api_endpoint_str((enum api_endpoint)e));
			json_object_set_new(eps, key, lat_obj(s));
		}
	}
	if (v->unrouted.count)
		json_object_set_new(eps, "unrouted", lat_obj(&v->unrouted));
	json_object_set_new(o, "requests", lat_obj(&all));
	json_object_set_new(o, "endpoints", eps);
	return o;
}

char *api_metrics_line(struct api_vmm *v)
{
	struct timespec now;
	json_t *o = json_object();
	char *s, *grown;
	size_t len;

	if (!o)
		return NULL;
	clock_gettime(CLOCK_REALTIME, &now);
	json_object_set_new(o, "utc_timestamp_ms",
			    json_integer((json_int_t)now.tv_sec * 1000 + now.tv_nsec / 1000000));
	json_object_set_new(o, "seq", json_integer((json_int_t)v->metrics_lines));
	if (v->metrics.kind == API_BODY_METRICS && v->metrics.u.metrics.emit_id)
		json_object_set_new(o, "instance_id", json_string(v->id));
	json_object_set_new(o, "state", json_string(api_state_str(v->state)));
	json_object_set_new(o, "uptime_ms",
			    json_integer((json_int_t)((api_now_ns() - v->created_ns) / 1000000)));
	/* The VM's own counters exist only while it does. */
	if ((v->state == API_STATE_RUNNING || v->state == API_STATE_PAUSED) && v->ops->metrics)
		v->ops->metrics(v->opaque, o);
	json_object_set_new(o, "api", api_obj(v));
	if (v->metrics.kind == API_BODY_METRICS && v->metrics.u.metrics.properties.n) {
		const struct api_str_map *p = &v->metrics.u.metrics.properties;
		json_t *props = json_object();

		for (size_t i = 0; props && i < p->n; i++)
			json_object_set_new(props, p->v[i].key, json_string(p->v[i].value));
		json_object_set_new(o, "properties", props);
	}
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!s)
		return NULL;
	/* Room for the caller's newline. */
	len = strlen(s);
	grown = realloc(s, len + 2);
	if (!grown) {
		free(s);
		return NULL;
	}
	return grown;
}

int api_metrics_flush(struct api_vmm *v, struct api_err *err)
{
	char *line;
	size_t len;
	ssize_t n;

	if (v->metrics_fd < 0) {
		api_err_set(err, 400, "No metrics file: configure one with PUT /metrics first.");
		return -ENOENT;
	}
	line = api_metrics_line(v);
	if (!line) {
		api_err_set(err, 500, "out of memory");
		return -ENOMEM;
	}
	len = strlen(line);
	line[len] = '\n';
	/* One write per line (O_APPEND): a reader never sees half a line from kiln. */
	n = write(v->metrics_fd, line, len + 1);
	free(line);
	if (n < 0) {
		int e = errno;
		api_err_set(err, 400, "Cannot write the metrics line: %s.", strerror(e));
		return -e;
	}
	v->metrics_lines++;
	return 0;
}

static void *timer_main(void *arg)
{
	struct api_vmm *v = arg;
	struct timespec deadline;
	struct api_err err;

	pthread_setname_np(pthread_self(), "kiln-metrics");
	pthread_mutex_lock(&v->lock);
	while (!v->timer_quit) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += v->metrics_period_ms / 1000;
		deadline.tv_nsec += (long)(v->metrics_period_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		while (!v->timer_quit &&
		       pthread_cond_timedwait(&v->timer_cv, &v->lock, &deadline) != ETIMEDOUT) {
			/* woken early: re-check quit, keep the deadline */
		}
		if (v->timer_quit)
			break;
		if (v->metrics_fd >= 0 && api_metrics_flush(v, &err))
			log_warn("metrics: %s", err.msg);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int api_metrics_timer_start(struct api_vmm *v)
{
	int ret;

	if (v->timer_running)
		return 0;
	v->timer_quit = false;
	ret = pthread_create(&v->timer, NULL, timer_main, v);
	if (ret)
		return -ret;
	v->timer_running = true;
	return 0;
}

void api_metrics_timer_stop(struct api_vmm *v)
{
	bool running;

	pthread_mutex_lock(&v->lock);
	running = v->timer_running;
	v->timer_quit = true;
	pthread_cond_broadcast(&v->timer_cv);
	pthread_mutex_unlock(&v->lock);
	if (running)
		pthread_join(v->timer, NULL);
	v->timer_running = false;
}

/* A whole-token unsigned number, decimal or 0x hex; false for anything else. */
static bool parse_num(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	unsigned base = 10;
	size_t i = 0;

	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i >= n || n - i > 16)
		return false;
	for (; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return false;
		if (v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

static bool key_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-' || c == '.';
}

unsigned api_parse_counters(const char *text, size_t len, json_t *obj)
{
	char prefix[32] = "", key[96];
	size_t i = 0;
	bool line_start = true;
	const char *pend_key = NULL;   /* a bare word that may be followed by its number */
	size_t pend_len = 0;
	unsigned added = 0;

	while (i < len) {
		size_t s, n;
		bool close = false;
		const char *t, *eq;
		uint64_t val;

		if (text[i] == '\n') {
			line_start = true;
			pend_key = NULL;
			prefix[0] = '\0';
			i++;
			continue;
		}
		if (text[i] == ' ' || text[i] == '\t') {
			i++;
			continue;
		}
		s = i;
		while (i < len && text[i] != ' ' && text[i] != '\t' && text[i] != '\n')
			i++;
		t = text + s;
		n = i - s;
		/* "name:" opens each line: the device name, not a counter. */
		if (line_start && n && t[n - 1] == ':') {
			line_start = false;
			continue;
		}
		line_start = false;
		/* "q0[chains=3" opens a group, "faults=0]" closes it. */
		for (size_t j = 0; j < n; j++) {
			if (t[j] == '[') {
				size_t pl = j < sizeof(prefix) - 2 ? j : sizeof(prefix) - 2;
				memcpy(prefix, t, pl);
				prefix[pl] = '.';
				prefix[pl + 1] = '\0';
				t += j + 1;
				n -= j + 1;
				break;
			}
		}
		if (n && t[n - 1] == ']') {
			close = true;
			n--;
		}
		eq = memchr(t, '=', n);
		if (eq) {
			size_t kl = (size_t)(eq - t);
			if (kl && parse_num(eq + 1, n - kl - 1, &val)) {
				snprintf(key, sizeof(key), "%s%.*s", prefix, (int)kl, t);
				json_object_set_new(obj, key, json_integer((json_int_t)(val & INT64_MAX)));
				added++;
			}
			pend_key = NULL;
		} else if (pend_key && parse_num(t, n, &val)) {
			snprintf(key, sizeof(key), "%s%.*s", prefix, (int)pend_len, pend_key);
			json_object_set_new(obj, key, json_integer((json_int_t)(val & INT64_MAX)));
			added++;
			pend_key = NULL;
		} else {
			bool word = n > 0;
			for (size_t j = 0; j < n; j++)
				word = word && key_char(t[j]);
			pend_key = word ? t : NULL;
			pend_len = n;
		}
		if (close)
			prefix[0] = '\0';
	}
	return added;
}
