// C side of package xsd: the schema-file table, the external entity loader
// and the structured error collector. See binding.c.
#ifndef REHABGW_XSD_BINDING_H
#define REHABGW_XSD_BINDING_H

#include <stddef.h>
#include <libxml/xmlschemas.h>

// Private URL prefix under which the files of a Compile are registered.
// It must stay in sync with urlPrefix in xsd.go.
#define RGX_PREFIX "/__rehabgw_xsd__/"

// At most this many errors are kept per call (the rest are only counted).
#define RGX_MAX_ERRS 50

enum { RGX_PHASE_COMPILE = 1, RGX_PHASE_PARSE = 2, RGX_PHASE_VALIDATE = 3 };

typedef struct {
	int phase;    // RGX_PHASE_*
	int domain;   // xmlErrorDomain
	int code;     // xmlParserErrors
	int level;    // xmlErrorLevel
	int line;     // 1-based, 0 if unknown
	char *msg;    // malloc'd, never NULL for a stored entry
	char *file;   // malloc'd or NULL (compile phase only)
	char *path;   // malloc'd or NULL: element path of the node concerned
	char *values; // malloc'd or NULL: NUL-separated values of the node (its text
	              // if it has no child elements, its attributes), used only to
	              // redact them from msg
	int values_len;
} rgx_err;

typedef struct {
	int phase;         // current phase, copied into each entry
	int keep_warnings; // store warnings too (compile)
	int n;             // entries stored
	int errors;        // error-level reports seen (stored or not)
	int refused;       // loads refused by the entity loader
	int malformed;     // instance not (namespace-)well-formed
	int rc;            // xmlSchemaValidateDoc result
	int oom;           // an allocation failed
	rgx_err errs[RGX_MAX_ERRS];
} rgx_result;

void rgx_init(void);
int rgx_register(const char *url, const char *data, int len);
void rgx_unregister_prefix(const char *prefix);
int rgx_registered(void);

rgx_result *rgx_result_new(void);
void rgx_result_free(rgx_result *r);

xmlSchemaPtr rgx_compile(const char *url, rgx_result *r);
void rgx_validate(xmlSchemaPtr schema, const char *buf, int len, rgx_result *r);

#endif
