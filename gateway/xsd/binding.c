// C side of package xsd.
//
// Everything that libxml2 calls back into (the external entity loader, the
// structured and generic error handlers) lives here, so that no cgo callback
// into Go is ever needed: a Compile or a Validate is one C call that runs on
// one OS thread from start to end, which is what makes the thread-local
// libxml2 error state and the thread-local `current` below safe to use.

#include "binding.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/tree.h>
#include <libxml/uri.h>
#include <libxml/xmlIO.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

// Options for instance documents: no network, and nothing that loads or
// expands external content (no NOENT, DTDLOAD, DTDATTR, XINCLUDE) and no
// lifting of the parser's size and depth limits (no HUGE). COMPACT and
// BIG_LINES are what xmllint uses by default; BIG_LINES keeps line numbers
// above 65535 exact.
#define RGX_PARSE_OPTIONS (XML_PARSE_NONET | XML_PARSE_COMPACT | XML_PARSE_BIG_LINES)

// Longest node value copied for redaction. Values longer than this are not
// echoed whole by libxml2's messages in practice; the regexps in Go remain.
#define RGX_MAX_VALUE 65536

/* ---------- the table of registered schema files ---------- */

typedef struct {
	char *url;
	char *data;
	int len;
} rgx_entry;

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;
static rgx_entry *table;
static size_t table_n, table_cap;

// rgx_register copies url and data into the table. It returns 0 on success.
int rgx_register(const char *url, const char *data, int len) {
	if (url == NULL || len < 0 || (len > 0 && data == NULL))
		return -1;
	char *u = strdup(url);
	char *d = malloc(len > 0 ? (size_t)len : 1);
	if (u == NULL || d == NULL) {
		free(u);
		free(d);
		return -1;
	}
	if (len > 0)
		memcpy(d, data, (size_t)len);
	pthread_mutex_lock(&table_mu);
	if (table_n == table_cap) {
		size_t ncap = table_cap ? table_cap * 2 : 64;
		rgx_entry *nt = realloc(table, ncap * sizeof(*nt));
		if (nt == NULL) {
			pthread_mutex_unlock(&table_mu);
			free(u);
			free(d);
			return -1;
		}
		table = nt;
		table_cap = ncap;
	}
	table[table_n].url = u;
	table[table_n].data = d;
	table[table_n].len = len;
	table_n++;
	pthread_mutex_unlock(&table_mu);
	return 0;
}

// rgx_unregister_prefix removes and frees every entry whose URL starts with prefix.
void rgx_unregister_prefix(const char *prefix) {
	size_t pl = strlen(prefix);
	pthread_mutex_lock(&table_mu);
	size_t j = 0;
	for (size_t i = 0; i < table_n; i++) {
		if (strncmp(table[i].url, prefix, pl) == 0) {
			free(table[i].url);
			free(table[i].data);
		} else {
			table[j++] = table[i];
		}
	}
	table_n = j;
	pthread_mutex_unlock(&table_mu);
}

// rgx_registered returns the number of registered files (for tests).
int rgx_registered(void) {
	pthread_mutex_lock(&table_mu);
	int n = (int)table_n;
	pthread_mutex_unlock(&table_mu);
	return n;
}

// lookup returns a new input buffer holding a copy of the file registered
// under url, or NULL. The caller holds no lock.
static xmlParserInputBufferPtr lookup(const char *url) {
	xmlParserInputBufferPtr buf = NULL;
	pthread_mutex_lock(&table_mu);
	for (size_t i = 0; i < table_n; i++) {
		if (strcmp(table[i].url, url) == 0) {
			// xmlParserInputBufferCreateMem copies the bytes (2.9.x), so
			// the entry may be freed as soon as the lock is released.
			buf = xmlParserInputBufferCreateMem(table[i].data, table[i].len,
			                                    XML_CHAR_ENCODING_NONE);
			break;
		}
	}
	pthread_mutex_unlock(&table_mu);
	return buf;
}

/* ---------- error collection ---------- */

// current is the result of the Compile or Validate running on this thread,
// if any; the loader records refused loads in it.
static __thread rgx_result *current;

