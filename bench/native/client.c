/*
 * The benchmark's native load client: the same work and the same JSON lines
 * as bench/client.ts, in C on one thread with epoll.
 *
 * Why: on a 2-core machine the TypeScript client used a whole core to parse
 * the frames of a fan-out, so the benchmark measured the client as much as
 * the servers. Here a delivery costs a few dozen instructions: one 64 KiB
 * read per readiness event, frames and SSE lines parsed in place with their
 * state kept per subscriber, no allocation per message, and the receive
 * time taken once per read (as bench/lib/raw.ts does).
 *
 * Usage: client '<ClientConfig as JSON>' (see bench/lib/protocol.ts). It
 * opens every subscriber, warms them up, prints a `ready` line, waits for
 * `go` on stdin, publishes, prints a `result` line and exits 0; on failure
 * it prints an `error` line and exits 1.
 *
 * Built by bench/native/build.ts: cc -O2 -std=c11 -Wall -Wextra.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define READ_BUFFER_BYTES (64 * 1024)
#define EPOLL_BATCH 512
#define WARMUP_INTERVAL_MS 20.0
#define WARMUP_EVENTS 500
#define WARMUP_TIMEOUT_MS 60000.0
#define HEAD_MAX_BYTES 16384
#define ANSWER_MAX_BYTES (1024 * 1024)
#define ERROR_BYTES 512
/* Beyond every valid sequence number: longer numbers stop growing. */
#define SEQ_CAP 1000000000000ULL

/* ---------------------------------------------------------------- output */

/* Writes `text` as a JSON string: quotes, backslashes, control bytes escaped. */
static void put_string(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/*
 * Writes a number as JSON.stringify does: null for NaN, and the shortest
 * digits that read back as the same double (a float32 latency widened to
 * double prints like the TypeScript client's Float32Array element).
 */
static void put_number(FILE *out, double value)
{
	if (value != value || value - value != 0) {
		fputs("null", out);
		return;
	}
	char text[40];
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(text, sizeof text, "%.*g", digits, value);
		if (strtod(text, NULL) == value)
			break;
	}
	fputs(text, out);
}

/* Prints an `error` line and exits 1: the runner shows the message. */
static _Noreturn void fail_run(const char *format, ...)
{
	char message[1024];
	va_list args;
	va_start(args, format);
	vsnprintf(message, sizeof message, format, args);
	va_end(args);
	fputs("{\"type\":\"error\",\"message\":", stdout);
	put_string(stdout, message);
	fputs("}\n", stdout);
	fflush(stdout);
	exit(1);
}

/* ------------------------------------------------------------------ time */

static struct timespec origin;

/* Milliseconds since the start, like performance.now() in the TS client. */
static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - origin.tv_sec) * 1e3 +
	       (double)(t.tv_nsec - origin.tv_nsec) / 1e6;
}

