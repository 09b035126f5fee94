/* Unit tests for the API's HTTP server on a Unix socket (socket rules, keep-alive, body limits) and kiln ctl's client. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include "api/api.h"
#include "api/api_server.h"
#include "cli/ctl.h"

/* The fake handler: echoes what it got as JSON, or a fault for /fail. */
struct seen {
	int calls;
	char method[16], path[300];
	size_t blen;
	uint64_t t0;
};

static void handler(void *opaque, const char *method, const char *path, const char *body,
		    size_t blen, uint64_t t0_ns, struct api_reply *reply)
{
	struct seen *s = opaque;
	char buf[512];

	s->calls++;
	snprintf(s->method, sizeof(s->method), "%s", method);
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->blen = blen;
	s->t0 = t0_ns;
	assert_true(blen == 0 || body != NULL);
	if (!strcmp(path, "/fail")) {
		reply->status = 400;
		reply->body = api_fault_body("nope");
	} else if (!strcmp(path, "/empty")) {
		reply->status = 204;
	} else {
		snprintf(buf, sizeof(buf), "{\"method\":\"%s\",\"blen\":%zu}", method, blen);
		reply->status = 200;
		reply->body = strdup(buf);
	}
}

struct ctx {
	char dir[64], sock[128];
	struct api_server srv;
	struct seen seen;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char msg[256];

	snprintf(c->dir, sizeof(c->dir), "/tmp/kiln-test-api-srv.XXXXXX");
	assert_non_null(mkdtemp(c->dir));
	snprintf(c->sock, sizeof(c->sock), "%s/api.sock", c->dir);
	if (api_server_start(&c->srv, c->sock, 1024, handler, &c->seen, msg, sizeof(msg)))
		fail_msg("%s", msg);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	api_server_stop(&c->srv);
	rmdir(c->dir);
	free(c);
	return 0;
}