static char *dupstr(const char *s) {
	return s ? strdup(s) : NULL;
}

static void sb_add(char **buf, size_t *len, size_t *cap, const char *s) {
	if (*buf == NULL)
		return;
	size_t sl = strlen(s);
	if (*len + sl + 1 > *cap) {
		size_t ncap = (*len + sl + 1) * 2;
		char *nb = realloc(*buf, ncap);
		if (nb == NULL) {
			free(*buf);
			*buf = NULL;
			return;
		}
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, s, sl + 1);
	*len += sl;
}

static int same_name(xmlNodePtr a, xmlNodePtr b) {
	if (a->type != XML_ELEMENT_NODE || b->type != XML_ELEMENT_NODE)
		return 0;
	if (!xmlStrEqual(a->name, b->name))
		return 0;
	const xmlChar *na = a->ns ? a->ns->href : NULL;
	const xmlChar *nb = b->ns ? b->ns->href : NULL;
	return xmlStrEqual(na, nb);
}

// node_path returns a malloc'd path such as /Manifest/Parts/Part[2]/@size:
// local names, with a 1-based position only where siblings share the name
// (as xmlGetNodePath does, but without its "*" for default-namespace
// elements, which would make every path of our documents unreadable).
static char *node_path(xmlNodePtr node) {
	if (node == NULL)
		return NULL;
	const xmlChar *attr = NULL;
	if (node->type == XML_ATTRIBUTE_NODE) {
		attr = node->name;
		node = node->parent;
	}
	while (node != NULL && node->type != XML_ELEMENT_NODE && node->type != XML_DOCUMENT_NODE)
		node = node->parent;
	if (node == NULL)
		return NULL;

	size_t depth = 0;
	for (xmlNodePtr n = node; n != NULL && n->type == XML_ELEMENT_NODE; n = n->parent)
		depth++;
	xmlNodePtr *chain = malloc((depth ? depth : 1) * sizeof(*chain));
	if (chain == NULL)
		return NULL;
	size_t i = depth;
	for (xmlNodePtr n = node; n != NULL && n->type == XML_ELEMENT_NODE; n = n->parent)
		chain[--i] = n;

	size_t len = 0, cap = 64;
	char *buf = malloc(cap);
	if (buf != NULL)
		buf[0] = 0;
	for (i = 0; i < depth; i++) {
		xmlNodePtr n = chain[i];
		int idx = 1, multiple = 0;
		for (xmlNodePtr s = n->prev; s != NULL; s = s->prev)
			if (same_name(s, n)) {
				idx++;
				multiple = 1;
			}
		if (!multiple)
			for (xmlNodePtr s = n->next; s != NULL; s = s->next)
				if (same_name(s, n)) {
					multiple = 1;
					break;
				}
		sb_add(&buf, &len, &cap, "/");
		sb_add(&buf, &len, &cap, (const char *)n->name);
		if (multiple) {
			char num[32];
			snprintf(num, sizeof(num), "[%d]", idx);
			sb_add(&buf, &len, &cap, num);
		}
	}
	if (attr != NULL) {
		sb_add(&buf, &len, &cap, "/@");
		sb_add(&buf, &len, &cap, (const char *)attr);
	}
	if (buf != NULL && len == 0)
		sb_add(&buf, &len, &cap, "/");
	free(chain);
	return buf;
}

// add_value appends v and a NUL to the values buffer.
static void add_value(char **buf, size_t *len, size_t *cap, const xmlChar *v) {
	if (v == NULL || *buf == NULL)
		return;
	size_t vl = (size_t)xmlStrlen(v);
	if (vl == 0 || vl > RGX_MAX_VALUE)
		return;
	if (*len + vl + 1 > *cap) {
		size_t ncap = (*len + vl + 1) * 2;
		char *nb = realloc(*buf, ncap);
		if (nb == NULL) {
			free(*buf);
			*buf = NULL;
			return;
		}
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, v, vl);
	(*len) += vl;
	(*buf)[(*len)++] = 0;
}

