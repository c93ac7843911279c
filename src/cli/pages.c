/* SPDX-License-Identifier: MIT */
/*
 * Printing a reply that comes in pages (`list`, `events`, `kvp list`) as
 * it comes, so the CLI holds one page at a time however large the reply:
 * for people through the command's page_printer (a table per page whose
 * column widths only grow), and with --json as one JSON document, the
 * same text cli_print_json would give for the whole result: the result's
 * other members first, then the array's items as they come, then the
 * closing brackets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmic.h"

/* v as JSON text, with the characters jansson leaves raw escaped as
 * cli_print_json does (cli_safe_json); NULL without memory. */
static char *safe_dump(json_t *v, size_t flags)
{
	char *text = json_dumps(v, flags);
	char *safe = text ? cli_safe_json(text) : NULL;

	free(text);
	return safe;
}

/* The result up to its array's opening bracket (the array goes last, as
 * in the daemon's one-line reply). */
static int doc_begin(json_t *result, const char *key)
{
	json_t *head = json_copy(result);
	char *text = NULL;
	size_t n = 0;
	int r = -ENOMEM;

	if (head && json_object_set_new(head, key, json_array()) == 0)
		text = safe_dump(head, JSON_INDENT(2));
	if (text)
		n = strlen(text);
	/* The text ends with the empty array and the object's brace. */
	if (n >= 4 && memcmp(text + n - 4, "[]\n}", 4) == 0)
		r = fwrite(text, 1, n - 3, stdout) == n - 3 ? 0 : -EIO;
	free(text);
	json_decref(head);
	return r;
}

/* One item, indented as the array's member at depth 2. */
static int doc_item(json_t *v, bool first)
{
	char *text = safe_dump(v, JSON_INDENT(2) | JSON_ENCODE_ANY);

	if (!text)
		return -ENOMEM;
	fputs(first ? "\n    " : ",\n    ", stdout);
	for (const char *p = text; *p; p++) {
		putchar(*p);
		/* Strings never hold a raw newline: each is indentation. */
		if (*p == '\n')
			fputs("    ", stdout);
	}
	free(text);
	return 0;
}

static int doc_page(json_t *items, size_t *written)
{
	json_t *v;
	size_t i;
	int r;

	json_array_foreach(items, i, v) {
		if ((r = doc_item(v, *written == 0)) < 0)
			return r;
		(*written)++;
	}
	return ferror(stdout) ? -EIO : 0;
}

static int doc_end(size_t written)
{
	fputs(written ? "\n  ]\n}\n" : "]\n}\n", stdout);
	return fflush(stdout) == 0 ? 0 : -EIO;
}

/*
 * Send req on c asking for pages, and print the reply as it comes: with
 * json_doc as one JSON document, otherwise through pp. 0, or -errno with
 * e filled (what was printed before a failure stays printed; a document
 * cut short does not parse).
 */
int cli_print_pages(struct cli *cli, struct cli_ctl *c, json_t *req,
		    const struct page_printer *pp, void *ud, bool json_doc,
		    struct cli_error *e)
{
	struct cli_ctl_pages p;
	json_t *page = NULL;
	size_t written = 0;
	int r;

	(void)cli;
	r = cli_ctl_request_pages(c, req, pp->key, &p, e);
	if (r == 0)
		r = json_doc ? doc_begin(p.result, pp->key)
		     : pp->head ? pp->head(ud, p.result, e)
				: 0;
	while (r == 0 && (r = cli_ctl_pages_next(c, &p, &page, e)) == 0 &&
	       page) {
		if (json_doc)
			r = doc_page(page, &written);
		else if (pp->page)
			r = pp->page(ud, page, e);
		json_decref(page);
		page = NULL;
	}
	if (r == 0)
		r = json_doc ? doc_end(written)
		     : pp->end ? pp->end(ud, p.count, e)
			       : 0;
	cli_ctl_pages_free(&p);
	if (r == -EIO || r == -ENOMEM)
		cli_error_set(e, CLI_ERR_LOCAL, "cannot print the reply: %s",
			      strerror(-r));
	return r;
}

/*
 * One paged request on a connection of its own (req taken over), printed
 * as it comes; returns the exit status.
 */
int cli_call_pages(struct cli *cli, json_t *req,
		   const struct page_printer *pp, void *ud)
{
	struct cli_error e = { 0 };
	struct cli_ctl c;
	int r;

	if (!req) {
		cli_error_set(&e, CLI_ERR_LOCAL, "cannot build the request");
		return cli_report(cli, &e);
	}
	r = cli_ctl_open(&c, cli->socket_path, &e);
	if (r == 0) {
		r = cli_print_pages(cli, &c, req, pp, ud, cli->json, &e);
		cli_ctl_close(&c);
	}
	json_decref(req);
	/* A reader that went away (| head) ends the listing, quietly. */
	if (r < 0 && ferror(stdout))
		return 1;
	return r < 0 ? cli_report(cli, &e) : 0;
}