static double cpu_ms(void)
{
	struct rusage usage;
	getrusage(RUSAGE_SELF, &usage);
	return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
	       (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

/* ---------------------------------------------------------------- config */

enum transport { WS, SSE };

/* Where to connect and what to put in the request line. */
struct target {
	struct sockaddr_storage address;
	socklen_t address_length;
	char *url;
	char *host; /* Host header: host and port as written in the URL */
	char *path; /* path and query, "/" if none */
};

struct group {
	char *name;
	struct target target;
	uint32_t count;
	enum transport transport;
	char *request; /* the GET that opens a subscriber */
	size_t request_length;
	float *latencies;
	uint64_t samples, received, duplicated;
};

static struct {
	struct group *groups;
	uint32_t group_count;
	struct target publish;
	uint32_t events;
	double rate;
	uint32_t inflight, payload_bytes, connect_concurrency;
	double quiet_ms, deadline_ms;
	bool publish_ws; /* publishVia "ws": one WebSocket (?publish), not POSTs */
} config;

/* A purpose-built JSON reader: enough for a ClientConfig, strict about it. */
struct reader {
	const char *start, *at;
};

static _Noreturn void bad_config(const struct reader *r, const char *expected)
{
	fail_run("Cannot parse the config: expected %s at offset %td, "
		 "received \"%.24s\"",
		 expected, r->at - r->start, r->at);
}

static void skip_space(struct reader *r)
{
	while (*r->at == ' ' || *r->at == '\t' || *r->at == '\n' ||
	       *r->at == '\r')
		r->at++;
}

/* Consumes `c` (after spaces) if it is next. */
static bool take(struct reader *r, char c)
{
	skip_space(r);
	if (*r->at != c)
		return false;
	r->at++;
	return true;
}

static void expect(struct reader *r, char c)
{
	char what[4] = {'"', c, '"', 0};
	if (!take(r, c))
		bad_config(r, what);
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char *append_utf8(char *out, uint32_t code)
{
	if (code < 0x80) {
		*out++ = (char)code;
	} else if (code < 0x800) {
		*out++ = (char)(0xc0 | code >> 6);
		*out++ = (char)(0x80 | (code & 0x3f));
	} else if (code < 0x10000) {
		*out++ = (char)(0xe0 | code >> 12);
		*out++ = (char)(0x80 | (code >> 6 & 0x3f));
		*out++ = (char)(0x80 | (code & 0x3f));
	} else {
		*out++ = (char)(0xf0 | code >> 18);
		*out++ = (char)(0x80 | (code >> 12 & 0x3f));
		*out++ = (char)(0x80 | (code >> 6 & 0x3f));
		*out++ = (char)(0x80 | (code & 0x3f));
	}
	return out;
}

static uint32_t read_hex4(struct reader *r)
{
	uint32_t code = 0;
	for (int i = 0; i < 4; i++) {
		int value = hex_digit(*r->at);
		if (value < 0)
			bad_config(r, "four hex digits");
		code = code << 4 | (uint32_t)value;
		r->at++;
	}
	return code;
}

/* Reads a string, escapes decoded to UTF-8; the caller owns the result. */
static char *read_string(struct reader *r)
{
	expect(r, '"');
	/* Decoding never lengthens: \uXXXX is 6 bytes for at most 4. */
	const char *end = r->at;
	while (*end && *end != '"')
		end += *end == '\\' && end[1] ? 2 : 1;
	char *text = malloc((size_t)(end - r->at) + 1);
	char *out = text;
	for (;;) {
		unsigned char c = (unsigned char)*r->at;
		if (c == '"')
			break;
		if (c < 0x20)
			bad_config(r, "a closing quote");
		r->at++;
		if (c != '\\') {
			*out++ = (char)c;
			continue;
		}
		char escape = *r->at++;
		const char *plain = strchr("\"\\/bfnrt", escape);
		if (escape && plain) {
			*out++ = "\"\\/\b\f\n\r\t"[plain - "\"\\/bfnrt"];
		} else if (escape == 'u') {
			uint32_t code = read_hex4(r);
			if (code >= 0xd800 && code < 0xdc00 && r->at[0] == '\\' &&
			    r->at[1] == 'u') {
				r->at += 2;
				uint32_t low = read_hex4(r);
				code = 0x10000 + ((code - 0xd800) << 10) +
				       (low - 0xdc00);
			}
			out = append_utf8(out, code);
		} else {
			r->at--;
			bad_config(r, "an escape");
		}
	}
	r->at++;
	*out = 0;
	return text;
}

/* Reads a number in JSON's grammar (no hex, no inf, no leading +). */
static double read_number(struct reader *r)
{
	skip_space(r);
	const char *p = r->at;
	if (*p == '-')
		p++;
	if (*p < '0' || *p > '9')
		bad_config(r, "a number");
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	double value = strtod(r->at, NULL);
	r->at = p;
	return value;
}

static void skip_value(struct reader *r, int depth)
{
	skip_space(r);
	if (depth > 32)
		bad_config(r, "less nesting");
	char c = *r->at;
	if (c == '"') {
		free(read_string(r));
	} else if (c == '{' || c == '[') {
		char close = c == '{' ? '}' : ']';
		r->at++;
		if (take(r, close))
			return;
		do {
			if (c == '{') {
				free(read_string(r));
				expect(r, ':');
			}
			skip_value(r, depth + 1);
		} while (take(r, ','));
		expect(r, close);
	} else if (strncmp(r->at, "true", 4) == 0 ||
		   strncmp(r->at, "null", 4) == 0) {
		r->at += 4;
	} else if (strncmp(r->at, "false", 5) == 0) {
		r->at += 5;
	} else {
		read_number(r);
	}
}

/* Reads a number and checks it lies in [min, max] (and is whole, if asked). */
static double read_field(struct reader *r, const char *key, double min,
			 double max, bool whole)
{
	double value = read_number(r);
	if (!(value >= min && value <= max) || (whole && value != (double)(int64_t)value))
		fail_run("Cannot parse the config: expected \"%s\" to be %s "
			 "from %.0f to %.0f, received %g",
			 key, whole ? "an integer" : "a number", min, max, value);
	return value;
}

/*
 * Parses http://127.0.0.1:PORT/path or http://[::1]:PORT/path: the
 * benchmark runs on loopback only, so no name is ever resolved.
 */
static void parse_target(const char *url, struct target *t)
{
	static const char usage[] = "Cannot parse URL: expected "
				    "http://127.0.0.1:PORT/path or "
				    "http://[::1]:PORT/path, received \"%s\"";
	const char *p = url;
	if (strncmp(p, "http://", 7) == 0)
		p += 7;
	else if (strncmp(p, "ws://", 5) == 0)
		p += 5;
	else
		fail_run(usage, url);
	const char *host = p;
	bool v6 = false;
	if (strncmp(p, "127.0.0.1", 9) == 0) {
		p += 9;
	} else if (strncmp(p, "[::1]", 5) == 0) {
		p += 5;
		v6 = true;
	} else {
		fail_run(usage, url);
	}
	unsigned long port = 80;
	if (*p == ':') {
		char *end;
		p++;
		if (*p < '0' || *p > '9')
			fail_run(usage, url);
		port = strtoul(p, &end, 10);
		if (port > 65535)
			fail_run(usage, url);
		p = end;
	}
	if (*p != '/' && *p != '?' && *p != 0)
		fail_run(usage, url);
	memset(&t->address, 0, sizeof t->address);
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&t->address;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_loopback;
		t->address_length = sizeof *a;
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&t->address;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		t->address_length = sizeof *a;
	}
	t->url = strdup(url);
	t->host = strndup(host, (size_t)(p - host));
	size_t path_length = strcspn(p, "#");
	if (*p == '/') {
		t->path = strndup(p, path_length);
	} else {
		t->path = malloc(path_length + 2);
		t->path[0] = '/';
		memcpy(t->path + 1, p, path_length);
		t->path[path_length + 1] = 0;
	}
}

static void read_group(struct reader *r, struct group *g)
{
	bool has_name = false, has_url = false, has_count = false,
	     has_transport = false;
	expect(r, '{');
	if (!take(r, '}'))
		do {
			char *key = read_string(r);
			expect(r, ':');
			if (strcmp(key, "name") == 0) {
				g->name = read_string(r);
				has_name = true;
			} else if (strcmp(key, "url") == 0) {
				char *url = read_string(r);
				parse_target(url, &g->target);
				free(url);
				has_url = true;
			} else if (strcmp(key, "count") == 0) {
				g->count = (uint32_t)read_field(r, key, 0, 1e6, true);
				has_count = true;
			} else if (strcmp(key, "transport") == 0) {
				char *transport = read_string(r);
				if (strcmp(transport, "ws") != 0 &&
				    strcmp(transport, "sse") != 0)
					fail_run("Cannot parse the config: expected "
						 "transport ws or sse, received \"%s\"",
						 transport);
				g->transport = transport[0] == 's' ? SSE : WS;
				free(transport);
				has_transport = true;
			} else {
				skip_value(r, 1);
			}
			free(key);
		} while (take(r, ','));
	expect(r, '}');
	if (!(has_name && has_url && has_count && has_transport))
		fail_run("Cannot parse the config: a group needs name, url, "
			 "count and transport");
}

static void read_groups(struct reader *r)
{
	uint32_t capacity = 4;
	config.groups = calloc(capacity, sizeof *config.groups);
	expect(r, '[');
	if (take(r, ']'))
		return;
	do {
		if (config.group_count == capacity) {
			capacity *= 2;
			config.groups = realloc(config.groups,
						capacity * sizeof *config.groups);
		}
		struct group *g = &config.groups[config.group_count++];
		memset(g, 0, sizeof *g);
		read_group(r, g);
	} while (take(r, ','));
	expect(r, ']');
}

/* Fills `config` from the ClientConfig JSON; every field but subscriberKind is required. */
static void parse_config(const char *text)
{
	struct reader r = {text, text};
	enum { F_GROUPS, F_URL, F_EVENTS, F_RATE, F_INFLIGHT, F_PAYLOAD,
	       F_CONNECT, F_QUIET, F_DEADLINE, F_COUNT };
	static const char *const names[F_COUNT] = {
		"groups", "publishUrl", "events", "rate", "inflight",
		"payloadBytes", "connectConcurrency", "quietMs", "deadlineMs"};
	bool seen[F_COUNT] = {false};
	skip_space(&r);
	if (*r.at != '{')
		fail_run("Cannot parse the config: expected a ClientConfig "
			 "as JSON in the first argument, received \"%.40s\"",
			 text);
	expect(&r, '{');
	if (!take(&r, '}'))
		do {
			char *key = read_string(&r);
			expect(&r, ':');
			int field = 0;
			while (field < F_COUNT && strcmp(key, names[field]) != 0)
				field++;
			switch (field) {
			case F_GROUPS: read_groups(&r); break;
			case F_URL: {
				char *url = read_string(&r);
				parse_target(url, &config.publish);
				free(url);
				break;
			}
			case F_EVENTS:
				config.events = (uint32_t)read_field(&r, key, 0, 1e9, true);
				break;
			case F_RATE: config.rate = read_field(&r, key, 0, 1e9, false); break;
			case F_INFLIGHT:
				config.inflight = (uint32_t)read_field(&r, key, 1, 4096, true);
				break;
			case F_PAYLOAD:
				config.payload_bytes =
					(uint32_t)read_field(&r, key, 0, 1 << 20, true);
				break;
			case F_CONNECT:
				config.connect_concurrency =
					(uint32_t)read_field(&r, key, 1, 1e6, true);
				break;
			case F_QUIET: config.quiet_ms = read_field(&r, key, 0, 1e9, false); break;
			case F_DEADLINE:
				config.deadline_ms = read_field(&r, key, 0, 1e9, false);
				break;
			default:
				if (strcmp(key, "publishVia") == 0) {
					char *via = read_string(&r);
					if (strcmp(via, "ws") != 0 && strcmp(via, "post") != 0)
						fail_run("Cannot parse the config: publishVia must be "
							 "\"post\" or \"ws\", received \"%s\"", via);
					config.publish_ws = strcmp(via, "ws") == 0;
					free(via);
				} else {
					skip_value(&r, 1);
				}
			}
			if (field < F_COUNT)
				seen[field] = true;
			free(key);
		} while (take(&r, ','));
	expect(&r, '}');
	skip_space(&r);
	if (*r.at)
		bad_config(&r, "the end");
	for (int field = 0; field < F_COUNT; field++)
		if (!seen[field])
			fail_run("Cannot parse the config: missing \"%s\"",
				 names[field]);
}

/* -------------------------------------------------------------- receiver */

/* What a subscriber's current message turned out to be, as it streams in. */
enum message_state {
	MESSAGE_START,  /* nothing seen yet */
	MESSAGE_DIGITS, /* digits of the sequence number, no space yet */
	MESSAGE_SEQ,    /* `<seq> ` seen: the rest is not looked at */
	MESSAGE_WARM,   /* starts with `w`: a warm-up */
	MESSAGE_BAD,    /* not one of our payloads */
};

enum ws_phase { WS_HEADER, WS_PAYLOAD };

/* WebSocket frame parsing state, kept across reads. */
struct ws_parser {
	uint8_t header[14];
	uint8_t header_length;
	uint8_t phase;
	uint8_t opcode;
	uint8_t fin;
	uint8_t in_message; /* a fragmented message is under way */
	uint8_t control_length;
	uint8_t control[125];
	uint64_t left; /* payload bytes of the current frame still to come */
};

enum chunk_state { CHUNK_SIZE, CHUNK_EXTENSION, CHUNK_DATA, CHUNK_CRLF, CHUNK_DONE };
enum line_state { LINE_START, LINE_VALUE, LINE_DATA, LINE_SKIP };

/* Server-Sent Events parsing state: chunked framing, then lines. */
struct sse_parser {
	uint8_t chunked;
	uint8_t chunk_state;
	uint8_t chunk_skip;
	uint8_t line_state;
	uint8_t matched; /* bytes of "data:" matched at the start of a line */
	uint64_t chunk_left;
};

enum subscriber_state { SUB_WAITING, SUB_CONNECTING, SUB_HANDSHAKE, SUB_OPEN, SUB_DEAD };

struct subscriber {
	int fd;
	uint8_t state;
	uint8_t warm;
	uint8_t message_state;
	uint32_t group;
	uint64_t seq;
	char *head; /* response head, only during the handshake */
	uint32_t head_length;
	union {
		struct ws_parser ws;
		struct sse_parser sse;
	};
};

static struct {
	struct subscriber *subscribers;
	uint32_t count, opened, handshaking;
	uint8_t *seen; /* one bit per subscriber and event */
	size_t seen_stride;
	double *sent_ms; /* when each event was sent (or due, when steady) */
	uint64_t expected, unique, warmups, unexpected;
	uint32_t warmed;
	double last_receive_ms;
	/* Subscribers that failed after opening, before the end of the run. */
	uint32_t errors;
	char first_error[ERROR_BYTES];
	bool closing;
} receiver;

static void message_begin(struct subscriber *s)
{
	s->message_state = MESSAGE_START;
	s->seq = 0;
}

/* Feeds bytes of the current message; only its first few are looked at. */
static void message_feed(struct subscriber *s, const uint8_t *p, size_t n)
{
	const uint8_t *end = p + n;
	if (s->message_state == MESSAGE_START && p < end) {
		uint8_t c = *p++;
		if (c == 'w') {
			s->message_state = MESSAGE_WARM;
			return;
		}
		if (c < '0' || c > '9') {
			s->message_state = MESSAGE_BAD;
			return;
		}
		s->seq = c - '0';
		s->message_state = MESSAGE_DIGITS;
	}
	if (s->message_state != MESSAGE_DIGITS)
		return;
	for (; p < end; p++) {
		uint8_t c = *p;
		if (c >= '0' && c <= '9') {
			if (s->seq < SEQ_CAP)
				s->seq = s->seq * 10 + (c - '0');
		} else {
			s->message_state = c == ' ' ? MESSAGE_SEQ : MESSAGE_BAD;
			return;
		}
	}
}

/* Records a complete message received at `now`, as receiver.ts does. */
static void message_end(struct subscriber *s, double now)
{
	if (s->message_state == MESSAGE_WARM) {
		receiver.warmups++;
		if (!s->warm) {
			s->warm = 1;
			receiver.warmed++;
		}
		return;
	}
	struct group *g = &config.groups[s->group];
	g->received++;
	receiver.last_receive_ms = now;
	if (s->message_state != MESSAGE_SEQ || s->seq >= config.events) {
		receiver.unexpected++;
		return;
	}
	uint8_t *seen = receiver.seen +
			(size_t)(s - receiver.subscribers) * receiver.seen_stride +
			s->seq / 8;
	uint8_t bit = (uint8_t)(1u << (s->seq % 8));
	if (*seen & bit) {
		g->duplicated++;
		return;
	}
	*seen |= bit;
	g->latencies[g->samples++] = (float)(now - receiver.sent_ms[s->seq]);
	receiver.unique++;
}

/* ----------------------------------------------------------- event loop */

enum tag { TAG_SUBSCRIBER = 1, TAG_POSTER, TAG_STDIN, TAG_TIMER, TAG_WSPUB };

static int epoll_fd, timer_fd;
static double timer_armed_ms = -1;
static uint8_t read_buffer[READ_BUFFER_BYTES];

static void watch(int fd, int op, uint32_t events, enum tag tag, uint32_t index)
{
	struct epoll_event event = {.events = events,
				    .data.u64 = (uint64_t)tag << 32 | index};
	if (epoll_ctl(epoll_fd, op, fd, &event) < 0)
		fail_run("epoll_ctl: %s", strerror(errno));
}

static int socket_error(int fd)
{
	int error = 0;
	socklen_t length = sizeof error;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) < 0)
		return errno;
	return error;
}