static int connect_to(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Read one response (headers + Content-Length body) from a keep-alive connection. */
static int read_response(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0, off, blen;
	int status;

	for (;;) {
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
		if (ctl_parse_response(buf, n, &status, &off, &blen) == 0) {
			*len = n;
			return status;
		}
	}
	*len = n;
	return n ? -1 : 0;   /* 0: closed without an answer */
}

static void test_socket_mode_and_removal(void **state)
{
	struct ctx *c = *state;
	struct stat st;

	assert_int_equal(lstat(c->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	api_server_stop(&c->srv);
	assert_int_equal(lstat(c->sock, &st), -1);
	assert_int_equal(errno, ENOENT);
	api_server_stop(&c->srv);   /* idempotent */
	/* ... and setup's server is gone; teardown's stop is a no-op. */
}

/* One request on an open connection, its answer in buf. */
static int exchange(int fd, const char *req, char *buf, size_t cap)
{
	size_t len;

	if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
		return 0;   /* the server closed the connection */
	return read_response(fd, buf, cap, &len);
}

static void test_requests_keepalive(void **state)
{
	struct ctx *c = *state;
	char buf[4096];
	int fd = connect_to(c->sock);

	/* Four requests, one connection (HTTP/1.1 keep-alive). */
	assert_int_equal(exchange(fd, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "{\"method\":\"GET\",\"blen\":0}"));
	assert_non_null(strstr(buf, "Content-Type: application/json"));
	assert_int_equal(exchange(fd, "PUT /y%2Fz?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
				  buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"blen\":5"));
	/* No percent-decoding; the query string is the library's, cut off. */
	assert_string_equal(c->seen.path, "/y%2Fz");
	assert_int_equal(exchange(fd, "PUT /fail HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}",
				  buf, sizeof(buf)), 400);
	assert_non_null(strstr(buf, "{\"fault_message\":\"nope\"}"));
	assert_int_equal(exchange(fd, "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", buf, sizeof(buf)), 204);
	assert_int_equal(c->seen.calls, 4);
	assert_true(c->seen.t0 > 0 && c->seen.t0 <= api_now_ns());
	close(fd);
}

static void test_body_limit(void **state)
{
	struct ctx *c = *state;
	char buf[4096], big[2048];
	size_t len;
	int fd, st;

	/* Content-Length over the limit: a 400 before the body, then the connection closes. */
	fd = connect_to(c->sock);
	snprintf(buf, sizeof(buf), "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1025\r\n\r\n");
	assert_true(send(fd, buf, strlen(buf), 0) > 0);
	st = read_response(fd, buf, sizeof(buf), &len);
	assert_int_equal(st, 400);
	assert_non_null(strstr(buf, "larger than the limit of 1024"));
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	assert_int_equal(c->seen.calls, 0);

	/* Exactly at the limit is fine. */
	fd = connect_to(c->sock);
	memset(big, 'a', 1024);
	snprintf(buf, sizeof(buf), "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1024\r\n\r\n");
	assert_true(send(fd, buf, strlen(buf), 0) > 0);
	assert_int_equal(send(fd, big, 1024, 0), 1024);
	assert_int_equal(read_response(fd, buf, sizeof(buf), &len), 200);
	assert_non_null(strstr(buf, "\"blen\":1024"));
	close(fd);

	/* A chunked body growing past the limit: a 400 when it does, then closed. */
	fd = connect_to(c->sock);
	snprintf(buf, sizeof(buf), "PUT /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
		 "400\r\n");
	assert_true(send(fd, buf, strlen(buf), 0) > 0);
	assert_int_equal(send(fd, big, 1024, 0), 1024);
	assert_true(send(fd, "\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n", 30, MSG_NOSIGNAL) > 0);
	st = read_response(fd, buf, sizeof(buf), &len);
	assert_int_equal(st, 400);
	assert_non_null(strstr(buf, "larger than the limit of 1024"));
	assert_non_null(strstr(buf, "Connection: close"));
	close(fd);
	assert_int_equal(c->seen.calls, 1);

	/* Expect: 100-continue gets its interim answer, then the real one. */
	fd = connect_to(c->sock);
	snprintf(buf, sizeof(buf), "PUT /x HTTP/1.1\r\nHost: a\r\nEXPECT: 100-Continue\r\n"
		 "Content-Length: 4\r\n\r\n");
	assert_true(send(fd, buf, strlen(buf), 0) > 0);
	assert_int_equal(recv(fd, buf, 25, MSG_WAITALL), 25);
	assert_memory_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	assert_int_equal(exchange(fd, "abcd", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "\"blen\":4"));
	close(fd);
}

/* What the parser refuses gets a JSON fault too, and the connection closes. */
static void test_malformed(void **state)
{
	struct ctx *c = *state;
	char buf[20000];
	int fd, st;
	static const char *const bad[] = {
		"\x01\x02garbage\r\n\r\n",
		"GET / HTTP/9.9\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
		"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fd = connect_to(c->sock);
		st = exchange(fd, bad[i], buf, sizeof(buf));
		if (st != 400 || !strstr(buf, "{\"fault_message\":\"") || !strstr(buf, "Connection: close"))
			fail_msg("case %zu: %d %s", i, st, buf);
		assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);   /* closed */
		close(fd);
	}
	/* Headers past the bound: 431. */
	fd = connect_to(c->sock);
	snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + strlen(buf), 'a', API_MAX_HEADER_BYTES + 100);
	buf[19 + API_MAX_HEADER_BYTES + 100] = '\0';
	st = exchange(fd, buf, buf, sizeof(buf));
	assert_int_equal(st, 431);
	close(fd);
	/* HTTP/1.0 without keep-alive: answered, then closed. */
	fd = connect_to(c->sock);
	assert_int_equal(exchange(fd, "GET /a HTTP/1.0\r\n\r\n", buf, sizeof(buf)), 200);
	assert_int_equal(recv(fd, buf, sizeof(buf), 0), 0);
	close(fd);
	/* Pipelined requests in one write: all answered, in order. */
	fd = connect_to(c->sock);
	{
		static const char two[] = "GET /a HTTP/1.1\r\n\r\nPUT /b HTTP/1.1\r\nContent-Length: 2\r\n"
					  "Connection: close\r\n\r\n{}";
		size_t n = 0;
		ssize_t r;

		assert_int_equal(send(fd, two, sizeof(two) - 1, 0), (ssize_t)sizeof(two) - 1);
		while ((r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0)
			n += (size_t)r;
		buf[n] = '\0';
		assert_non_null(strstr(buf, "\"method\":\"GET\""));
		assert_non_null(strstr(strstr(buf, "\"method\":\"GET\""), "\"method\":\"PUT\",\"blen\":2"));
	}
	close(fd);
	assert_int_equal(c->seen.calls, 3);
}

/* More connections than API_MAX_CONNS: the extra ones are closed, the rest served. */
static void test_connection_limit(void **state)
{
	struct ctx *c = *state;
	int fds[API_MAX_CONNS + 20];
	char buf[4096];
	unsigned served = 0, closed = 0;

	for (unsigned i = 0; i < API_MAX_CONNS + 20; i++)
		fds[i] = connect_to(c->sock);
	for (unsigned i = 0; i < API_MAX_CONNS + 20; i++) {
		int st;

		if (send(fds[i], "GET /a HTTP/1.1\r\n\r\n", 19, MSG_NOSIGNAL) < 0) {
			closed++;
			continue;
		}
		st = exchange(fds[i], "", buf, sizeof(buf));
		if (st == 200)
			served++;
		else if (st == 0)
			closed++;
	}
	for (unsigned i = 0; i < API_MAX_CONNS + 20; i++)
		close(fds[i]);
	if (served != API_MAX_CONNS || closed != 20)
		fail_msg("served %u closed %u refused %llu", served, closed, (unsigned long long)c->srv.refused);
	assert_int_equal(c->srv.refused, 20);
}

static void test_socket_rules(void **state)
{
	struct ctx *c = *state;
	struct api_server s2;
	char msg[256], path[160];
	dev_t dev;
	ino_t ino;
	int fd;

	/* In use: refused, and the live socket is left alone. */
	assert_int_equal(api_server_start(&s2, c->sock, 1024, handler, &c->seen, msg, sizeof(msg)),
			 -EADDRINUSE);
	assert_non_null(strstr(msg, "in use"));
	fd = connect_to(c->sock);
	close(fd);

	/* Not a socket: refused, the file kept. */
	snprintf(path, sizeof(path), "%s/file", c->dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	close(fd);
	assert_int_equal(api_socket_listen(path, msg, sizeof(msg), &dev, &ino), -EEXIST);
	assert_non_null(strstr(msg, "not a socket"));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	/* Stale (bound, nobody listening): replaced. */
	{
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		snprintf(path, sizeof(path), "%s/stale", c->dir);
		assert_true(strlen(path) < sizeof(a.sun_path));
		memcpy(a.sun_path, path, strlen(path) + 1);
		assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
		close(s);
	}
	assert_int_equal(api_server_start(&s2, path, 1024, handler, &c->seen, msg, sizeof(msg)), 0);
	fd = connect_to(path);
	close(fd);
	/* Replaced meanwhile by someone else: stop leaves their file alone. */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	close(fd);
	api_server_stop(&s2);
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);

	/* Too long for sockaddr_un; missing directory. */
	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(api_socket_listen(path, msg, sizeof(msg), &dev, &ino), -ENAMETOOLONG);
	assert_int_equal(api_socket_listen("/nonexistent-dir/s", msg, sizeof(msg), &dev, &ino), -ENOENT);
	assert_int_equal(api_socket_listen("", msg, sizeof(msg), &dev, &ino), -EINVAL);
}

/* kiln ctl's client against the server. */
static void test_ctl_http(void **state)
{
	struct ctx *c = *state;
	char msg[256], *resp;
	int status;

	assert_int_equal(ctl_http(c->sock, "GET", "/a", NULL, 5000, &status, &resp, msg, sizeof(msg)), 0);
	assert_int_equal(status, 200);
	assert_string_equal(resp, "{\"method\":\"GET\",\"blen\":0}");
	free(resp);
	assert_int_equal(ctl_http(c->sock, "PATCH", "/a", "{\"k\":1}", 5000, &status, &resp, msg,
				  sizeof(msg)), 0);
	assert_string_equal(resp, "{\"method\":\"PATCH\",\"blen\":7}");
	free(resp);
	assert_int_equal(ctl_http(c->sock, "PUT", "/empty", "{}", 5000, &status, &resp, msg,
				  sizeof(msg)), 0);
	assert_int_equal(status, 204);
	assert_string_equal(resp, "");
	free(resp);
	assert_int_equal(ctl_http(c->sock, "PUT", "/fail", "{}", 5000, &status, &resp, msg,
				  sizeof(msg)), 0);
	assert_int_equal(status, 400);
	free(resp);
	assert_int_equal(ctl_http("/nonexistent.sock", "GET", "/", NULL, 1000, &status, &resp, msg,
				  sizeof(msg)), -ENOENT);
	assert_null(resp);
}

static void test_ctl_parse_response(void **state)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nX: y\r\n\r\n{}garbage";
	static const char nolen[] = "HTTP/1.0 204 No Content\r\n\r\n";
	int status;
	size_t off, len;

	(void)state;
	assert_int_equal(ctl_parse_response(ok, strlen(ok), &status, &off, &len), 0);
	assert_int_equal(status, 200);
	assert_int_equal(len, 2);
	assert_memory_equal(ok + off, "{}", 2);
	assert_int_equal(ctl_parse_response(nolen, strlen(nolen), &status, &off, &len), 0);
	assert_int_equal(status, 204);
	assert_int_equal(len, 0);
	/* Not HTTP, no end of headers, a body shorter than promised, bad lengths. */
	static const char *const bad[] = {
		"", "HTTP/1.1 200", "SSH-2.0-OpenSSH\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ctl_parse_response(bad[i], strlen(bad[i]), &status, &off, &len) != -EPROTO)
			fail_msg("case %zu accepted: %s", i, bad[i]);
}

int main(void)
{
	/* A peer that closed must be an error return here, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_socket_mode_and_removal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_requests_keepalive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_body_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctl_http, setup, teardown),
		cmocka_unit_test(test_ctl_parse_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