// node_values stores in e the values a message about node may echo: the
// text of an element without child elements, the values of its attributes,
// or the value of an attribute node.
static void node_values(xmlNodePtr node, rgx_err *e) {
	if (node == NULL)
		return;
	size_t len = 0, cap = 256;
	char *buf = malloc(cap);
	if (node->type == XML_ATTRIBUTE_NODE) {
		xmlChar *v = xmlNodeGetContent(node);
		add_value(&buf, &len, &cap, v);
		xmlFree(v);
	} else if (node->type == XML_ELEMENT_NODE) {
		int leaf = 1;
		for (xmlNodePtr c = node->children; c != NULL; c = c->next)
			if (c->type == XML_ELEMENT_NODE) {
				leaf = 0;
				break;
			}
		if (leaf) {
			xmlChar *v = xmlNodeGetContent(node);
			add_value(&buf, &len, &cap, v);
			xmlFree(v);
		}
		for (xmlAttrPtr a = node->properties; a != NULL; a = a->next) {
			xmlChar *v = xmlNodeGetContent((xmlNodePtr)a);
			add_value(&buf, &len, &cap, v);
			xmlFree(v);
		}
	}
	if (buf == NULL || len == 0) {
		free(buf);
		return;
	}
	e->values = buf;
	e->values_len = (int)len;
}

static void on_error(void *user, xmlErrorPtr err) {
	rgx_result *r = user;
	if (r == NULL || err == NULL)
		return;
	if (err->level == XML_ERR_NONE)
		return;
	if (err->level == XML_ERR_WARNING && !r->keep_warnings)
		return;
	if (err->level >= XML_ERR_ERROR)
		r->errors++;
	if (r->n >= RGX_MAX_ERRS)
		return;
	rgx_err *e = &r->errs[r->n];
	memset(e, 0, sizeof(*e));
	e->msg = dupstr(err->message ? err->message : "(no message)");
	if (e->msg == NULL) {
		r->oom = 1;
		return;
	}
	r->n++;
	e->phase = r->phase;
	e->domain = err->domain;
	e->code = err->code;
	e->level = err->level;
	e->line = err->line;
	xmlNodePtr node = err->node;
	if (r->phase == RGX_PHASE_COMPILE) {
		e->file = dupstr(err->file);
		return;
	}
	if (node != NULL) {
		if (e->line <= 0) {
			xmlNodePtr ln = node->type == XML_ATTRIBUTE_NODE ? node->parent : node;
			if (ln != NULL)
				e->line = (int)xmlGetLineNo(ln);
		}
		e->path = node_path(node);
		node_values(node, e);
	}
}

// silent swallows libxml2's unstructured messages, so that nothing is ever
// printed to stderr.
static void silent(void *ctx, const char *msg, ...) {
	(void)ctx;
	(void)msg;
}

/* ---------- the external entity loader ---------- */

static xmlParserInputPtr loader(const char *URL, const char *ID, xmlParserCtxtPtr ctxt) {
	(void)ID;
	if (URL != NULL && strncmp(URL, RGX_PREFIX, strlen(RGX_PREFIX)) == 0) {
		xmlParserInputBufferPtr buf = lookup(URL);
		if (buf == NULL) {
			// libxml2 %-escapes URLs it builds; the table holds raw paths.
			char *raw = xmlURIUnescapeString(URL, 0, NULL);
			if (raw != NULL) {
				buf = lookup(raw);
				xmlFree(raw);
			}
		}
		if (buf != NULL) {
			xmlParserInputPtr in = xmlNewIOInputStream(ctxt, buf, XML_CHAR_ENCODING_NONE);
			if (in == NULL) {
				xmlFreeParserInputBuffer(buf);
				return NULL;
			}
			// The document's URL (and so the base of its own relative
			// includes) is taken from the input's filename.
			in->filename = (const char *)xmlStrdup((const xmlChar *)URL);
			return in;
		}
	}
	// Everything else is refused: no file, no network, no catalog.
	rgx_result *r = current;
	if (r != NULL) {
		r->refused++;
		r->errors++;
		if (r->n < RGX_MAX_ERRS) {
			rgx_err *e = &r->errs[r->n];
			memset(e, 0, sizeof(*e));
			const char *u = URL ? URL : "(null)";
			size_t sz = strlen(u) + 128;
			e->msg = malloc(sz);
			if (e->msg != NULL) {
				if (r->phase == RGX_PHASE_COMPILE)
					snprintf(e->msg, sz, "refused to load '%s': not a file of the schema's fs.FS", u);
				else
					snprintf(e->msg, sz, "refused to load an external entity or DTD: documents may not refer to external resources");
				e->phase = r->phase;
				e->domain = XML_FROM_IO;
				e->code = XML_IO_LOAD_ERROR;
				e->level = XML_ERR_ERROR;
				r->n++;
			} else {
				r->oom = 1;
			}
		}
	}
	return NULL;
}