/* A non-blocking socket with a connect under way; -1 with errno on failure. */
static int open_socket(const struct target *t)
{
	int fd = socket(t->address.ss_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)&t->address,
		    t->address_length) < 0 &&
	    errno != EINPROGRESS) {
		int error = errno;
		close(fd);
		errno = error;
		return -1;
	}
	return fd;
}

/* ----------------------------------------------------------- subscribers */

static const char *subscriber_url(const struct subscriber *s)
{
	return config.groups[s->group].target.url;
}

/*
 * Ends a subscriber. During its handshake that fails the run, as the TS
 * client's openSubscribers does; once open, it is one subscriber error.
 */
static void subscriber_end(struct subscriber *s, const char *format, ...)
{
	char reason[ERROR_BYTES / 2];
	va_list args;
	va_start(args, format);
	vsnprintf(reason, sizeof reason, format, args);
	va_end(args);
	if (s->state != SUB_OPEN)
		fail_run("%s: %s during the handshake", subscriber_url(s), reason);
	close(s->fd);
	s->fd = -1;
	s->state = SUB_DEAD;
	if (receiver.closing)
		return;
	if (receiver.errors++ == 0)
		snprintf(receiver.first_error, sizeof receiver.first_error,
			 "%s during the run", reason);
}

static void start_subscriber(uint32_t index)
{
	struct subscriber *s = &receiver.subscribers[index];
	s->fd = open_socket(&config.groups[s->group].target);
	if (s->fd < 0)
		fail_run("%s: %s during the handshake", subscriber_url(s),
			 strerror(errno));
	s->state = SUB_CONNECTING;
	receiver.handshaking++;
	/* Writable once connected: then the request goes out. */
	watch(s->fd, EPOLL_CTL_ADD, EPOLLIN | EPOLLOUT, TAG_SUBSCRIBER, index);
}

