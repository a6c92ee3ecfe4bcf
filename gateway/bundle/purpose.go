package bundle

import "slices"

// Purpose says what a bundle is for; it decides the parts it must hold, who
// may send it and where it is routed. The identifiers are part of the CLI and
// wire contract.
type Purpose string

// The purposes.
const (
	Forberedelse Purpose = "forberedelse"                  // kommune → region's sundhedskoordinator, before the meeting
	Indstilling  Purpose = "indstilling"                   // rehabilitation team's recommendation
	Henvisning   Purpose = "henvisning"                    // kommune → region's klinisk funktion
	SKUdtalelse  Purpose = "sundhedskoordinator-udtalelse" // sundhedskoordinator → kommune (reply)
	KlinikAttest Purpose = "klinisk-funktion-attest"       // klinisk funktion → kommune (reply, speciallægeattest)
)

// Kind is the kind of a part.
type Kind string

// The part kinds. The structured kinds are XML validated against
// schemas/<kind>-v1.xsd; laegeattest and bilag are opaque attachments.
const (
	KindForberedendeDel Kind = "forberedende-del"
	KindResume          Kind = "resume"
	KindIndstilling     Kind = "indstilling"
	KindHenvisning      Kind = "henvisning"
	KindSKUdtalelse     Kind = "sundhedskoordinator-udtalelse"
	KindSpeciallaege    Kind = "speciallaegeattest"
	KindLaegeattest     Kind = "laegeattest" // e.g. the GP's LÆ 265, as PDF
	KindBilag           Kind = "bilag"       // any other attachment
)

// Structured reports whether parts of this kind are XML documents with a schema.
func (k Kind) Structured() bool {
	switch k {
	case KindForberedendeDel, KindResume, KindIndstilling, KindHenvisning, KindSKUdtalelse, KindSpeciallaege:
		return true
	}
	return false
}

// Namespace is the XML namespace of a structured kind's documents.
func (k Kind) Namespace() string { return "urn:rehabgw:" + string(k) + ":v1" }

// SchemaFile is the schema of a structured kind, relative to schemas/.
func (k Kind) SchemaFile() string { return string(k) + "-v1.xsd" }

// SenderKind is the kind of organisation that may send a purpose.
type SenderKind string

// Sender kinds (the registry's organisation kinds).
const (
	SentByKommune SenderKind = "kommune"
	SentByRegion  SenderKind = "region"
)

// Spec is the rule set of one purpose.
type Spec struct {
	Purpose  Purpose
	Required []Kind // each exactly once
	Optional []Kind // each zero or more times
	// AttachmentMedia are the media types allowed for the unstructured
	// kinds; structured kinds are always application/xml.
	NeedsMeeting   bool       // MeetingDate required
	NeedsInReplyTo bool       // InReplyTo required (a reply)
	NeedsGP        bool       // GeneralPractitioner required (a copy goes to the GP)
	Sender         SenderKind // who may send it
	RepliesTo      Purpose    // for replies: the purpose of the bundle answered
	Title          string     // human description (Danish)
}

var specs = []Spec{
	{
		Purpose: Forberedelse, Required: []Kind{KindForberedendeDel, KindResume}, Optional: []Kind{KindLaegeattest, KindBilag},
		NeedsMeeting: true, Sender: SentByKommune,
		Title: "Forberedende del og resumé til sundhedskoordinatoren før rehabiliteringsteammødet",
	},
	{
		Purpose: Indstilling, Required: []Kind{KindIndstilling}, Optional: []Kind{KindBilag},
		NeedsMeeting: true, NeedsGP: true, Sender: SentByKommune,
		Title: "Rehabiliteringsteamets indstilling",
	},
	{
		Purpose: Henvisning, Required: []Kind{KindHenvisning}, Optional: []Kind{KindLaegeattest, KindBilag},
		Sender: SentByKommune,
		Title:  "Henvisning til klinisk funktion",
	},
	{
		Purpose: SKUdtalelse, Required: []Kind{KindSKUdtalelse}, Optional: []Kind{KindBilag},
		NeedsInReplyTo: true, Sender: SentByRegion, RepliesTo: Forberedelse,
		Title: "Sundhedskoordinatorens udtalelse",
	},
	{
		Purpose: KlinikAttest, Required: []Kind{KindSpeciallaege}, Optional: []Kind{KindBilag},
		NeedsInReplyTo: true, NeedsGP: true, Sender: SentByRegion, RepliesTo: Henvisning,
		Title: "Klinisk funktions speciallægeattest",
	},
}

// AttachmentMediaTypes are the media types allowed for laegeattest and bilag.
var AttachmentMediaTypes = []string{"application/pdf", "text/plain", "image/jpeg", "image/png"}

// Purposes lists every purpose, in the order of the process.
func Purposes() []Purpose {
	out := make([]Purpose, len(specs))
	for i, s := range specs {
		out[i] = s.Purpose
	}
	return out
}

// SpecOf returns the rule set of a purpose.
func SpecOf(p Purpose) (Spec, bool) {
	for _, s := range specs {
		if s.Purpose == p {
			return s, true
		}
	}
	return Spec{}, false
}

// Allows reports whether the purpose allows parts of kind k.
func (s Spec) Allows(k Kind) bool {
	return slices.Contains(s.Required, k) || slices.Contains(s.Optional, k)
}

// StructuredKinds lists every kind with a schema.
func StructuredKinds() []Kind {
	return []Kind{KindForberedendeDel, KindResume, KindIndstilling, KindHenvisning, KindSKUdtalelse, KindSpeciallaege}
}
