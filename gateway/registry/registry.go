// Package registry is the gateway's organisation registry: the 98 Danish
// municipalities (kommuner, which reach the gateway through their jobcentre),
// the five health regions with their two functions (sundhedskoordinator and
// klinisk funktion), and the operator of the service.
//
// The registry is data, not code: organisations.yaml in this directory is
// embedded into the binaries and returned by Default. A deployment may load
// its own file with Load; the rules are the same (strict keys, modulus-11
// CVR numbers, checked codes and references, unique IDs and CVR numbers).
//
// Organisation IDs are stable strings derived from public codes:
// "kommune-<kommunekode>" (three-digit DST code, e.g. kommune-101),
// "region-<regionskode>" (four-digit DAGI code, e.g. region-1084) and
// "gateway-operator". They are what the rest of the gateway stores and
// routes on; CVR numbers are what certificates carry (see package certs).
//
// A Registry is immutable after loading and safe for concurrent use. The
// lookup methods return copies, so a caller that modifies a result cannot
// change the registry.
package registry

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"

	"github.com/rehabgw/rehabgw/gateway/ident"
)

// Kind is the kind of an organisation.
type Kind string

// The kinds of organisation.
const (
	KindKommune  Kind = "kommune"
	KindRegion   Kind = "region"
	KindOperator Kind = "operator"
)

// The functions every region has, as keys of Organisation.Functions.
const (
	FunctionSundhedskoordinator = "sundhedskoordinator"
	FunctionKliniskFunktion     = "klinisk-funktion"
)

// OperatorID is the ID of the organisation that operates the gateway.
const OperatorID = "gateway-operator"

// KommuneID returns the organisation ID of a municipality from its
// three-digit kommunekode ("101" -> "kommune-101"). It does not check that
// the municipality exists; use ByMunicipalityCode for that.
func KommuneID(code string) string { return "kommune-" + code }

// RegionID returns the organisation ID of a region from its four-digit
// regionskode ("1084" -> "region-1084").
func RegionID(code string) string { return "region-" + code }

// Organisation is one organisation known to the gateway.
type Organisation struct {
	ID   string // "kommune-101", "region-1084" or "gateway-operator"
	Name string // official name, e.g. "Københavns Kommune"
	Kind Kind
	CVR  string // 8 digits, modulus 11; empty only if not established

	Code   string // kommunekode (3 digits) or regionskode (4 digits); empty for the operator
	Region string // for a kommune: its region's ID, e.g. "region-1084"; empty otherwise

	// Functions holds a region's functions, keyed by FunctionSundhedskoordinator
	// and FunctionKliniskFunktion; nil for other kinds.
	Functions map[string]Function
}

// Function is one function of a region.
type Function struct {
	Name string // display name, e.g. "Socialmedicinsk Center, Frederiksberg Hospital"
	SOR  string // SOR code (digits); empty until configured
	GLN  string // EAN/GLN lokationsnummer (13 digits, GS1 mod 10); empty until configured
}

func (o *Organisation) clone() *Organisation {
	c := *o
	if o.Functions != nil {
		c.Functions = make(map[string]Function, len(o.Functions))
		for k, v := range o.Functions {
			c.Functions[k] = v
		}
	}
	return &c
}

// Registry is a loaded, validated set of organisations. It is immutable and
// safe for concurrent use.
type Registry struct {
	byID  map[string]*Organisation
	byCVR map[string]*Organisation
	all   []*Organisation // sorted by ID
}

//go:embed organisations.yaml
var embedded []byte

var defaultRegistry = sync.OnceValue(func() *Registry {
	r, err := Load(bytes.NewReader(embedded))
	if err != nil {
		// The package tests load the embedded file, so this cannot ship.
		panic("registry: embedded organisations.yaml is invalid: " + err.Error())
	}
	return r
})

