/*
 * fjord: HTTP requests with libcurl and what their status codes mean for the
 * exit code.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "pbjson.h"

#define CLI_USER_AGENT	      "fjord-cli/1"
#define CLI_CONNECT_TIMEOUT_S 10L
/* How much of a non-JSON error body is worth showing. */
#define CLI_ERR_TEXT_MAX 300

void cli_buf_free(struct cli_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

struct sink_ctx {
	CURL *curl;
	struct cli_buf *buf;
	FILE *sink;
	size_t cap;
	int too_big;
	int write_err;
};

static int buf_append(struct sink_ctx *s, const char *p, size_t n)
{
	struct cli_buf *b = s->buf;
	char *nd;

	if (b->len + n > s->cap) {
		s->too_big = 1;
		return -EMSGSIZE;
	}
	nd = realloc(b->data, b->len + n + 1);
	if (!nd)
		return -ENOMEM;
	memcpy(nd + b->len, p, n);
	b->len += n;
	nd[b->len] = '\0';
	b->data = nd;
	return 0;
}

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
	struct sink_ctx *s = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	/* Only a successful answer goes to the sink; an error body stays in
	 * memory so that its message can be shown. */
	if (s->sink && status >= 200 && status < 300) {
		if (fwrite(p, 1, n, s->sink) != n) {
			s->write_err = errno ? errno : EIO;
			return 0;
		}
		return n;
	}
	return buf_append(s, p, n) == 0 ? n : 0;
}

/* Copies at most max bytes of text into out, replacing control characters. */
static void clean_text(const char *in, size_t len, char *out, size_t max)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < max; i++) {
		unsigned char ch = (unsigned char)in[i];

		out[o++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	while (o > 0 && out[o - 1] == ' ')
		o--;
	out[o] = '\0';
}

/* Prints the controller's reason for an error status and returns code. */
static int report_status(long status, const struct cli_buf *b, int code)
{
	const char *what = code == CLI_REFUSED ? "refused by the controller" : "controller error";
	char text[CLI_ERR_TEXT_MAX + 1];
	json_error_t jerr;
	json_t *j = NULL, *msg, *field;

	if (b->len > 0)
		j = json_loadb(b->data, b->len, 0, &jerr);
	msg = j ? json_object_get(j, "message") : NULL;
	field = j ? json_object_get(j, "field") : NULL;
	if (json_is_string(msg)) {
		clean_text(json_string_value(msg), json_string_length(msg), text, sizeof(text));
		if (json_is_string(field) && json_string_length(field) > 0)
			cli_fail(code, "%s (%ld): %s (field: %s)", what, status, text,
				 json_string_value(field));
		else
			cli_fail(code, "%s (%ld): %s", what, status, text);
	} else if (b->len > 0) {
		clean_text(b->data, b->len, text, sizeof(text));
		cli_fail(code, "%s (%ld): %s", what, status, text);
	} else {
		cli_fail(code, "%s (%ld) without a reason", what, status);
	}
	json_decref(j);
	return code;
}

static struct curl_slist *make_headers(const struct cli *c, int has_body)
{
	struct curl_slist *h = NULL, *n;
	char auth[4200];

	n = curl_slist_append(h, "Accept: application/json");
	if (n)
		h = n;
	if (has_body) {
		n = curl_slist_append(h, "Content-Type: application/json");
		if (n)
			h = n;
	}
	/* No "Expect: 100-continue" round trip for small bodies. */
	n = curl_slist_append(h, "Expect:");
	if (n)
		h = n;
	if (c->token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->token);
		n = curl_slist_append(h, auth);
		if (n)
			h = n;
	}
	return h;
}

int cli_http(const struct cli *c, const char *method, const char *path, const char *body,
	     struct cli_buf *out, FILE *sink)
{
	char url[CLI_URL_MAX + 4096], errbuf[CURL_ERROR_SIZE] = "";
	struct sink_ctx s = { .buf = out, .sink = sink, .cap = CLI_MAX_ANSWER };
	struct curl_slist *hdrs;
	long status = 0;
	CURLcode rc;
	CURL *h;
	int n;

	out->data = NULL;
	out->len = 0;
	if (c->token && strlen(c->token) > 4096)
		return cli_fail(CLI_USAGE, "the token is longer than 4096 characters");
	n = snprintf(url, sizeof(url), "%s%s", c->url, path);
	if (n < 0 || (size_t)n >= sizeof(url))
		return cli_fail(CLI_USAGE, "request URL too long");
	h = curl_easy_init();
	if (!h)
		return cli_fail(CLI_UNREACHABLE, "cannot initialise libcurl");
	hdrs = make_headers(c, body != NULL);
	s.curl = h;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, CLI_USER_AGENT);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CLI_CONNECT_TIMEOUT_S);
	if (sink) {
		/* A large trace may take longer than any fixed limit: give up only
		 * when it stalls (under 1 KiB/s for the timeout). */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->timeout_s);
	} else {
		curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
	}
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->cacert)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->cacert);
	if (body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	} else if (strcmp(method, "POST") == 0) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);

	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);

	if (s.write_err)
		return cli_fail(CLI_USAGE, "cannot write the download: %s", strerror(s.write_err));
	if (s.too_big)
		return cli_fail(CLI_SERVER, "the controller's answer is larger than %u bytes",
				CLI_MAX_ANSWER);
	if (rc != CURLE_OK && status == 0)
		return cli_fail(CLI_UNREACHABLE, "cannot reach the controller at %s: %s", c->url,
				*errbuf ? errbuf : curl_easy_strerror(rc));
	if (rc != CURLE_OK)
		return cli_fail(CLI_SERVER, "the answer from %s broke off: %s", c->url,
				*errbuf ? errbuf : curl_easy_strerror(rc));
	if (status >= 200 && status < 300)
		return CLI_OK;
	if (status >= 400 && status < 500)
		return report_status(status, out, CLI_REFUSED);
	return report_status(status, out, CLI_SERVER);
}

static int decode_answer(const struct cli_buf *b, const ProtobufCMessageDescriptor *desc,
			 ProtobufCMessage **msg)
{
	char err[256];

	if (fj_pbjson_decode(desc, b->data ? b->data : "", b->len, CLI_MAX_ANSWER, msg, err,
			     sizeof(err)) != 0)
		return cli_fail(CLI_SERVER, "the controller's answer is not a valid %s: %s",
				desc->name, err);
	return CLI_OK;
}

int cli_call_msg(const struct cli *c, const char *method, const char *path, const char *body,
		 const ProtobufCMessageDescriptor *desc, ProtobufCMessage **msg)
{
	struct cli_buf b;
	int r;

	*msg = NULL;
	r = cli_http(c, method, path, body, &b, NULL);
	if (r == CLI_OK)
		r = decode_answer(&b, desc, msg);
	cli_buf_free(&b);
	return r;
}

int cli_get_msg(const struct cli *c, const char *path, const ProtobufCMessageDescriptor *desc,
		ProtobufCMessage **msg)
{
	return cli_call_msg(c, "GET", path, NULL, desc, msg);
}

char *cli_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy;

	if (!e)
		return NULL;
	copy = strdup(e);
	curl_free(e);
	return copy;
}
