/*
 * fjord: output as aligned tables, RFC 4180 CSV or canonical JSON.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "pbjson.h"

struct cli_table {
	size_t ncols;
	size_t nrows; /* header row included */
	size_t cap;
	char **cells; /* nrows x ncols */
};

int cli_print_json(const ProtobufCMessage *msg)
{
	char *text = NULL;

	if (fj_pbjson_encode(msg, FJ_PBJSON_PRETTY, &text) != 0)
		return cli_fail(CLI_SERVER, "out of memory encoding JSON");
	puts(text);
	free(text);
	return CLI_OK;
}

struct cli_table *cli_table_new(size_t ncols, const char *const *headers)
{
	struct cli_table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	if (cli_table_add(t, headers) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

int cli_table_add(struct cli_table *t, const char *const *cells)
{
	size_t i, base;

	if (t->nrows == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		char **n = realloc(t->cells, ncap * t->ncols * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->cells = n;
		t->cap = ncap;
	}
	base = t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		t->cells[base + i] = strdup(cells[i] ? cells[i] : "-");
		if (!t->cells[base + i]) {
			while (i-- > 0)
				free(t->cells[base + i]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

size_t cli_table_rows(const struct cli_table *t)
{
	return t->nrows - 1;
}

static void print_csv_cell(const char *s, FILE *f)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, f);
		return;
	}
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void cli_table_print(const struct cli_table *t, enum cli_format fmt, FILE *f)
{
	size_t r, i, *width;

	if (fmt != CLI_FMT_TABLE) {
		for (r = 0; r < t->nrows; r++) {
			for (i = 0; i < t->ncols; i++) {
				if (i)
					fputc(',', f);
				print_csv_cell(t->cells[r * t->ncols + i], f);
			}
			fputs("\r\n", f);
		}
		return;
	}
	width = calloc(t->ncols, sizeof(*width));
	if (!width)
		return;
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			size_t w = strlen(t->cells[r * t->ncols + i]);

			if (w > width[i])
				width[i] = w;
		}
	}
	for (r = 0; r < t->nrows; r++) {
		for (i = 0; i < t->ncols; i++) {
			const char *s = t->cells[r * t->ncols + i];

			if (i + 1 == t->ncols)
				fprintf(f, "%s\n", s);
			else
				fprintf(f, "%-*s  ", (int)width[i], s);
		}
	}
	free(width);
}

void cli_table_free(struct cli_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

const char *cli_time(long long ms, char *buf, size_t len)
{
	time_t sec = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || !gmtime_r(&sec, &tm) || strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, len, "-");
	return buf;
}

const char *cli_enum(const ProtobufCEnumDescriptor *desc, int value, char *buf, size_t len)
{
	const char *s = fj_pbjson_enum_short(desc, value);

	if (s)
		return s;
	snprintf(buf, len, "%d", value);
	return buf;
}
