/* SPDX-License-Identifier: MIT */
/*
 * Domain XML to the few facts hostd keeps (libvirt-xml.h), with libxml2:
 * the parser libvirt itself uses, so what libvirt wrote, we read the same
 * way. Only the tree walk is ours; nothing is fetched, nothing expanded.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "host/libvirt-xml.h"

static bool is_elem(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	       strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *parent, const char *name)
{
	for (const xmlNode *c = parent->children; c; c = c->next)
		if (is_elem(c, name))
			return c;
	return NULL;
}

/* The text of an element (its first text child), or NULL. */
static const char *text_of(const xmlNode *n)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (c->type == XML_TEXT_NODE && c->content)
			return (const char *)c->content;
	return NULL;
}

/* An attribute's value as stored in the tree (no copy), or NULL. */
static const char *attr(const xmlNode *n, const char *name)
{
	for (const xmlAttr *a = n->properties; a; a = a->next)
		if (strcmp((const char *)a->name, name) == 0 && a->children &&
		    a->children->type == XML_TEXT_NODE)
			return (const char *)a->children->content;
	return NULL;
}

static bool attr_is(const xmlNode *n, const char *name, const char *want)
{
	const char *v = attr(n, name);

	return v && strcmp(v, want) == 0;
}

/* <channel type='unix'><source path=P/><target type='virtio'
 * name='org.vmic.0'/></channel> -> P, or NULL. */
static const char *vmic_channel_path(const xmlNode *ch)
{
	const xmlNode *target = child(ch, "target");
	const xmlNode *source = child(ch, "source");

	if (!attr_is(ch, "type", "unix") || !target || !source ||
	    !attr_is(target, "type", "virtio") ||
	    !attr_is(target, "name", LVX_PORT_NAME))
		return NULL;
	return attr(source, "path");
}

/* A CID is a decimal number above 2 (0-2 are the hypervisor's and the
 * host's own), below 2^32 - 1. */
static bool cid_valid(const char *s)
{
	unsigned long long v = 0;

	if (!*s || strlen(s) > 10)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	return v > 2 && v < 0xffffffffull;
}

static int fail(char *err, size_t errsz, const char *msg)
{
	snprintf(err, errsz, "%s", msg);
	return -EINVAL;
}

static int copy(char *dst, size_t n, const char *prefix, const char *src)
{
	int len = snprintf(dst, n, "%s%s", prefix, src);

	return len < 0 || (size_t)len >= n ? -EINVAL : 0;
}

static int find_channel(const xmlNode *devices, struct lvx_domain *d,
			char *err, size_t errsz)
{
	const char *vsock_cid = NULL;

	for (const xmlNode *c = devices ? devices->children : NULL; c;
	     c = c->next) {
		const char *path;

		if (is_elem(c, "channel")) {
			path = vmic_channel_path(c);
			if (!path)
				continue;
			if (path[0] != '/' || copy(d->channel,
						   sizeof(d->channel), "unix:",
						   path) < 0)
				return fail(err, errsz,
					    "the org.vmic.0 channel's socket "
					    "path is not absolute or too long");
			return 0;
		}
		if (is_elem(c, "vsock") && !vsock_cid) {
			const xmlNode *cid = child(c, "cid");
			const char *a = cid ? attr(cid, "address") : NULL;

			if (a && cid_valid(a))
				vsock_cid = a;
		}
	}
	if (vsock_cid)
		return copy(d->channel, sizeof(d->channel), "vsock:",
			    vsock_cid);
	return 0;
}

static int extract_tree(const xmlNode *root, struct lvx_domain *d,
			char *err, size_t errsz)
{
	const char *name, *uuid;

	if (!root || !is_elem(root, "domain"))
		return fail(err, errsz, "the XML is not a <domain>");
	name = text_of(child(root, "name"));
	uuid = text_of(child(root, "uuid"));
	if (!name || !*name)
		return fail(err, errsz, "the domain has no <name>");
	if (!uuid || strlen(uuid) != LVX_UUID_LEN)
		return fail(err, errsz, "the domain has no 36-character <uuid>");
	if (copy(d->name, sizeof(d->name), "", name) < 0)
		return fail(err, errsz, "the domain's name is longer than 255 "
					"bytes");
	memcpy(d->uuid, uuid, LVX_UUID_LEN + 1);
	return find_channel(child(root, "devices"), d, err, errsz);
}

int lvx_extract(const char *xml, size_t len, struct lvx_domain *d,
		char *err, size_t errsz)
{
	xmlDoc *doc;
	int r;

	memset(d, 0, sizeof(*d));
	if (len > LVX_XML_MAX)
		return fail(err, errsz, "the domain XML is larger than 4 MiB");
	/* libvirt writes no DTD; one could only be there to expand entities
	 * (a billion laughs), so it is refused before parsing. */
	if (memmem(xml, len, "<!DOCTYPE", 9) || memmem(xml, len, "<!ENTITY", 8))
		return fail(err, errsz, "the domain XML has a DTD, which "
					"libvirt never writes");
	if (len > (size_t)INT32_MAX)
		return -EINVAL;
	doc = xmlReadMemory(xml, (int)len, "domain.xml", NULL,
			    XML_PARSE_NONET | XML_PARSE_NOERROR |
				    XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS);
	if (!doc)
		return fail(err, errsz, "the domain XML does not parse");
	r = extract_tree(xmlDocGetRootElement(doc), d, err, errsz);
	xmlFreeDoc(doc);
	if (r < 0)
		memset(d, 0, sizeof(*d));
	return r;
}

int lvx_channel_snippet(const char *path, char *buf, size_t n)
{
	int len;

	if (path[0] != '/' || strpbrk(path, "'\"<>&"))
		return -EINVAL;
	for (const char *p = path; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return -EINVAL; /* printed to terminals as is */
	len = snprintf(buf, n,
		       "<channel type='unix'>\n"
		       "  <source mode='bind' path='%s'/>\n"
		       "  <target type='virtio' name='" LVX_PORT_NAME "'/>\n"
		       "</channel>\n",
		       path);
	if (len < 0 || (size_t)len >= n)
		return -ENAMETOOLONG;
	return len;
}
