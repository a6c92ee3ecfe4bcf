// Package schemas holds the gateway's XML schemas, embedded into the binaries.
//
// The .xsd files in this directory are the normative contract for municipal
// and regional IT vendors: validate your output with
//
//	xmllint --noout --schema schemas/<type>-v1.xsd your-document.xml
//
// and you have the same verdict as the gateway's own XSD step (both use
// libxml2). The subdirectory medcom/ holds the official MedCom schemas used to
// check outgoing correspondence, with their licence notices.
package schemas

import "embed"

// FS holds every schema file, by its path relative to this directory.
//
//go:embed *.xsd
var FS embed.FS