static void ws_pong(struct subscriber *s)
{
	struct ws_parser *w = &s->ws;
	/* Masked as a client must; a zero mask leaves the payload as it is. */
	uint8_t frame[6 + sizeof w->control] = {0x80 | 10, 0x80 | w->control_length};
	memcpy(frame + 6, w->control, w->control_length);
	/* The socket's send buffer is empty after the handshake: it fits. */
	send(s->fd, frame, 6u + w->control_length, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* The header length once its first two bytes are known. */
static uint8_t ws_header_need(const struct ws_parser *w)
{
	if (w->header_length < 2)
		return 2;
	uint8_t length = w->header[1] & 0x7f;
	return (uint8_t)(2 + (length == 126 ? 2 : length == 127 ? 8 : 0) +
			 (w->header[1] & 0x80 ? 4 : 0));
}

/* Starts the frame whose header is complete; false if the subscriber ended. */
static bool ws_begin_frame(struct subscriber *s)
{
	struct ws_parser *w = &s->ws;
	const uint8_t *h = w->header;
	w->fin = h[0] >> 7;
	w->opcode = h[0] & 0x0f;
	uint64_t length = h[1] & 0x7f;
	if (length == 126) {
		length = (uint64_t)h[2] << 8 | h[3];
	} else if (length == 127) {
		length = 0;
		for (int i = 2; i < 10; i++)
			length = length << 8 | h[i];
	}
	w->header_length = 0;
	if (h[0] & 0x70 || h[1] & 0x80) {
		subscriber_end(s, "WebSocket protocol error: reserved bits or a masked frame");
		return false;
	}
	if (w->opcode >= 8) {
		if (w->opcode > 10 || !w->fin || length > 125) {
			subscriber_end(s, "WebSocket protocol error: bad control frame");
			return false;
		}
		w->control_length = 0;
	} else if (w->opcode == 0 ? !w->in_message : w->opcode > 2 || w->in_message) {
		subscriber_end(s, "WebSocket protocol error: bad data frame (opcode %u)",
			       w->opcode);
		return false;
	} else if (w->opcode != 0) {
		message_begin(s);
	}
	w->left = length;
	w->phase = WS_PAYLOAD;
	return true;
}

static void ws_end_frame(struct subscriber *s, double now)
{
	struct ws_parser *w = &s->ws;
	w->phase = WS_HEADER;
	if (w->opcode == 9) {
		ws_pong(s);
	} else if (w->opcode == 8) {
		unsigned code = w->control_length >= 2
					? (unsigned)w->control[0] << 8 | w->control[1]
					: 1005;
		subscriber_end(s, "WebSocket closed by the server (%u)", code);
	} else if (w->opcode < 8) {
		w->in_message = !w->fin;
		if (w->fin)
			message_end(s, now);
	}
}

/* Parses server frames (7, 16 and 64-bit lengths, fragments, text or binary). */
static void ws_feed(struct subscriber *s, const uint8_t *p, size_t n, double now)
{
	struct ws_parser *w = &s->ws;
	while (n > 0 && s->state == SUB_OPEN) {
		if (w->phase == WS_HEADER) {
			uint8_t need = ws_header_need(w);
			while (w->header_length < need && n > 0) {
				w->header[w->header_length++] = *p++;
				n--;
				need = ws_header_need(w);
			}
			if (w->header_length < need)
				return;
			if (!ws_begin_frame(s))
				return;
			if (w->left == 0)
				ws_end_frame(s, now);
			continue;
		}
		size_t step = w->left < n ? (size_t)w->left : n;
		if (w->opcode >= 8) {
			memcpy(w->control + w->control_length, p, step);
			w->control_length += (uint8_t)step;
		} else {
			message_feed(s, p, step);
		}
		p += step;
		n -= step;
		w->left -= step;
		if (w->left == 0)
			ws_end_frame(s, now);
	}
}

/* Each `data:` line is one message (every payload of the benchmark is one line). */
static void sse_lines(struct subscriber *s, const uint8_t *p, size_t n, double now)
{
	struct sse_parser *e = &s->sse;
	const uint8_t *end = p + n;
	while (p < end) {
		switch (e->line_state) {
		case LINE_START:
			if (*p == "data:"[e->matched]) {
				p++;
				if (++e->matched == 5)
					e->line_state = LINE_VALUE;
			} else if (*p == '\n') {
				/* A blank line (end of event) or a short one. */
				p++;
				e->matched = 0;
			} else {
				/* id:, retry:, event:, a comment: skipped. */
				e->line_state = LINE_SKIP;
			}
			break;
		case LINE_VALUE:
			message_begin(s);
			if (*p == ' ')
				p++;
			e->line_state = LINE_DATA;
			break;
		case LINE_DATA:
		case LINE_SKIP: {
			const uint8_t *lf = memchr(p, '\n', (size_t)(end - p));
			const uint8_t *stop = lf ? lf : end;
			/* A CR before the LF is no digit nor space: the
			 * message parser has stopped before it, as the TS
			 * client's, which strips it, does. */
			if (e->line_state == LINE_DATA)
				message_feed(s, p, (size_t)(stop - p));
			if (!lf)
				return;
			if (e->line_state == LINE_DATA)
				message_end(s, now);
			p = lf + 1;
			e->line_state = LINE_START;
			e->matched = 0;
			break;
		}
		}
	}
}

/* Undoes Transfer-Encoding: chunked, handing chunk data on in place. */
static void sse_feed(struct subscriber *s, const uint8_t *p, size_t n, double now)
{
	struct sse_parser *e = &s->sse;
	if (!e->chunked) {
		sse_lines(s, p, n, now);
		return;
	}
	const uint8_t *end = p + n;
	while (p < end) {
		switch (e->chunk_state) {
		case CHUNK_DATA: {
			size_t step = (size_t)(end - p) < e->chunk_left
					      ? (size_t)(end - p)
					      : (size_t)e->chunk_left;
			sse_lines(s, p, step, now);
			p += step;
			e->chunk_left -= step;
			if (e->chunk_left == 0) {
				e->chunk_state = CHUNK_CRLF;
				e->chunk_skip = 2;
			}
			break;
		}
		case CHUNK_SIZE:
		case CHUNK_EXTENSION: {
			uint8_t c = *p++;
			int value = hex_digit(c);
			if (c == '\n')
				e->chunk_state = e->chunk_left ? CHUNK_DATA : CHUNK_DONE;
			else if (e->chunk_state == CHUNK_EXTENSION)
				;
			else if (value >= 0 && e->chunk_left < (1ULL << 40))
				e->chunk_left = e->chunk_left * 16 + (unsigned)value;
			else if (c != '\r')
				e->chunk_state = CHUNK_EXTENSION;
			break;
		}
		case CHUNK_CRLF: {
			size_t step = (size_t)(end - p) < e->chunk_skip
					      ? (size_t)(end - p)
					      : e->chunk_skip;
			p += step;
			e->chunk_skip -= (uint8_t)step;
			if (e->chunk_skip == 0) {
				e->chunk_state = CHUNK_SIZE;
				e->chunk_left = 0;
			}
			break;
		}
		default:
			/* The last chunk: whatever follows is not ours. */
			return;
		}
	}
}

/* Whether header `name:` (any case) has a value containing `word`. */
static bool header_has(const char *head, size_t length, const char *name,
		       const char *word)
{
	size_t name_length = strlen(name), word_length = strlen(word);
	const char *end = head + length;
	for (const char *line = memchr(head, '\n', length); line && line + 1 < end;
	     line = memchr(line, '\n', (size_t)(end - line))) {
		line++;
		if ((size_t)(end - line) <= name_length ||
		    strncasecmp(line, name, name_length) != 0 ||
		    line[name_length] != ':')
			continue;
		for (const char *v = line + name_length + 1;
		     v + word_length <= end && *v != '\r' && *v != '\n'; v++)
			if (strncasecmp(v, word, word_length) == 0)
				return true;
	}
	return false;
}

/* Collects the response head; once complete, checks it and opens the subscriber. */
static void handshake_read(struct subscriber *s, size_t n, double now)
{
	if (s->head == NULL)
		s->head = malloc(HEAD_MAX_BYTES);
	if (s->head_length + n > HEAD_MAX_BYTES)
		fail_run("%s: response head longer than %d bytes", subscriber_url(s),
			 HEAD_MAX_BYTES);
	memcpy(s->head + s->head_length, read_buffer, n);
	uint32_t searched = s->head_length >= 3 ? s->head_length - 3 : 0;
	s->head_length += (uint32_t)n;
	char *end = memmem(s->head + searched, s->head_length - searched, "\r\n\r\n", 4);
	if (end == NULL)
		return;
	size_t head_length = (size_t)(end - s->head) + 4;
	const char *status = config.groups[s->group].transport == WS ? "HTTP/1.1 101"
								       : "HTTP/1.1 200";
	if (head_length < 12 || memcmp(s->head, status, 12) != 0) {
		const char *line_end = memmem(s->head, head_length, "\r\n", 2);
		fail_run("%s answered %.*s", subscriber_url(s),
			 (int)(line_end - s->head), s->head);
	}
	if (config.groups[s->group].transport == SSE)
		s->sse.chunked = header_has(s->head, head_length, "transfer-encoding",
					    "chunked");
	s->state = SUB_OPEN;
	receiver.opened++;
	receiver.handshaking--;
	/* Bytes after the head are the first frames or events. */
	size_t rest = s->head_length - head_length;
	memcpy(read_buffer, s->head + head_length, rest);
	free(s->head);
	s->head = NULL;
	if (rest == 0)
		return;
	if (config.groups[s->group].transport == WS)
		ws_feed(s, read_buffer, rest, now);
	else
		sse_feed(s, read_buffer, rest, now);
}

static void on_subscriber(uint32_t index, uint32_t events)
{
	struct subscriber *s = &receiver.subscribers[index];
	if (s->state == SUB_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		int error = socket_error(s->fd);
		if (error)
			subscriber_end(s, "%s", strerror(error));
		const struct group *g = &config.groups[s->group];
		ssize_t sent = send(s->fd, g->request, g->request_length, MSG_NOSIGNAL);
		if (sent != (ssize_t)g->request_length)
			subscriber_end(s, "cannot send the request: %s",
				       sent < 0 ? strerror(errno) : "short write");
		s->state = SUB_HANDSHAKE;
		watch(s->fd, EPOLL_CTL_MOD, EPOLLIN, TAG_SUBSCRIBER, index);
		return;
	}
	if (s->state != SUB_HANDSHAKE && s->state != SUB_OPEN)
		return;
	ssize_t n = read(s->fd, read_buffer, sizeof read_buffer);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		subscriber_end(s, "%s", n == 0 ? "connection ended by the server"
					       : strerror(errno));
		return;
	}
	/* One clock reading stamps every message of this read. */
	double now = now_ms();
	if (s->state == SUB_HANDSHAKE)
		handshake_read(s, (size_t)n, now);
	else if (config.groups[s->group].transport == WS)
		ws_feed(s, read_buffer, (size_t)n, now);
	else
		sse_feed(s, read_buffer, (size_t)n, now);
}

/* ------------------------------------------------------------- publisher */

enum poster_state { POST_CLOSED, POST_CONNECTING, POST_IDLE, POST_BUSY };

/* One keep-alive connection with at most one POST in flight (as poster.ts). */
struct poster {
	int fd;
	uint8_t state;
	uint8_t watching_out;
	char *request;
	size_t request_length, written;
	char *answer;
	size_t answer_length, answer_capacity;
};

enum job_kind { JOB_WARMUP, JOB_FLAT, JOB_STEADY };

/* A run of POSTs: warm-ups, flat out, or at a steady rate. */
static struct {
	enum job_kind kind;
	uint32_t first, next, total, inflight, limit;
	double start_ms, interval_ms;
	uint32_t errors;
	char first_error[ERROR_BYTES];
} job;

static struct poster *posters;
static uint32_t poster_count;
static char *post_head; /* request line and headers up to Content-Length */
static size_t post_head_length;
static char *body;

static void job_answer(const char *error)
{
	job.inflight--;
	if (error == NULL)
		return;
	if (job.errors++ == 0)
		snprintf(job.first_error, sizeof job.first_error, "%s", error);
}

static void poster_watch(struct poster *c, uint32_t events, int op)
{
	watch(c->fd, op, events, TAG_POSTER, (uint32_t)(c - posters));
	c->watching_out = (events & EPOLLOUT) != 0;
}

/* Sends what is left of the request; an error text if the connection broke. */
static const char *poster_write(struct poster *c)
{
	static char error[ERROR_BYTES];
	while (c->written < c->request_length) {
		ssize_t n = send(c->fd, c->request + c->written,
				 c->request_length - c->written, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!c->watching_out)
				poster_watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
			return NULL;
		}
		if (n < 0) {
			snprintf(error, sizeof error,
				 "POST failed: connection ended: %s", strerror(errno));
			return error;
		}
		c->written += (size_t)n;
	}
	if (c->watching_out)
		poster_watch(c, EPOLLIN, EPOLL_CTL_MOD);
	return NULL;
}

