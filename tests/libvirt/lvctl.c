/* SPDX-License-Identifier: MIT */
/*
 * lvctl URI ACTION [ARG]: a second libvirt client for the tests, so that
 * domains are defined, started, paused, stopped and undefined from
 * outside vmic-hostd (as virsh would; libvirt-clients is not a build
 * dependency). ACTION: define FILE | undefine NAME | start NAME |
 * destroy NAME | suspend NAME | resume NAME. Exit 0 or 1 with libvirt's
 * error on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = calloc(1, (size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int on_domain(virConnectPtr c, const char *action, const char *name)
{
	virDomainPtr d = virDomainLookupByName(c, name);
	int r = -1;

	if (!d)
		return -1;
	if (strcmp(action, "undefine") == 0)
		r = virDomainUndefine(d);
	else if (strcmp(action, "start") == 0)
		r = virDomainCreate(d);
	else if (strcmp(action, "destroy") == 0)
		r = virDomainDestroy(d);
	else if (strcmp(action, "suspend") == 0)
		r = virDomainSuspend(d);
	else if (strcmp(action, "resume") == 0)
		r = virDomainResume(d);
	else
		fprintf(stderr, "lvctl: unknown action '%s'\n", action);
	virDomainFree(d);
	return r;
}

int main(int argc, char **argv)
{
	virConnectPtr c;
	int r;

	if (argc != 4) {
		fprintf(stderr, "usage: lvctl URI ACTION ARG\n");
		return 2;
	}
	c = virConnectOpen(argv[1]);
	if (!c) {
		fprintf(stderr, "lvctl: %s\n", virGetLastErrorMessage());
		return 1;
	}
	if (strcmp(argv[2], "define") == 0) {
		char *xml = slurp(argv[3]);
		virDomainPtr d = xml ? virDomainDefineXML(c, xml) : NULL;

		r = d ? 0 : -1;
		if (d)
			virDomainFree(d);
		free(xml);
	} else {
		r = on_domain(c, argv[2], argv[3]);
	}
	if (r < 0)
		fprintf(stderr, "lvctl: %s\n", virGetLastErrorMessage());
	virConnectClose(c);
	return r < 0 ? 1 : 0;
}