// Default returns the registry built from the embedded organisations.yaml.
// It is parsed once; every call returns the same *Registry.
func Default() *Registry { return defaultRegistry() }

// ByID returns the organisation with the given ID.
func (r *Registry) ByID(id string) (*Organisation, bool) {
	o, ok := r.byID[id]
	if !ok {
		return nil, false
	}
	return o.clone(), true
}

// ByCVR returns the organisation with the given CVR number. An empty CVR
// never matches.
func (r *Registry) ByCVR(cvr string) (*Organisation, bool) {
	if cvr == "" {
		return nil, false
	}
	o, ok := r.byCVR[cvr]
	if !ok {
		return nil, false
	}
	return o.clone(), true
}

// ByMunicipalityCode returns the municipality with the given kommunekode,
// in the three-digit DST form ("101") or the four-digit DAGI form ("0101").
func (r *Registry) ByMunicipalityCode(code string) (*Organisation, bool) {
	if len(code) == 4 && code[0] == '0' {
		code = code[1:]
	}
	if !isKommuneCode(code) {
		return nil, false
	}
	o, ok := r.byID[KommuneID(code)]
	if !ok || o.Kind != KindKommune {
		return nil, false
	}
	return o.clone(), true
}

// RegionOf returns the region an organisation belongs to: a municipality's
// region, or a region itself. The operator belongs to no region.
func (r *Registry) RegionOf(orgID string) (*Organisation, bool) {
	o, ok := r.byID[orgID]
	if !ok {
		return nil, false
	}
	switch o.Kind {
	case KindRegion:
		return o.clone(), true
	case KindKommune:
		return r.ByID(o.Region)
	}
	return nil, false
}

// All returns every organisation, sorted by ID.
func (r *Registry) All() []*Organisation {
	out := make([]*Organisation, len(r.all))
	for i, o := range r.all {
		out[i] = o.clone()
	}
	return out
}

// WithOperatorCVR returns a copy of the registry in which the operator
// organisation has the given CVR number, which a deployment takes from its
// configuration. The CVR must pass modulus 11 and not belong to another
// organisation.
func (r *Registry) WithOperatorCVR(cvr string) (*Registry, error) {
	if !ident.ValidCVR(cvr) {
		return nil, fmt.Errorf("registry: operator CVR %q is not a valid CVR number (8 digits, modulus 11)", cvr)
	}
	if o, ok := r.byCVR[cvr]; ok && o.ID != OperatorID {
		return nil, fmt.Errorf("registry: operator CVR %s already belongs to %s", cvr, o.ID)
	}
	orgs := make([]*Organisation, 0, len(r.all))
	for _, o := range r.all {
		c := o.clone()
		if c.ID == OperatorID {
			c.CVR = cvr
		}
		orgs = append(orgs, c)
	}
	return build(orgs)
}

// build indexes already validated organisations.
func build(orgs []*Organisation) (*Registry, error) {
	r := &Registry{
		byID:  make(map[string]*Organisation, len(orgs)),
		byCVR: make(map[string]*Organisation, len(orgs)),
	}
	for _, o := range orgs {
		if _, dup := r.byID[o.ID]; dup {
			return nil, fmt.Errorf("registry: duplicate organisation ID %s", o.ID)
		}
		r.byID[o.ID] = o
		if o.CVR != "" {
			if prev, dup := r.byCVR[o.CVR]; dup {
				return nil, fmt.Errorf("registry: CVR %s used by both %s and %s", o.CVR, prev.ID, o.ID)
			}
			r.byCVR[o.CVR] = o
		}
		r.all = append(r.all, o)
	}
	slices.SortFunc(r.all, func(a, b *Organisation) int { return strings.Compare(a.ID, b.ID) })
	return r, nil
}

// maxFileSize bounds what Load reads; the real file is about 15 KB.
const maxFileSize = 1 << 20