static void poster_close(struct poster *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->state = POST_CLOSED;
	c->answer_length = 0;
}

static void job_refill(void);

/* Drops a broken connection; a POST on it is answered with `error`. */
static void poster_broken(struct poster *c, const char *error)
{
	bool waiting = c->state == POST_BUSY || c->state == POST_CONNECTING;
	poster_close(c);
	if (!waiting)
		return;
	job_answer(error);
	job_refill();
}

/*
 * Sends `body` on a free connection, opening one if none is idle. Returns
 * an error text if it failed at once, else NULL (the answer comes later).
 */
static const char *ws_post(size_t body_length);

static const char *post(size_t body_length)
{
	if (config.publish_ws)
		return ws_post(body_length);
	static char error[ERROR_BYTES];
	struct poster *c = NULL;
	for (uint32_t i = 0; i < poster_count && (c == NULL || c->state != POST_IDLE); i++)
		if (posters[i].state == POST_IDLE || posters[i].state == POST_CLOSED)
			c = &posters[i];
	char *at = c->request;
	memcpy(at, post_head, post_head_length);
	at += post_head_length;
	at += sprintf(at, "%zu\r\n\r\n", body_length);
	memcpy(at, body, body_length);
	c->request_length = (size_t)(at - c->request) + body_length;
	c->written = 0;
	if (c->state == POST_CLOSED) {
		c->fd = open_socket(&config.publish);
		if (c->fd < 0) {
			snprintf(error, sizeof error, "POST failed: cannot connect: %s",
				 strerror(errno));
			return error;
		}
		int one = 1;
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c->state = POST_CONNECTING;
		poster_watch(c, EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
		return NULL;
	}
	c->state = POST_BUSY;
	const char *failed = poster_write(c);
	if (failed == NULL)
		return NULL;
	snprintf(error, sizeof error, "%s", failed);
	poster_close(c);
	return error;
}

/*
 * The length of the complete answer at the start of `p` and its status;
 * 0 if more bytes are needed, -1 (with `error` set) if it cannot be framed.
 */
static long parse_answer(const char *p, size_t n, int *status, char *error)
{
	const char *head_end = memmem(p, n, "\r\n\r\n", 4);
	if (head_end == NULL)
		return 0;
	size_t head_length = (size_t)(head_end - p) + 4;
	if (head_length < 13 || (memcmp(p, "HTTP/1.1 ", 9) != 0 &&
				 memcmp(p, "HTTP/1.0 ", 9) != 0) ||
	    p[9] < '0' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9') {
		snprintf(error, ERROR_BYTES, "not an HTTP response: %.*s",
			 (int)strcspn(p, "\r\n"), p);
		return -1;
	}
	*status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	const char *end = p + n;
	for (const char *line = memchr(p, '\n', head_length); line && line + 1 < head_end;
	     line = memchr(line, '\n', (size_t)(head_end + 2 - line))) {
		line++;
		if (strncasecmp(line, "content-length:", 15) == 0) {
			const char *v = line + 15;
			while (*v == ' ' || *v == '\t')
				v++;
			size_t length = 0;
			for (; *v >= '0' && *v <= '9'; v++)
				length = length * 10 + (size_t)(*v - '0');
			return head_length + length <= n ? (long)(head_length + length) : 0;
		}
	}
	if (header_has(p, head_length, "transfer-encoding", "chunked")) {
		const char *at = p + head_length;
		for (;;) {
			const char *line_end = memmem(at, (size_t)(end - at), "\r\n", 2);
			if (line_end == NULL)
				return 0;
			if (hex_digit(*at) < 0) {
				snprintf(error, ERROR_BYTES, "bad chunk size");
				return -1;
			}
			size_t size = strtoul(at, NULL, 16);
			/* No trailers: the last chunk is followed by one more CRLF. */
			const char *next = line_end + 2 + size + 2;
			if (next > end)
				return 0;
			if (size == 0)
				return next - p;
			at = next;
		}
	}
	if (*status == 204 || *status == 304)
		return (long)head_length;
	snprintf(error, ERROR_BYTES, "cannot frame a %d answer without a length", *status);
	return -1;
}

static void poster_read(struct poster *c)
{
	char error[ERROR_BYTES];
	if (c->answer_capacity - c->answer_length < 4096) {
		if (c->answer_capacity >= ANSWER_MAX_BYTES) {
			poster_broken(c, "POST failed: answer too long");
			return;
		}
		c->answer_capacity *= 2;
		c->answer = realloc(c->answer, c->answer_capacity);
	}
	ssize_t n = read(c->fd, c->answer + c->answer_length,
			 c->answer_capacity - c->answer_length - 1);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		snprintf(error, sizeof error, "POST failed: connection ended: %s",
			 n == 0 ? "closed by the server" : strerror(errno));
		poster_broken(c, error);
		return;
	}
	c->answer_length += (size_t)n;
	c->answer[c->answer_length] = 0;
	if (c->state != POST_BUSY) {
		poster_broken(c, NULL);
		return;
	}
	int status = 0;
	long length = parse_answer(c->answer, c->answer_length, &status, error);
	if (length == 0)
		return;
	if (length < 0) {
		char message[ERROR_BYTES + 16];
		snprintf(message, sizeof message, "POST failed: %s", error);
		poster_broken(c, message);
		return;
	}
	c->answer_length -= (size_t)length;
	memmove(c->answer, c->answer + length, c->answer_length);
	c->state = POST_IDLE;
	if (status >= 200 && status < 300) {
		job_answer(NULL);
	} else {
		snprintf(error, sizeof error, "POST answered %d", status);
		job_answer(error);
	}
	job_refill();
}

