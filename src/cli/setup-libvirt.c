/* SPDX-License-Identifier: MIT */
/*
 * `vmic setup-libvirt DOMAIN [--path PATH] [--uri URI] [--apply]`: the
 * <channel> XML that gives a libvirt domain vmic's channel, made by
 * vmic-hostd (which also reads it back: one definition of the format);
 * --apply has vmic-hostd add it to the domain's definition through
 * libvirt, so nobody edits domain XML by hand.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "vmic.h"

enum { OPT_PATH = 0x200, OPT_URI, OPT_APPLY };

static int print_setup(const char *domain, bool apply, json_t *result)
{
	const char *xml = NULL, *detail = NULL;
	char clean[1024];

	if (apply) {
		json_unpack(result, "{s?s}", "detail", &detail);
		cli_clean_text(detail ? detail : "applied", clean,
			       sizeof(clean));
		printf("%s\n", clean);
		return 0;
	}
	if (json_unpack(result, "{s:s}", "xml", &xml) < 0) {
		fprintf(stderr, "vmic: the reply has no 'xml'\n");
		return 1;
	}
	/* The XML is ours (the daemon built it from checked values), so
	 * it is printed as is: escaping would break it. */
	fputs(xml, stdout);
	printf("\n<!-- Add it to %s with: vmic setup-libvirt %s --apply\n"
	       "     or: virsh attach-device %s FILE --config\n"
	       "     It takes effect when the domain next starts. -->\n",
	       domain, domain, domain);
	return 0;
}

/* vmic setup-libvirt DOMAIN ...: returns the exit status. */
int cmd_setup_libvirt(struct cli *cli, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "path", required_argument, NULL, OPT_PATH },
		{ "uri", required_argument, NULL, OPT_URI },
		{ "apply", no_argument, NULL, OPT_APPLY },
		CLI_COMMON_OPTIONS,
		{},
	};
	struct cli_error e = { 0 };
	const char *path = NULL, *uri = NULL;
	json_t *req, *result = NULL;
	bool apply = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_PATH)
			path = optarg;
		else if (c == OPT_URI)
			uri = optarg;
		else if (c == OPT_APPLY)
			apply = true;
		else if ((r = cli_common_option(cli, c, argv)) != CLI_NEXT)
			return r;
	}
	if ((r = cli_expect_operands(cli, argc, argv, 1)) != CLI_NEXT)
		return r;
	req = json_pack("{s:s, s:s, s:b}", "cmd", "libvirt-setup", "domain",
			argv[optind], "apply", apply);
	if (path)
		json_object_set_new(req, "path", json_string(path));
	if (uri)
		json_object_set_new(req, "uri", json_string(uri));
	r = cli_ctl_call(cli, req, CTL_DEFAULT_TIMEOUT_MS, &result, &e);
	if (r < 0)
		return cli_report(cli, &e);
	r = cli->json ? cli_print_json(result, false)
		      : print_setup(argv[optind], apply, result);
	json_decref(result);
	return r < 0 ? 1 : r;
}