// The YAML file format. Field names are the keys; KnownFields(true) makes
// any other key an error.
type fileFormat struct {
	Regions  []fileRegion  `yaml:"regions"`
	Kommuner []fileKommune `yaml:"kommuner"`
	Operator *fileOperator `yaml:"operator"`
}

type fileRegion struct {
	Code      string        `yaml:"code"`
	Name      string        `yaml:"name"`
	CVR       string        `yaml:"cvr"`
	Functions fileFunctions `yaml:"functions"`
}

type fileFunctions struct {
	Sundhedskoordinator *fileFunction `yaml:"sundhedskoordinator"`
	KliniskFunktion     *fileFunction `yaml:"klinisk-funktion"`
}

type fileFunction struct {
	Name string `yaml:"name"`
	SOR  string `yaml:"sor"`
	GLN  string `yaml:"gln"`
}

type fileKommune struct {
	Code   string `yaml:"code"`
	Name   string `yaml:"name"`
	CVR    string `yaml:"cvr"`
	Region string `yaml:"region"`
}

type fileOperator struct {
	Name string `yaml:"name"`
	CVR  string `yaml:"cvr"`
}

// Load reads and validates a registry file in the format of the embedded
// organisations.yaml. Unknown keys, duplicate keys and type mismatches are
// errors naming the line; so are invalid CVR numbers (modulus 11), malformed
// kommune- or regionskoder, references to regions that do not exist,
// missing region functions, invalid GLN or SOR values, and duplicate
// organisation IDs or CVR numbers. All problems found are reported together.
func Load(rd io.Reader) (*Registry, error) {
	data, err := io.ReadAll(io.LimitReader(rd, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("registry: read: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("registry: file larger than %d bytes", maxFileSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("registry: empty file")
	}

	var f fileFormat
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err == nil {
			return nil, fmt.Errorf("registry: line %d: more than one YAML document", extra.Line)
		}
		return nil, fmt.Errorf("registry: %w", err)
	}

	// A second, untyped parse gives each list entry's line for messages.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	lines := func(key string) []int { return entryLines(&root, key) }
	regionLines, kommuneLines := lines("regions"), lines("kommuner")
	lineOf := func(ls []int, i int) int {
		if i < len(ls) {
			return ls[i]
		}
		return 0
	}

	var problems []error
	bad := func(line int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if line > 0 {
			msg = fmt.Sprintf("line %d: %s", line, msg)
		}
		problems = append(problems, errors.New("registry: "+msg))
	}
	checkName := func(line int, what, name string) {
		if strings.TrimSpace(name) == "" {
			bad(line, "%s: name is empty", what)
		} else if strings.TrimSpace(name) != name {
			bad(line, "%s: name %q has leading or trailing space", what, name)
		}
	}
	checkCVR := func(line int, what, cvr string) {
		if cvr != "" && !ident.ValidCVR(cvr) {
			bad(line, "%s: CVR %q is not a valid CVR number (8 digits, modulus 11)", what, cvr)
		}
	}

	var orgs []*Organisation
	regions := map[string]bool{}
	for i, fr := range f.Regions {
		line := lineOf(regionLines, i)
		what := fmt.Sprintf("region %q", fr.Code)
		if !isRegionCode(fr.Code) {
			bad(line, "%s: regionskode must be 4 digits", what)
		}
		checkName(line, what, fr.Name)
		checkCVR(line, what, fr.CVR)
		fns := map[string]Function{}
		for _, fn := range []struct {
			key string
			f   *fileFunction
		}{
			{FunctionSundhedskoordinator, fr.Functions.Sundhedskoordinator},
			{FunctionKliniskFunktion, fr.Functions.KliniskFunktion},
		} {
			fwhat := what + " function " + fn.key
			if fn.f == nil {
				bad(line, "%s: missing", fwhat)
				continue
			}
			checkName(line, fwhat, fn.f.Name)
			if fn.f.SOR != "" && !isDigits(fn.f.SOR) {
				bad(line, "%s: SOR code %q must be digits", fwhat, fn.f.SOR)
			}
			if fn.f.GLN != "" && !ident.ValidGLN(fn.f.GLN) {
				bad(line, "%s: GLN %q is not valid (13 digits, GS1 mod 10)", fwhat, fn.f.GLN)
			}
			fns[fn.key] = Function{Name: fn.f.Name, SOR: fn.f.SOR, GLN: fn.f.GLN}
		}
		regions[RegionID(fr.Code)] = true
		orgs = append(orgs, &Organisation{
			ID: RegionID(fr.Code), Name: fr.Name, Kind: KindRegion, CVR: fr.CVR,
			Code: fr.Code, Functions: fns,
		})
	}
	for i, fk := range f.Kommuner {
		line := lineOf(kommuneLines, i)
		what := fmt.Sprintf("kommune %q", fk.Code)
		if !isKommuneCode(fk.Code) {
			bad(line, "%s: kommunekode must be 3 digits, not starting with 0", what)
		}
		checkName(line, what, fk.Name)
		checkCVR(line, what, fk.CVR)
		if !regions[fk.Region] {
			bad(line, "%s: region %q is not a region in this file (want e.g. region-1084)", what, fk.Region)
		}
		orgs = append(orgs, &Organisation{
			ID: KommuneID(fk.Code), Name: fk.Name, Kind: KindKommune, CVR: fk.CVR,
			Code: fk.Code, Region: fk.Region,
		})
	}
	if f.Operator == nil {
		bad(0, "operator: missing")
	} else {
		line := entryLine(&root, "operator")
		checkName(line, "operator", f.Operator.Name)
		checkCVR(line, "operator", f.Operator.CVR)
		orgs = append(orgs, &Organisation{
			ID: OperatorID, Name: f.Operator.Name, Kind: KindOperator, CVR: f.Operator.CVR,
		})
	}

	// Duplicates, reported with the lines of both entries where known.
	seenID := map[string]int{}
	seenCVR := map[string]string{}
	for i, o := range orgs {
		line := 0
		switch {
		case i < len(f.Regions):
			line = lineOf(regionLines, i)
		case i < len(f.Regions)+len(f.Kommuner):
			line = lineOf(kommuneLines, i-len(f.Regions))
		}
		if prev, dup := seenID[o.ID]; dup {
			if prev > 0 {
				bad(line, "duplicate organisation ID %s (first at line %d)", o.ID, prev)
			} else {
				bad(line, "duplicate organisation ID %s", o.ID)
			}
		} else {
			seenID[o.ID] = line
		}
		if o.CVR != "" {
			if prev, dup := seenCVR[o.CVR]; dup {
				bad(line, "CVR %s used by both %s and %s", o.CVR, prev, o.ID)
			} else {
				seenCVR[o.CVR] = o.ID
			}
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	return build(orgs)
}

// entryLines returns the line of each item of the top-level sequence key.
func entryLines(root *yaml.Node, key string) []int {
	v := topValue(root, key)
	if v == nil || v.Kind != yaml.SequenceNode {
		return nil
	}
	ls := make([]int, len(v.Content))
	for i, n := range v.Content {
		ls[i] = n.Line
	}
	return ls
}

// entryLine returns the line of the top-level key's value.
func entryLine(root *yaml.Node, key string) int {
	if v := topValue(root, key); v != nil {
		return v.Line
	}
	return 0
}

func topValue(root *yaml.Node, key string) *yaml.Node {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return nil
	}
	m := root.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isKommuneCode: three digits, the DST form; a leading 0 would be ambiguous
// with the DAGI four-digit form.
func isKommuneCode(s string) bool { return len(s) == 3 && isDigits(s) && s[0] != '0' }

// isRegionCode: four digits, the DAGI form (1081-1085 today).
func isRegionCode(s string) bool { return len(s) == 4 && isDigits(s) && s[0] != '0' }
