/* The metadata service's store and HTTP handling: MMDS V1/V2, the EC2 and the OpenStack layouts from one JSON tree; no sockets. */
#ifndef KILN_MMDS_H
#define KILN_MMDS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/*
 * MMDS_V1: GETs need no token (a token that is sent is ignored), as
 * Firecracker's V1. MMDS_V2: every GET carries a valid session token from
 * PUT /latest/api/token, else 401 (Firecracker's V2, EC2's IMDSv2).
 */
enum mmds_version { MMDS_V1 = 1, MMDS_V2 = 2 };

#define MMDS_MAX_TOKENS     64          /* live session tokens; the oldest-expiring is replaced when full */
#define MMDS_TOKEN_TTL_MAX  21600       /* seconds (6 hours), as EC2 and Firecracker */
#define MMDS_MAX_REQUEST    8192        /* bytes of request line + headers + body; more -> 413 */
#define MMDS_MAX_URL        1024        /* bytes of request target; more -> 414 */
#define MMDS_MAX_FILE       (1 << 20)   /* --metadata and --ssh-key files */
#define MMDS_SIZE_LIMIT_DEFAULT 51200   /* --mmds-size-limit's default, as Firecracker's */
#define MMDS_DEFAULT_ADDR   0xa9fea9feu /* 169.254.169.254 (host order; Firecracker's default) */

struct mmds_token {
	char value[48];                 /* base64url of 32 random bytes; "" = free slot */
	uint64_t expires_ms;
};

struct mmds {
	pthread_mutex_t lock;           /* the HTTP server thread reads, the API may replace */
	enum mmds_version version;
	json_t *root;                   /* the user's tree (--metadata), served raw as MMDS */
	json_t *ssh_keys;               /* array of strings from --ssh-key */
	char uuid[37];                  /* the instance's UUID (OpenStack uuid, EC2 instance-id) */
	/* Views derived from root + ssh_keys by mmds_rebuild(). */
	json_t *ec2;                    /* what /latest/ serves: root["latest"] over generated defaults */
	json_t *openstack;              /* /openstack/latest/meta_data.json */
	json_t *user_data;              /* string or NULL: /latest/user-data, /openstack/latest/user_data */
	struct mmds_token tokens[MMDS_MAX_TOKENS];
	/* Where the guest finds it (PUT /mmds/config ipv4_address), network order; read by net_setup at boot. */
	uint32_t addr;
	bool imds_compat;               /* text/plain whatever the Accept header says (MmdsConfig.imds_compat) */
};

/*
 * Build a store. json: the --metadata text (NULL: {}); ssh_keys: the
 * --ssh-key text, one key a line ('#' comments and blank lines skipped; NULL:
 * none); uuid: 16 bytes that name the instance (random in production).
 * 0, or -1 with a one-line reason in msg.
 */
int mmds_init(struct mmds *m, const char *json, size_t json_len, const char *ssh_keys, enum mmds_version v,
	      const uint8_t uuid[16], char *msg, size_t msglen);
/* Read the two files (either path may be NULL) and build the store with a random UUID. */
/*
 * The data store's size as Firecracker counts it against --mmds-size-limit:
 * its compact JSON serialisation. SIZE_MAX when it cannot be serialised.
 */
size_t mmds_json_size(const json_t *root);
/* m's store against limit (0: MMDS_SIZE_LIMIT_DEFAULT): 0, or -1 with a one-line reason. */
int mmds_check_size(struct mmds *m, size_t limit, char *msg, size_t msglen);
int mmds_init_files(struct mmds *m, const char *metadata_path, const char *ssh_key_path, enum mmds_version v,
		    char *msg, size_t msglen);
void mmds_fini(struct mmds *m);

/*
 * Replace the user's tree (the API's PUT /mmds); takes a reference on root.
 * A string "uuid" in it becomes the instance's UUID, as at mmds_init().
 * 0 or -1 (not an object, or no memory: the old tree stays).
 */
int mmds_set_root(struct mmds *m, json_t *root);
/* A deep copy of the user's tree (for a merge patch), or NULL on ENOMEM. Thread-safe. */
json_t *mmds_copy_root(struct mmds *m);
/* The user's tree as compact JSON (malloc'd), or NULL on ENOMEM. Thread-safe. */
char *mmds_dump_root(struct mmds *m);
/* Version, address (network order) and imds_compat, as PUT /mmds/config sets them. Thread-safe. */
void mmds_configure(struct mmds *m, enum mmds_version v, uint32_t addr, bool imds_compat);

/* One parsed request, as mmds_handle() needs it. */
enum mmds_method { MMDS_GET, MMDS_PUT, MMDS_OTHER };
struct mmds_request {
	enum mmds_method method;
	const char *path;               /* the URL's path, NUL-terminated */
	bool accept_json;               /* Accept: application/json */
	const char *token;              /* X-metadata-token / X-aws-ec2-metadata-token, or NULL */
	const char *ttl;                /* X-metadata-token-ttl-seconds / X-aws-ec2-..., or NULL */
	bool forwarded;                 /* X-Forwarded-For present: refused for tokens (as Firecracker) */
};

struct mmds_response {
	int status;                     /* 200, 400, 401, 404, 405, 413, 414, 501 */
	const char *content_type;
	char *body;                     /* malloc'd, may be NULL */
	size_t body_len;
	char extra[96];                 /* extra header lines ("Name: value\r\n"), may be "" */
};

/* Answer one request at time now_ms (a monotonic clock). Free rsp->body after use. */
void mmds_handle(struct mmds *m, const struct mmds_request *rq, uint64_t now_ms, struct mmds_response *rsp);

/*
 * One HTTP connection: bytes in, one response out (then the server closes:
 * every answer says "Connection: close"). Malformed requests get 400,
 * oversized ones 413/414, all without reading further.
 */
struct mmds_http;
struct mmds_http *mmds_http_new(struct mmds *m);
void mmds_http_free(struct mmds_http *h);
/*
 * Feed received bytes (len 0: the client closed its side). Returns 0 when
 * more input is needed, 1 when the response is ready (mmds_http_output), -1
 * when the connection should just be closed (EOF before any request byte).
 */
int mmds_http_feed(struct mmds_http *h, const void *data, size_t len, uint64_t now_ms);
/* The response bytes once feed returned 1. */
const char *mmds_http_output(struct mmds_http *h, size_t *len);

/* The reason phrase for a status code kiln sends. */
const char *mmds_status_text(int status);

#endif
