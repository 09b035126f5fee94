/* `kiln ctl`: drive a kiln (or Firecracker) over its API socket: start, pause, resume, metrics, raw requests. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <jansson.h>
#include "cli/ctl.h"

const char ctl_usage[] =
"usage: kiln ctl --api-sock PATH [--timeout SECONDS] VERB [ARGS]\n"
"\n"
"Send one request to the REST API of a `kiln run --api-sock PATH`.\n"
"\n"
"  info                 GET /                 instance id, state, version\n"
"  config               GET /vm/config        the whole configuration (JSON)\n"
"  version              GET /version\n"
"  start                PUT /actions          InstanceStart\n"
"  pause                PATCH /vm             {\"state\":\"Paused\"}\n"
"  resume               PATCH /vm             {\"state\":\"Resumed\"}\n"
"  ctrl-alt-del         PUT /actions          SendCtrlAltDel\n"
"  metrics              PUT /actions          FlushMetrics (a line to the metrics file)\n"
"  get PATH             GET PATH\n"
"  put PATH JSON        PUT PATH with the body JSON (- reads stdin, @FILE a file)\n"
"  patch PATH JSON      PATCH PATH with the body JSON\n"
"\n"
"  --timeout SECONDS    give up waiting for the answer (default 30)\n"
"\n"
"A JSON answer is printed on stdout; an error's fault_message on stderr.\n"
"Exit codes: 0 done (2xx), 1 the API refused (4xx/5xx), 2 bad command line,\n"
"3 no answer (socket missing or refused, timeout, not HTTP).\n";

#define CTL_DEFAULT_TIMEOUT_S 30
#define CTL_MAX_BODY (64 * 1024)

static long remaining_ms(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* Wait for fd to be ready for `events` until the deadline. 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, const struct timespec *deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		long left = remaining_ms(deadline);
		int r;

		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int ctl_parse_response(const char *buf, size_t len, int *status, size_t *body_off,
		       size_t *body_len)
{
	const char *hdr_end = NULL, *p, *line;
	size_t off;
	long cl = -1;

	/* "HTTP/1.1 204 No Content": a 3-digit code after the version (RFC 9112 §4). */
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) || buf[8] != ' ' ||
	    buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9')
		return -EPROTO;
	*status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	for (size_t i = 0; i + 3 < len; i++) {
		if (!memcmp(buf + i, "\r\n\r\n", 4)) {
			hdr_end = buf + i;
			break;
		}
	}
	if (!hdr_end)
		return -EPROTO;
	/* Content-Length, if any, bounds the body (header names are case-insensitive). */
	for (line = memchr(buf, '\n', (size_t)(hdr_end - buf)); line && line < hdr_end;
	     line = memchr(line, '\n', (size_t)(hdr_end - line))) {
		line++;
		if (hdr_end - line > 15 && !strncasecmp(line, "Content-Length:", 15)) {
			char *end;
			p = line + 15;
			while (*p == ' ' || *p == '\t')
				p++;
			errno = 0;
			cl = strtol(p, &end, 10);
			if (errno || end == p || cl < 0)
				return -EPROTO;
		}
	}
	off = (size_t)(hdr_end - buf) + 4;
	*body_off = off;
	*body_len = len - off;
	if (cl >= 0) {
		if ((size_t)cl > len - off)
			return -EPROTO;   /* the connection closed early */
		*body_len = (size_t)cl;
	}
	return 0;
}