void rgx_init(void) {
	xmlInitParser();
	xmlSetExternalEntityLoader(loader);
}

/* ---------- results ---------- */

rgx_result *rgx_result_new(void) {
	return calloc(1, sizeof(rgx_result));
}

void rgx_result_free(rgx_result *r) {
	if (r == NULL)
		return;
	for (int i = 0; i < r->n; i++) {
		free(r->errs[i].msg);
		free(r->errs[i].file);
		free(r->errs[i].path);
		free(r->errs[i].values);
	}
	free(r);
}

/* ---------- handler save/restore ---------- */

typedef struct {
	xmlStructuredErrorFunc serror;
	void *sctx;
	xmlGenericErrorFunc gerror;
	void *gctx;
} saved_handlers;

// install points this thread's libxml2 error handlers at r (both are
// thread-local in a threaded libxml2) and returns the previous ones.
static saved_handlers install(rgx_result *r) {
	saved_handlers s;
	s.serror = xmlStructuredError;
	s.sctx = xmlStructuredErrorContext;
	s.gerror = xmlGenericError;
	s.gctx = xmlGenericErrorContext;
	xmlSetGenericErrorFunc(NULL, silent);
	xmlSetStructuredErrorFunc(r, on_error);
	return s;
}

static void restore(saved_handlers s) {
	xmlSetStructuredErrorFunc(s.sctx, s.serror);
	xmlSetGenericErrorFunc(s.gctx, s.gerror);
}

/* ---------- compile and validate ---------- */

xmlSchemaPtr rgx_compile(const char *url, rgx_result *r) {
	saved_handlers s = install(r);
	current = r;
	r->phase = RGX_PHASE_COMPILE;
	r->keep_warnings = 1;
	xmlSchemaPtr schema = NULL;
	xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(url);
	if (pc == NULL) {
		r->oom = 1;
	} else {
		xmlSchemaSetParserStructuredErrors(pc, on_error, r);
		schema = xmlSchemaParse(pc);
		xmlSchemaFreeParserCtxt(pc);
	}
	current = NULL;
	restore(s);
	return schema;
}

void rgx_validate(xmlSchemaPtr schema, const char *buf, int len, rgx_result *r) {
	saved_handlers s = install(r);
	current = r;
	r->phase = RGX_PHASE_PARSE;
	xmlParserCtxtPtr pc = xmlNewParserCtxt();
	if (pc == NULL) {
		r->oom = 1;
		current = NULL;
		restore(s);
		return;
	}
	xmlDocPtr doc = NULL;
	if (buf != NULL && len > 0)
		doc = xmlCtxtReadMemory(pc, buf, len, NULL, NULL, RGX_PARSE_OPTIONS);
	if (doc == NULL || !pc->wellFormed || !pc->nsWellFormed || r->refused) {
		r->malformed = 1;
	} else {
		r->phase = RGX_PHASE_VALIDATE;
		xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
		if (vc == NULL) {
			r->oom = 1;
		} else {
			xmlSchemaSetValidStructuredErrors(vc, on_error, r);
			r->rc = xmlSchemaValidateDoc(vc, doc);
			xmlSchemaFreeValidCtxt(vc);
		}
	}
	if (doc != NULL)
		xmlFreeDoc(doc);
	xmlFreeParserCtxt(pc);
	current = NULL;
	restore(s);
}