static void on_poster(uint32_t index, uint32_t events)
{
	struct poster *c = &posters[index];
	char error[ERROR_BYTES];
	if (c->state == POST_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		int failed = socket_error(c->fd);
		if (failed) {
			snprintf(error, sizeof error, "POST failed: cannot connect: %s",
				 strerror(failed));
			poster_broken(c, error);
			return;
		}
		c->state = POST_BUSY;
		const char *broken = poster_write(c);
		if (broken) {
			snprintf(error, sizeof error, "%s", broken);
			poster_broken(c, error);
			return;
		}
	} else if (c->state == POST_BUSY && (events & EPOLLOUT)) {
		const char *broken = poster_write(c);
		if (broken) {
			snprintf(error, sizeof error, "%s", broken);
			poster_broken(c, error);
			return;
		}
	}
	if (c->state != POST_CLOSED && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		poster_read(c);
}

/* ---------------------------------------------- publisher over WebSocket */

/*
 * One WebSocket publisher (`GET <path>?publish`): each event is one masked
 * text frame (mask key 0, so the payload is sent as it is), and the server
 * answers each, in order, with one text frame: `{"id":...}` or an error.
 * The frames of one refill leave in one write.
 */
enum wspub_state { WSPUB_CLOSED, WSPUB_CONNECTING, WSPUB_HANDSHAKE, WSPUB_OPEN };

static struct {
	int fd;
	enum wspub_state state;
	bool watching_out;
	char *out;
	size_t out_length, out_written, out_capacity;
	uint8_t *in;
	size_t in_length, in_capacity;
	uint32_t unanswered;
} wspub = {.fd = -1};

static void wspub_watch(uint32_t events, int op)
{
	watch(wspub.fd, op, events, TAG_WSPUB, 0);
	wspub.watching_out = (events & EPOLLOUT) != 0;
}

static void wspub_reserve(size_t more)
{
	if (wspub.out_length + more <= wspub.out_capacity)
		return;
	/* Compact what was written before growing. */
	if (wspub.out_written > 0) {
		memmove(wspub.out, wspub.out + wspub.out_written,
			wspub.out_length - wspub.out_written);
		wspub.out_length -= wspub.out_written;
		wspub.out_written = 0;
	}
	while (wspub.out_length + more > wspub.out_capacity) {
		wspub.out_capacity = wspub.out_capacity ? wspub.out_capacity * 2 : 65536;
		wspub.out = realloc(wspub.out, wspub.out_capacity);
		if (wspub.out == NULL)
			fail_run("out of memory");
	}
}

/* Every publish waiting for an answer fails with `error`; the socket goes. */
static void wspub_broken(const char *error)
{
	if (wspub.fd >= 0)
		close(wspub.fd);
	wspub.fd = -1;
	wspub.state = WSPUB_CLOSED;
	wspub.out_length = wspub.out_written = wspub.in_length = 0;
	uint32_t waiting = wspub.unanswered;
	wspub.unanswered = 0;
	for (uint32_t i = 0; i < waiting; i++)
		job_answer(error);
	if (waiting)
		job_refill();
}

/* Writes what is queued; false (after wspub_broken) if the socket broke. */
static bool wspub_flush(void)
{
	if (wspub.state != WSPUB_OPEN && wspub.state != WSPUB_HANDSHAKE)
		return true;
	while (wspub.out_written < wspub.out_length) {
		ssize_t n = send(wspub.fd, wspub.out + wspub.out_written,
				 wspub.out_length - wspub.out_written, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (!wspub.watching_out)
				wspub_watch(EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
			return true;
		}
		if (n < 0) {
			char error[ERROR_BYTES];
			snprintf(error, sizeof error, "WS publish failed: %s", strerror(errno));
			wspub_broken(error);
			return false;
		}
		wspub.out_written += (size_t)n;
	}
	wspub.out_length = wspub.out_written = 0;
	if (wspub.watching_out)
		wspub_watch(EPOLLIN, EPOLL_CTL_MOD);
	return true;
}

static void wspub_frame(uint8_t opcode, const char *payload, size_t length)
{
	wspub_reserve(length + 14);
	uint8_t *at = (uint8_t *)wspub.out + wspub.out_length;
	*at++ = 0x80 | opcode;
	if (length < 126) {
		*at++ = 0x80 | (uint8_t)length;
	} else if (length < 65536) {
		*at++ = 0x80 | 126;
		*at++ = (uint8_t)(length >> 8);
		*at++ = (uint8_t)length;
	} else {
		*at++ = 0x80 | 127;
		for (int shift = 56; shift >= 0; shift -= 8)
			*at++ = (uint8_t)((uint64_t)length >> shift);
	}
	memset(at, 0, 4); /* the mask key: 0 leaves the payload as it is */
	at += 4;
	memcpy(at, payload, length);
	at += length;
	wspub.out_length = (size_t)((char *)at - wspub.out);
}

static const char *ws_post(size_t body_length)
{
	static char error[ERROR_BYTES];
	if (wspub.state == WSPUB_CLOSED) {
		wspub.fd = open_socket(&config.publish);
		if (wspub.fd < 0) {
			snprintf(error, sizeof error, "WS publish failed: cannot connect: %s",
				 strerror(errno));
			return error;
		}
		int one = 1;
		setsockopt(wspub.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		wspub.state = WSPUB_CONNECTING;
		const char *query = strchr(config.publish.path, '?') ? "&" : "?";
		char head[1024];
		int n = snprintf(head, sizeof head,
				 "GET %s%spublish HTTP/1.1\r\nHost: %s\r\n"
				 "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				 "Sec-WebSocket-Version: 13\r\n"
				 "Sec-WebSocket-Key: YmVuY2htYXJrIGNsaWVudA==\r\n\r\n",
				 config.publish.path, query, config.publish.host);
		wspub_reserve((size_t)n);
		memcpy(wspub.out + wspub.out_length, head, (size_t)n);
		wspub.out_length += (size_t)n;
		wspub_watch(EPOLLIN | EPOLLOUT, EPOLL_CTL_ADD);
	}
	wspub_frame(1, body, body_length);
	wspub.unanswered++;
	return NULL;
}

/* One answer frame: an id, or the server's error. */
static void wspub_answer(const uint8_t *payload, size_t length)
{
	if (wspub.unanswered == 0) {
		wspub_broken("WS publish failed: an answer for nothing sent");
		return;
	}
	wspub.unanswered--;
	if (length >= 6 && memcmp(payload, "{\"id\":", 6) == 0) {
		job_answer(NULL);
	} else {
		char error[ERROR_BYTES];
		snprintf(error, sizeof error, "WS publish answered %.*s",
			 (int)(length < 200 ? length : 200), (const char *)payload);
		job_answer(error);
	}
}

static void wspub_read(void)
{
	if (wspub.in_capacity - wspub.in_length < 65536) {
		wspub.in_capacity = wspub.in_capacity ? wspub.in_capacity * 2 : 131072;
		wspub.in = realloc(wspub.in, wspub.in_capacity);
		if (wspub.in == NULL)
			fail_run("out of memory");
	}
	ssize_t n = read(wspub.fd, wspub.in + wspub.in_length,
			 wspub.in_capacity - wspub.in_length);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		wspub_broken(n == 0 ? "WS publish failed: closed by the server"
				    : "WS publish failed: read error");
		return;
	}
	wspub.in_length += (size_t)n;
	size_t at = 0;
	if (wspub.state == WSPUB_HANDSHAKE) {
		uint8_t *end = memmem(wspub.in, wspub.in_length, "\r\n\r\n", 4);
		if (end == NULL)
			return;
		if (wspub.in_length < 12 || memcmp(wspub.in + 9, "101", 3) != 0) {
			char error[ERROR_BYTES];
			snprintf(error, sizeof error, "WS publish refused: %.*s",
				 (int)strcspn((char *)wspub.in, "\r\n"), (char *)wspub.in);
			wspub_broken(error);
			return;
		}
		wspub.state = WSPUB_OPEN;
		at = (size_t)(end - wspub.in) + 4;
	}
	bool answered = false;
	while (wspub.in_length - at >= 2) {
		const uint8_t *f = wspub.in + at;
		uint8_t opcode = f[0] & 0x0f;
		uint64_t length = f[1] & 0x7f;
		size_t head = 2;
		if (length == 126) {
			if (wspub.in_length - at < 4)
				break;
			length = (uint64_t)f[2] << 8 | f[3];
			head = 4;
		} else if (length == 127) {
			if (wspub.in_length - at < 10)
				break;
			length = 0;
			for (int i = 0; i < 8; i++)
				length = length << 8 | f[2 + i];
			head = 10;
		}
		if (wspub.in_length - at < head + length)
			break;
		const uint8_t *payload = f + head;
		if (opcode == 1) {
			wspub_answer(payload, (size_t)length);
			answered = true;
		} else if (opcode == 9) {
			wspub_frame(10, (const char *)payload, (size_t)length);
		} else if (opcode == 8) {
			char error[ERROR_BYTES];
			snprintf(error, sizeof error, "WS publish failed: closed with %u",
				 length >= 2 ? (unsigned)(payload[0] << 8 | payload[1]) : 0);
			wspub_broken(error);
			return;
		}
		if (wspub.fd < 0)
			return;
		at += head + (size_t)length;
	}
	memmove(wspub.in, wspub.in + at, wspub.in_length - at);
	wspub.in_length -= at;
	if (answered)
		job_refill();
	wspub_flush();
}

static void on_wspub(uint32_t events)
{
	if (wspub.state == WSPUB_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		int failed = socket_error(wspub.fd);
		if (failed) {
			char error[ERROR_BYTES];
			snprintf(error, sizeof error, "WS publish failed: cannot connect: %s",
				 strerror(failed));
			wspub_broken(error);
			return;
		}
		wspub.state = WSPUB_HANDSHAKE;
	}
	if (events & EPOLLOUT) {
		if (!wspub_flush())
			return;
	}
	if (wspub.fd >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
		wspub_read();
}

/* Builds `<seq> <sentMs> ` (or `w<n> `) padded with x to payloadBytes, as publisher.ts. */
static size_t make_body(bool warmup, uint32_t n, double sent_ms)
{
	int length = warmup ? sprintf(body, "w%u ", n)
			    : sprintf(body, "%u %.3f ", n, sent_ms);
	if ((uint32_t)length >= config.payload_bytes)
		return (size_t)length;
	memset(body + length, 'x', config.payload_bytes - (size_t)length);
	return config.payload_bytes;
}

/* Sends POSTs while the job has some to send and room in flight. */
static void job_refill(void)
{
	double now = now_ms();
	while (job.next < job.total && job.inflight < job.limit) {
		uint32_t seq = job.next;
		double sent = now;
		if (job.kind == JOB_STEADY) {
			/* The time it was due, not the time it left: a late
			 * answer is charged to the server (no coordinated
			 * omission), as publishSteady does. */
			sent = job.start_ms + seq * job.interval_ms;
			if (sent > now)
				break;
		} else if (job.kind == JOB_FLAT) {
			sent = now_ms();
		}
		if (job.kind != JOB_WARMUP)
			receiver.sent_ms[seq] = sent;
		size_t length = make_body(job.kind == JOB_WARMUP, job.first + seq, sent);
		job.next++;
		job.inflight++;
		const char *error = post(length);
		if (error)
			job_answer(error);
	}
	if (config.publish_ws)
		wspub_flush();
}

static void job_start(enum job_kind kind, uint32_t first, uint32_t total, uint32_t limit)
{
	job.kind = kind;
	job.first = kind == JOB_WARMUP ? first : 0;
	job.next = 0;
	job.total = total;
	job.limit = limit;
	job.inflight = 0;
	job.errors = 0;
	job.first_error[0] = 0;
	job.start_ms = now_ms();
	job.interval_ms = config.rate > 0 ? 1000 / config.rate : 0;
}

/* -------------------------------------------------------------- the loop */

static char stdin_line[64];
static size_t stdin_length;
static bool stdin_done;

static void on_stdin(void)
{
	ssize_t n = read(STDIN_FILENO, stdin_line + stdin_length,
			 sizeof stdin_line - 1 - stdin_length);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		fail_run("expected go on stdin");
	stdin_length += (size_t)n;
	stdin_line[stdin_length] = 0;
	stdin_done = strchr(stdin_line, '\n') != NULL ||
		     stdin_length == sizeof stdin_line - 1;
}

/* Handles what is ready, waiting at most until `deadline_ms` (INFINITY: no limit). */
static void pump(double deadline_ms)
{
	static struct epoll_event events[EPOLL_BATCH];
	int timeout = -1;
	if (deadline_ms < (double)INFINITY) {
		double wait = deadline_ms - now_ms();
		if (wait <= 0) {
			timeout = 0;
		} else if (deadline_ms != timer_armed_ms) {
			/* A timer, not epoll's milliseconds: the steady
			 * schedule wants sub-millisecond wake-ups. */
			int64_t at = (int64_t)origin.tv_sec * 1000000000 +
				     origin.tv_nsec + (int64_t)(deadline_ms * 1e6);
			struct itimerspec spec = {0};
			spec.it_value.tv_sec = (time_t)(at / 1000000000);
			spec.it_value.tv_nsec = (long)(at % 1000000000);
			timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &spec, NULL);
			timer_armed_ms = deadline_ms;
		}
	}
	int n = epoll_wait(epoll_fd, events, EPOLL_BATCH, timeout);
	if (n < 0 && errno != EINTR)
		fail_run("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++) {
		uint32_t index = (uint32_t)events[i].data.u64;
		switch (events[i].data.u64 >> 32) {
		case TAG_SUBSCRIBER: on_subscriber(index, events[i].events); break;
		case TAG_POSTER: on_poster(index, events[i].events); break;
		case TAG_WSPUB: on_wspub(events[i].events); break;
		case TAG_STDIN: on_stdin(); break;
		case TAG_TIMER: {
			uint64_t expirations;
			if (read(timer_fd, &expirations, sizeof expirations) < 0)
				(void)0; /* nothing to clear */
			timer_armed_ms = -1;
			break;
		}
		}
	}
}

/* Runs the current job until every POST of it was answered. */
static void run_job(void)
{
	job_refill();
	while (job.next < job.total || job.inflight > 0) {
		double due = (double)INFINITY;
		if (job.kind == JOB_STEADY && job.next < job.total && job.inflight < job.limit)
			due = job.start_ms + job.next * job.interval_ms;
		pump(due);
		job_refill();
	}
}

static void pause_ms(double ms)
{
	double until = now_ms() + ms;
	while (now_ms() < until)
		pump(until);
}

/* ------------------------------------------------------------ the phases */

static void open_subscribers(void)
{
	uint32_t next = 0;
	while (receiver.opened < receiver.count) {
		while (receiver.handshaking < config.connect_concurrency && next < receiver.count)
			start_subscriber(next++);
		pump((double)INFINITY);
	}
}

/*
 * As bench/client.ts: warm-up events every 20 ms until each subscriber has
 * one (the server has registered them all), then, if the scenario publishes,
 * 500 more as fast as accepted, so that the servers' JIT compilers have
 * seen the hot path before the measured events.
 */
static void warm_up(void)
{
	double deadline = now_ms() + WARMUP_TIMEOUT_MS;
	for (uint32_t n = 0; receiver.warmed < receiver.count; n++) {
		if (now_ms() > deadline)
			fail_run("only %u of %u subscribers got a warm-up event",
				 receiver.warmed, receiver.count);
		job_start(JOB_WARMUP, n, 1, 1);
		run_job();
		if (job.errors)
			fail_run("warm-up: %s", job.first_error);
		pause_ms(WARMUP_INTERVAL_MS);
	}
	if (config.events == 0)
		return;
	uint64_t expected = receiver.warmups + (uint64_t)WARMUP_EVENTS * receiver.count;
	job_start(JOB_WARMUP, 0, WARMUP_EVENTS, config.inflight);
	run_job();
	if (job.errors)
		fail_run("warm-up: %s", job.first_error);
	while (receiver.warmups < expected) {
		if (now_ms() > deadline)
			fail_run("only %llu of %llu warm-up deliveries arrived",
				 (unsigned long long)receiver.warmups,
				 (unsigned long long)expected);
		pump(deadline + 1);
	}
}

/* Waits for `go` on stdin, answering pings meanwhile. */
static void await_go(void)
{
	struct epoll_event event = {.events = EPOLLIN, .data.u64 = (uint64_t)TAG_STDIN << 32};
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &event) < 0) {
		/* A file or /dev/null cannot be watched: it never blocks. */
		while (!stdin_done)
			on_stdin();
	}
	while (!stdin_done)
		pump((double)INFINITY);
	epoll_ctl(epoll_fd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
	if (strncmp(stdin_line, "go\n", 3) != 0)
		fail_run("expected go on stdin");
}

/* Until all arrived (false), none for quietMs (false), or the deadline (true). */
static bool await_deliveries(double start)
{
	double deadline = start + config.deadline_ms;
	for (;;) {
		if (receiver.unique >= receiver.expected)
			return false;
		double now = now_ms();
		if (now > deadline)
			return true;
		double last = receiver.last_receive_ms > start ? receiver.last_receive_ms : start;
		if (now - last > config.quiet_ms)
			return false;
		double quiet_end = last + config.quiet_ms + 0.001;
		pump(quiet_end < deadline ? quiet_end : deadline + 0.001);
	}
}

/* ------------------------------------------------------------ statistics */

/*
 * Moves the k-th smallest of a[0, n) to a[k], smaller ones before it and
 * larger ones after (quickselect): linear time, where sorting 20 million
 * samples would take seconds.
 */
static float select_kth(float *a, long n, long k)
{
	long lo = 0, hi = n - 1;
	while (lo < hi) {
		float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
		float pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
		long i = lo, j = hi;
		while (i <= j) {
			while (a[i] < pivot)
				i++;
			while (a[j] > pivot)
				j--;
			if (i <= j) {
				float t = a[i];
				a[i++] = a[j];
				a[j--] = t;
			}
		}
		if (k <= j)
			hi = j;
		else if (k >= i)
			lo = i;
		else
			return a[k];
	}
	return a[k];
}

/* The index stats.ts reads: min(n - 1, ceil(fraction * n) - 1), at least 0. */
static long percentile_index(double fraction, long n)
{
	double x = fraction * (double)n;
	long ceiling = (long)x;
	if ((double)ceiling < x)
		ceiling++;
	long index = ceiling - 1 < n - 1 ? ceiling - 1 : n - 1;
	return index > 0 ? index : 0;
}

static void put_latency(FILE *out, struct group *g)
{
	long n = (long)g->samples;
	double p50 = NAN, p99 = NAN, max = NAN;
	if (n > 0) {
		long k50 = percentile_index(0.5, n), k99 = percentile_index(0.99, n);
		p50 = select_kth(g->latencies, n, k50);
		/* Everything past k50 is no smaller: p99 is among it. */
		p99 = k99 > k50 ? select_kth(g->latencies + k50 + 1, n - k50 - 1,
					     k99 - k50 - 1)
				: p50;
		float top = g->latencies[0];
		for (long i = 1; i < n; i++)
			if (g->latencies[i] > top)
				top = g->latencies[i];
		max = top;
	}
	fputs("{\"p50\":", out);
	put_number(out, p50);
	fputs(",\"p99\":", out);
	put_number(out, p99);
	fputs(",\"max\":", out);
	put_number(out, max);
	fputc('}', out);
}

/* ------------------------------------------------------------------ main */

static void raise_open_files_limit(void)
{
	/* Scenario c holds 10,000 connections: take all the hard limit allows. */
	struct rlimit limit;
	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

static char *format_request(const struct target *t, const char *headers)
{
	char *request = NULL;
	if (asprintf(&request, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", t->path, t->host,
		     headers) < 0)
		fail_run("out of memory");
	return request;
}

static void allocate(void)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < config.group_count; i++) {
		struct group *g = &config.groups[i];
		total += g->count;
		g->request = format_request(
			&g->target,
			g->transport == WS
				? "Upgrade: websocket\r\nConnection: Upgrade\r\n"
				  "Sec-WebSocket-Version: 13\r\n"
				  "Sec-WebSocket-Key: YmVuY2htYXJrIGNsaWVudA==\r\n"
				: "Accept: text/event-stream\r\n");
		g->request_length = strlen(g->request);
		/* Pages are only touched as samples arrive. */
		g->latencies = malloc(((size_t)g->count * config.events + 1) * sizeof(float));
		if (g->latencies == NULL)
			fail_run("cannot allocate latencies for group %s", g->name);
	}
	receiver.count = (uint32_t)total;
	receiver.expected = total * config.events;
	receiver.subscribers = calloc(total + 1, sizeof *receiver.subscribers);
	receiver.seen_stride = (config.events + 7) / 8;
	receiver.seen = calloc(total * receiver.seen_stride + 1, 1);
	receiver.sent_ms = calloc((size_t)config.events + 1, sizeof(double));
	if (!receiver.subscribers || !receiver.seen || !receiver.sent_ms)
		fail_run("out of memory for %llu subscribers", (unsigned long long)total);
	uint32_t index = 0;
	for (uint32_t i = 0; i < config.group_count; i++)
		for (uint32_t j = 0; j < config.groups[i].count; j++) {
			receiver.subscribers[index].fd = -1;
			receiver.subscribers[index++].group = i;
		}

	poster_count = config.inflight;
	posters = calloc(poster_count, sizeof *posters);
	if (asprintf(&post_head,
		     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
		     "Content-Length: ",
		     config.publish.path, config.publish.host) < 0)
		fail_run("out of memory");
	post_head_length = strlen(post_head);
	size_t body_capacity = config.payload_bytes + 64;
	body = malloc(body_capacity);
	for (uint32_t i = 0; i < poster_count; i++) {
		posters[i].fd = -1;
		posters[i].request = malloc(post_head_length + 32 + body_capacity);
		posters[i].answer_capacity = 8192;
		posters[i].answer = malloc(posters[i].answer_capacity);
	}
}