int ctl_http(const char *sock, const char *method, const char *path, const char *body,
	     int timeout_ms, int *status, char **resp, char *msg, size_t msglen)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timespec deadline;
	size_t blen = body ? strlen(body) : 0, hlen, len = 0, cap = 4096, off, n;
	char head[512], *buf = NULL;
	int fd, ret;

	*resp = NULL;
	if (strlen(sock) >= sizeof(a.sun_path)) {
		snprintf(msg, msglen, "%s: socket path too long", sock);
		return -ENAMETOOLONG;
	}
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		snprintf(msg, msglen, "%s: %s%s", sock, strerror(-ret),
			 ret == -ECONNREFUSED ? " (no kiln serves this socket)" : "");
		if (fd >= 0)
			close(fd);
		return ret;
	}
	hlen = (size_t)snprintf(head, sizeof(head),
				"%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
				"Connection: close\r\n", method, path);
	if (body)
		hlen += (size_t)snprintf(head + hlen, sizeof(head) - hlen,
					 "Content-Type: application/json\r\nContent-Length: %zu\r\n",
					 blen);
	hlen += (size_t)snprintf(head + hlen, sizeof(head) - hlen, "\r\n");
	if (hlen >= sizeof(head)) {
		snprintf(msg, msglen, "request line too long");
		close(fd);
		return -E2BIG;
	}
	/* Headers, then the body; MSG_NOSIGNAL: a server that went away is an error, not SIGPIPE. */
	for (int part = 0; part < 2; part++) {
		const char *src = part ? body : head;
		size_t total = part ? blen : hlen;

		for (off = 0; off < total;) {
			ssize_t w;

			ret = wait_fd(fd, POLLOUT, &deadline);
			if (ret)
				goto io_error;
			w = send(fd, src + off, total - off, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				ret = -errno;
				goto io_error;
			}
			off += (size_t)w;
		}
	}
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		goto io_error;
	}
	for (;;) {
		ssize_t r;

		if (len + 1 >= cap) {
			char *nb;
			if (cap >= CTL_MAX_RESPONSE) {
				snprintf(msg, msglen, "%s: answer larger than %d bytes", sock,
					 CTL_MAX_RESPONSE);
				ret = -EFBIG;
				goto out;
			}
			nb = realloc(buf, cap * 2);
			if (!nb) {
				ret = -ENOMEM;
				goto io_error;
			}
			buf = nb;
			cap *= 2;
		}
		ret = wait_fd(fd, POLLIN, &deadline);
		if (ret)
			goto io_error;
		r = recv(fd, buf + len, cap - 1 - len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			goto io_error;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	if (ctl_parse_response(buf, len, status, &off, &n)) {
		snprintf(msg, msglen, "%s: not an HTTP answer", sock);
		ret = -EPROTO;
		goto out;
	}
	memmove(buf, buf + off, n);
	buf[n] = '\0';
	*resp = buf;
	buf = NULL;
	ret = 0;
	goto out;
io_error:
	snprintf(msg, msglen, "%s: %s", sock, ret == -ETIMEDOUT ? "no answer in time" : strerror(-ret));
out:
	free(buf);
	close(fd);
	return ret;
}

/* The body argument of put/patch: literal JSON, "-" for stdin, "@FILE" for a file; bounded. */
static char *read_body_arg(const char *arg)
{
	FILE *f = NULL;
	char *b;
	size_t n;

	if (strcmp(arg, "-") && arg[0] != '@')
		return strdup(arg);
	f = strcmp(arg, "-") ? fopen(arg + 1, "r") : stdin;
	if (!f) {
		fprintf(stderr, "kiln ctl: %s: %s\n", arg + 1, strerror(errno));
		return NULL;
	}
	b = malloc(CTL_MAX_BODY + 2);
	n = b ? fread(b, 1, CTL_MAX_BODY + 1, f) : 0;
	if (f != stdin)
		fclose(f);
	if (!b)
		return NULL;
	if (n > CTL_MAX_BODY) {
		fprintf(stderr, "kiln ctl: body larger than %d bytes\n", CTL_MAX_BODY);
		free(b);
		return NULL;
	}
	b[n] = '\0';
	return b;
}

/* Print an answer: JSON bodies on stdout as they came, faults on stderr. */
static int report(int status, const char *resp)
{
	if (status >= 200 && status < 300) {
		if (*resp)
			printf("%s\n", resp);
		return CTL_EXIT_OK;
	}
	{
		json_t *j = json_loads(resp, 0, NULL);
		const char *fm = json_string_value(json_object_get(j, "fault_message"));

		fprintf(stderr, "kiln ctl: %d: %s\n", status, fm ? fm : (*resp ? resp : "(no body)"));
		json_decref(j);
	}
	return CTL_EXIT_REFUSED;
}

int ctl_main(int argc, char **argv)
{
	const char *sock = NULL, *verb, *method = NULL, *path = NULL, *action = NULL;
	char *body = NULL, msg[512], *resp = NULL;
	long timeout_s = CTL_DEFAULT_TIMEOUT_S;
	int i = 1, status = 0, ret, nargs;

	while (i < argc && argv[i][0] == '-' && argv[i][1]) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			fputs(ctl_usage, stdout);
			return CTL_EXIT_OK;
		}
		if (!strcmp(argv[i], "--api-sock") && i + 1 < argc) {
			sock = argv[i + 1];
		} else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
			char *end;
			timeout_s = strtol(argv[i + 1], &end, 10);
			if (*end || timeout_s < 1 || timeout_s > 3600) {
				fprintf(stderr, "kiln ctl: --timeout '%s': expected 1 to 3600 seconds\n",
					argv[i + 1]);
				return CTL_EXIT_USAGE;
			}
		} else {
			fprintf(stderr, "kiln ctl: unknown option or missing value: %s (see kiln ctl --help)\n",
				argv[i]);
			return CTL_EXIT_USAGE;
		}
		i += 2;
	}
	if (!sock) {
		fprintf(stderr, "kiln ctl: --api-sock PATH is required (see kiln ctl --help)\n");
		return CTL_EXIT_USAGE;
	}
	if (i >= argc) {
		fprintf(stderr, "kiln ctl: which verb? (see kiln ctl --help)\n");
		return CTL_EXIT_USAGE;
	}
	verb = argv[i++];
	nargs = argc - i;
	if (!strcmp(verb, "info") || !strcmp(verb, "config") || !strcmp(verb, "version")) {
		method = "GET";
		path = !strcmp(verb, "info") ? "/" : !strcmp(verb, "config") ? "/vm/config" : "/version";
	} else if (!strcmp(verb, "start")) {
		action = "InstanceStart";
	} else if (!strcmp(verb, "ctrl-alt-del")) {
		action = "SendCtrlAltDel";
	} else if (!strcmp(verb, "metrics")) {
		action = "FlushMetrics";
	} else if (!strcmp(verb, "pause") || !strcmp(verb, "resume")) {
		method = "PATCH";
		path = "/vm";
		body = strdup(!strcmp(verb, "pause") ? "{\"state\":\"Paused\"}" : "{\"state\":\"Resumed\"}");
	} else if (!strcmp(verb, "get") || !strcmp(verb, "put") || !strcmp(verb, "patch")) {
		int want = strcmp(verb, "get") ? 2 : 1;

		if (nargs != want) {
			fprintf(stderr, "kiln ctl: %s needs %s\n", verb, want == 1 ? "PATH" : "PATH JSON");
			return CTL_EXIT_USAGE;
		}
		path = argv[i];
		if (path[0] != '/' || strpbrk(path, " \r\n\t")) {
			fprintf(stderr, "kiln ctl: PATH must start with '/' and hold no spaces: %s\n", path);
			return CTL_EXIT_USAGE;
		}
		method = !strcmp(verb, "get") ? "GET" : !strcmp(verb, "put") ? "PUT" : "PATCH";
		if (want == 2) {
			body = read_body_arg(argv[i + 1]);
			if (!body)
				return CTL_EXIT_USAGE;
		}
		nargs = 0;
	} else {
		fprintf(stderr, "kiln ctl: unknown verb '%s' (see kiln ctl --help)\n", verb);
		return CTL_EXIT_USAGE;
	}
	if (nargs) {
		fprintf(stderr, "kiln ctl: %s takes no arguments\n", verb);
		free(body);
		return CTL_EXIT_USAGE;
	}
	if (action) {
		char b[64];
		snprintf(b, sizeof(b), "{\"action_type\":\"%s\"}", action);
		method = "PUT";
		path = "/actions";
		body = strdup(b);
	}
	if (strcmp(method, "GET") && !body) {
		fprintf(stderr, "kiln ctl: out of memory\n");
		return CTL_EXIT_CONNECT;
	}
	ret = ctl_http(sock, method, path, body, (int)timeout_s * 1000, &status, &resp, msg,
		       sizeof(msg));
	free(body);
	if (ret) {
		fprintf(stderr, "kiln ctl: %s\n", msg);
		return CTL_EXIT_CONNECT;
	}
	ret = report(status, resp);
	free(resp);
	return ret;
}