static void print_ready(double connect_ms, double warmup_ms)
{
	printf("{\"type\":\"ready\",\"connected\":%u,\"connectMs\":", receiver.opened);
	put_number(stdout, connect_ms);
	fputs(",\"warmupMs\":", stdout);
	put_number(stdout, warmup_ms);
	fputs("}\n", stdout);
	fflush(stdout);
}

static void measure(void)
{
	double cpu_before = cpu_ms();
	double start = now_ms();
	bool steady = config.rate > 0;
	uint32_t limit = steady || config.inflight < config.events ? config.inflight
								   : config.events;
	job_start(steady ? JOB_STEADY : JOB_FLAT, 0, config.events, limit);
	double first_send = job.start_ms;
	run_job();
	bool timed_out = config.events > 0 && await_deliveries(start);
	double end = now_ms();
	double cpu = cpu_ms() - cpu_before;
	receiver.closing = true;
	double duration_ms = receiver.last_receive_ms - first_send;
	if (duration_ms < 0)
		duration_ms = 0;
	if (job.errors)
		fprintf(stderr, "client: %u publish errors, first: %s\n", job.errors,
			job.first_error);
	if (receiver.errors)
		fprintf(stderr, "client: %u subscriber errors, first: %s\n",
			receiver.errors, receiver.first_error);

	fputs("{\"type\":\"result\",\"groups\":[", stdout);
	for (uint32_t i = 0; i < config.group_count; i++) {
		struct group *g = &config.groups[i];
		fputs(i ? ",{\"name\":" : "{\"name\":", stdout);
		put_string(stdout, g->name);
		printf(",\"subscribers\":%u,\"received\":%llu,\"lost\":%llu,"
		       "\"duplicated\":%llu,\"latency\":",
		       g->count, (unsigned long long)g->received,
		       (unsigned long long)((uint64_t)g->count * config.events - g->samples),
		       (unsigned long long)g->duplicated);
		put_latency(stdout, g);
		fputc('}', stdout);
	}
	printf("],\"publishErrors\":%u,\"subscriberErrors\":%llu,\"durationS\":",
	       job.errors, (unsigned long long)(receiver.errors + receiver.unexpected));
	put_number(stdout, duration_ms / 1000);
	fputs(",\"deliveriesPerS\":", stdout);
	put_number(stdout, duration_ms > 0 ? receiver.unique / (duration_ms / 1000) : 0);
	fputs(",\"clientCpuPct\":", stdout);
	put_number(stdout, end > start ? cpu / (end - start) * 100 : 0);
	printf(",\"timedOut\":%s}\n", timed_out ? "true" : "false");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	clock_gettime(CLOCK_MONOTONIC, &origin);
	signal(SIGPIPE, SIG_IGN);
	if (argc != 2)
		fail_run("Cannot parse the arguments: expected one, a ClientConfig as "
			 "JSON, received %d",
			 argc - 1);
	parse_config(argv[1]);
	raise_open_files_limit();
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (epoll_fd < 0 || timer_fd < 0)
		fail_run("cannot create epoll or timer: %s", strerror(errno));
	watch(timer_fd, EPOLL_CTL_ADD, EPOLLIN, TAG_TIMER, 0);
	allocate();

	double connect_start = now_ms();
	open_subscribers();
	double warm_start = now_ms();
	warm_up();
	print_ready(warm_start - connect_start, now_ms() - warm_start);
	await_go();
	measure();
	return 0;
}
