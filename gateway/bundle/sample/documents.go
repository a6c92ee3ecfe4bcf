package sample

import (
	"fmt"
	"time"
)

// Namespaces of the document schemas (schemas/<kind>-v1.xsd).
const (
	nsForberedendeDel = "urn:rehabgw:forberedende-del:v1"
	nsResume          = "urn:rehabgw:resume:v1"
	nsIndstilling     = "urn:rehabgw:indstilling:v1"
	nsHenvisning      = "urn:rehabgw:henvisning:v1"
	nsSKUdtalelse     = "urn:rehabgw:sundhedskoordinator-udtalelse:v1"
	nsSpeciallaege    = "urn:rehabgw:speciallaegeattest:v1"
)

// Sizes of the repeated entries of Large documents, each comfortably above
// 5,000 elements in total.
const (
	largeWeeks     = 1000 // weekly forsørgelse periods, 6 elements each
	largeRefs      = 1300 // material references, 4 elements each
	largeIndsatser = 1050 // follow-up indsatser, 5 elements each
)

// header writes the common DocumentHeader of every document.
func (c *caseData) header(d *document, author person) {
	r := d.root
	r.el("Sag").text("Sagsnummer", c.p.CaseID).text("Myndighed", c.p.Municipality)
	r.el("Borger").text("CPR", c.p.CPR).text("Name", c.p.Name)
	r.text("Udarbejdet", dateTime(c.created))
	contact(r.el("Afsender"), author).opt("Organisation", author.Organisation)
}

// contact fills a ContactPerson (Name, Role, Email) and returns it.
func contact(n node, p person) node {
	return n.text("Name", p.Name).opt("Role", p.Role).opt("Email", p.Email)
}

// attachment fills an AttachmentReference.
func attachment(n node, title string, date time.Time, source, part string) {
	n.text("Titel", title)
	if !date.IsZero() {
		n.date("Dato", date)
	}
	n.opt("Kilde", source).opt("Del", part)
}

func periode(n node, from, to time.Time) {
	p := n.el("Periode").date("Fra", from)
	if !to.IsZero() {
		p.date("Til", to)
	}
}

// scanningRef references the large attachment.
func (c *caseData) scanningRef(n node) {
	attachment(n, "Scanning af journalmateriale fra egen læge og rygambulatoriet", c.attestDate, c.p.GP.Name, IDScanning)
}

var journalTopics = [...]struct{ title, source string }{
	{"Journalnotat, opfølgningssamtale i jobafklaringsforløb", "jobcenter"},
	{"Konsultationsnotat, egen læge", "laege"},
	{"Notat, fysioterapeutisk træning", "fysioterapi"},
	{"Samtalenotat, psykolog", "psykolog"},
	{"Praktiknotat, virksomhedspraktik", "jobcenter"},
	{"Ambulant notat, rygambulatoriet", "ryg"},
}

// journalRefs adds count references to journal notes, oldest first, one
// every other day back from the creation date.
func (c *caseData) journalRefs(parent node, tag string, count int) {
	cy, cm, cd := c.created.Date()
	last := time.Date(cy, cm, cd, 0, 0, 0, 0, time.UTC)
	for i := range count {
		t := journalTopics[i%len(journalTopics)]
		var src string
		switch t.source {
		case "jobcenter":
			src = c.jobcenter
		case "laege":
			src = c.p.GP.Name
		case "fysioterapi":
			src = "Fysioterapi, " + c.p.Municipality
		case "psykolog":
			src = "Privatpraktiserende psykolog"
		case "ryg":
			src = "Rygambulatoriet, " + c.p.Region
		}
		attachment(parent.el(tag), fmt.Sprintf("%s (nr. %d)", t.title, i+1), last.AddDate(0, 0, -2*(count-1-i)), src, "")
	}
}

// ydelseOn is the citizen's source of income on a day.
func (c *caseData) ydelseOn(d time.Time) string {
	switch {
	case d.Before(c.sick):
		return "loen"
	case d.Before(c.jobafkl):
		return "sygedagpenge"
	default:
		return "ressourceforloebsydelse-jobafklaring"
	}
}

// ---------------------------------------------------------------------------
// Forberedende del

func (c *caseData) forberedendeDel() *document {
	d := newDocument("ForberedendeDel", nsForberedendeDel)
	c.header(d, c.caseworker)
	r := d.root
	r.text("Skabelon", "STAR-2018")

	r.el("MaalOgOensker").
		text("UddannelsesOgBeskaeftigelsesmaal", c.t("{navn} ønsker at vende tilbage til arbejdsmarkedet, gerne i sundhedssektoren, men ikke i plejen, som {hun} ikke længere kan klare fysisk. {Hun} er interesseret i administrative opgaver, fx reception, booking og lægesekretærlignende opgaver, og vil gerne tage kurser i IT og kontorarbejde for at blive klædt på til det.")).
		text("BorgerensOensker", c.t("Et job på nedsat tid til at begynde med, tæt på bopælen, hvor {hun} kan veksle mellem at sidde, stå og gå og selv kan lægge pauser. {Hun} ønsker at optrappe i et tempo, hvor {hun} ikke risikerer et tilbagefald af depressionen."))

	er := r.el("ErfaringerOgRessourcer")
	er.text("Beskrivelse", c.t("{navn} har knap 20 års erfaring som social- og sundhedsassistent fra plejecenter og hjemmepleje. {Hun} er vant til dokumentation i elektronisk omsorgsjournal, medicinhåndtering og samarbejde med pårørende, læger og sygeplejersker. Tidligere ledere beskriver {hende} som stabil, omhyggelig og ansvarsbevidst, med en god og rolig kontakt til borgere og pårørende."))
	cv := er.el("CV")
	for _, u := range []struct {
		from, to     time.Time
		name, school string
		done         bool
	}{
		{c.ymd(-29, time.August, 11), c.ymd(-28, time.June, 24), "Folkeskolens 10. klasse", "Efterskole", true},
		{c.ymd(-24, time.August, 4), c.ymd(-23, time.August, 29), "Social- og sundhedshjælperuddannelsen", "Social- og sundhedsskolen", true},
		{c.ymd(-23, time.September, 1), c.ymd(-21, time.January, 31), "Social- og sundhedsassistentuddannelsen", "Social- og sundhedsskolen", true},
		{c.ymd(-12, time.March, 2), c.ymd(-12, time.March, 13), "AMU: Forflytningsvejleder", "AMU-center", true},
		{c.ymd(-7, time.August, 15), c.ymd(-6, time.January, 20), "HF-enkeltfag, dansk C (afbrudt)", "VUC", false},
	} {
		n := cv.el("Uddannelse")
		periode(n, u.from, u.to)
		n.text("Betegnelse", u.name).text("Institution", u.school).text("Gennemfoert", fmt.Sprint(u.done))
	}
	for _, b := range []struct {
		from, to             time.Time
		job, employer, hours string
		end                  string
	}{
		{c.ymd(-28, time.August, 1), c.ymd(-24, time.July, 31), "Butiksassistent (deltid)", "Dagligvarebutik", "25", "Påbegyndte social- og sundhedsuddannelsen"},
		{c.ymd(-21, time.February, 1), c.ymd(-10, time.April, 30), "Social- og sundhedsassistent", "Plejecenter Lindehaven, " + c.p.Municipality, "32", "Skiftede til hjemmeplejen for mere varierede opgaver"},
		{c.ymd(-10, time.May, 1), c.dismissed, "Social- og sundhedsassistent", "Hjemmeplejen, " + c.p.Municipality, "30", "Afskediget efter langvarigt sygefravær"},
	} {
		n := cv.el("Beskaeftigelse")
		periode(n, b.from, b.to)
		n.text("Stilling", b.job).text("Arbejdsgiver", b.employer).text("TimerPrUge", b.hours).text("Ophoersaarsag", b.end)
	}
	cv.text("Kompetencer", "Kørekort (B). Forflytningsvejleder (AMU). Dokumentation i elektronisk omsorgsjournal. Grundlæggende IT: mail, tekstbehandling og kalender. Dansk som modersmål, engelsk på hverdagsniveau.")

	r.el("PersonligeRessourcer").
		text("Beskrivelse", c.t("{navn} bor med sin ægtefælle og deres to børn på 12 og 16 år i en lejlighed i {kommune}. {Hun} er struktureret, holder aftaler og er god til at bede om hjælp, når {hun} har brug for det. {Hun} går ture med familiens hund dagligt og strikker, når smerterne tillader det.")).
		text("Netvaerk", c.t("Tæt kontakt til sin søster, som deltager som bisidder ved mødet. Ægtefællen arbejder på skiftehold og støtter op om forløbet. {navn} har tidligere haft et stort netværk blandt kolleger, men har trukket sig socialt det seneste år."))

	r.el("Udfordringer").
		text("Beskaeftigelsesmaessige", c.t("{navn} har ikke været i arbejde siden {sygemeldt} og blev afskediget i {afsked}. {Hun} kan ikke vende tilbage til plejearbejde på grund af de fysiske krav. {Hun} mangler formelle kompetencer inden for administrativt arbejde, og udtrætning har indtil nu forhindret en stabil optrapning af timetallet i praktik.")).
		text("Sociale", c.t("Familiens økonomi er presset efter overgangen fra løn til ydelse. Søvnproblemer og smerter påvirker familielivet, og {navn} har mindre overskud til børnene end tidligere. {Hun} har trukket sig fra de fleste sociale aktiviteter."))

	h := r.el("Helbred")
	h.text("Situation", c.t("{navn} har haft lænderygsmerter siden {Y-5}, forværret i efteråret {Y-3}. En MR-scanning i {Y-2} viste en diskusprolaps L5/S1 uden påvirkning af nerverødder, og rygambulatoriet vurderede, at den ikke skal opereres. I foråret {Y-2} diagnosticerede egen læge en moderat depression, som behandles med antidepressiv medicin; {hun} har gennemført et psykologforløb med nogen bedring. {Hun} beskriver søvnproblemer, nedsat koncentration og hukommelse og at {hun} bliver hurtigt udtrættet. Smerterne forværres ved længerevarende stående og gående arbejde, ved løft og i foroverbøjede stillinger."))
	for _, u := range []struct {
		what, where string
		from, to    time.Time
		status      string
	}{
		{"MR-scanning af lænderyggen og rygkirurgisk vurdering.", "Rygambulatoriet, " + c.p.Region, c.ymd(-2, time.October, 3), c.ymd(-2, time.October, 3), "afsluttet"},
		{"Antidepressiv behandling (sertralin) med opfølgning hos egen læge hver 6.-8. uge.", c.p.GP.Name, c.ymd(-2, time.April, 15), time.Time{}, "igangvaerende"},
		{"Psykologforløb, 12 samtaler efter henvisning fra egen læge.", "Privatpraktiserende psykolog", c.ymd(-2, time.May, 6), c.ymd(-1, time.January, 20), "afsluttet"},
		{"Fysioterapeutisk træning med fokus på ryg, kropsbevidsthed og smertehåndtering, to gange om ugen.", "Fysioterapi, " + c.p.Municipality, c.ymd(-1, time.September, 1), time.Time{}, "igangvaerende"},
		{"Henvist til tværfagligt smertecenter; afventer forsamtale.", "Tværfagligt smertecenter, " + c.p.Region, c.ymd(-1, time.November, 18), time.Time{}, "afventer"},
	} {
		n := h.el("UndersoegelseEllerBehandling")
		n.text("Beskrivelse", u.what).text("Behandlingssted", u.where)
		periode(n, u.from, u.to)
		n.text("Status", u.status)
	}
	h.text("BorgerensPerspektiv", c.t("{navn} oplever, at smerterne og trætheden gør det umuligt at vende tilbage til plejearbejdet. {Hun} tror på, at {hun} kan arbejde nogle timer om ugen med lettere opgaver, hvis {hun} kan skifte stilling og holde pauser, men er bange for at gå ned igen, hvis {hun} bliver presset for hurtigt."))

	fh := r.el("Forsoergelseshistorik")
	if c.p.Large {
		// A week-by-week extract from the benefit systems.
		mon := c.meeting.AddDate(0, 0, -int((c.meeting.Weekday()+6)%7)) // Monday of the meeting week
		for k := largeWeeks; k >= 1; k-- {
			from := mon.AddDate(0, 0, -7*k)
			y, w := from.ISOWeek()
			n := fh.el("Forsoergelsesperiode")
			periode(n, from, from.AddDate(0, 0, 6))
			n.text("Ydelse", c.ydelseOn(from)).text("Bemaerkning", fmt.Sprintf("Uge %d/%d, udtræk fra ydelsessystemet", w, y))
		}
	} else {
		for _, f := range []struct {
			from, to time.Time
			ydelse   string
			note     string
		}{
			{c.ymd(-28, time.August, 1), c.ymd(-24, time.July, 31), "loen", "Deltidsansættelse i detailhandlen"},
			{c.ymd(-24, time.August, 4), c.ymd(-21, time.January, 31), "loen", "Elevløn under social- og sundhedsuddannelsen"},
			{c.ymd(-21, time.February, 1), c.sick.AddDate(0, 0, -1), "loen", c.t("Herunder seks ugers sygefravær med løn i {Y-5}")},
			{c.sick, c.jobafkl.AddDate(0, 0, -1), "sygedagpenge", "Sygedagpenge i 22 uger"},
			{c.jobafkl, time.Time{}, "ressourceforloebsydelse-jobafklaring", "Jobafklaringsforløb, fortsat"},
		} {
			n := fh.el("Forsoergelsesperiode")
			periode(n, f.from, f.to)
			n.text("Ydelse", f.ydelse).text("Bemaerkning", f.note)
		}
	}
	fh.text("Bemaerkning", c.t("{navn} har været selvforsørgende i hele sit voksenliv indtil sygemeldingen i {sygemeldt}."))

	ti := r.el("TidligereIndsatser")
	for _, x := range []struct {
		from, to       time.Time
		kind, spor     string
		desc, learning string
	}{
		{c.ymd(-2, time.September, 2), c.ymd(-2, time.November, 25), "Holdtræning for borgere med langvarige smerter", "helbred",
			"Træning på hold to gange om ugen i 12 uger med undervisning i smertehåndtering og pacing.",
			c.t("{navn} lærte øvelser og strategier til at fordele kræfterne over dagen, som {hun} stadig bruger. Smerterne er uændrede, men {hun} er bedre til at håndtere dem.")},
		{c.ymd(-1, time.February, 3), c.ymd(-1, time.April, 25), "Virksomhedspraktik", "beskaeftigelse",
			"Virksomhedspraktik i receptionen på et plejecenter, to gange tre timer om ugen, med telefon, post og booking.",
			c.t("Fremmødet var stabilt de første seks uger, derefter flere afbud på grund af smerter og træthed. Opgaverne lykkedes godt, og arbejdspladsen fremhæver {hendes} omhu og gode kontakt med beboere og pårørende. Praktikken kunne ikke optrappes.")},
		{c.jobafkl, time.Time{}, "Opfølgningssamtaler med jobkonsulent", "beskaeftigelse",
			"Samtaler hver 14. dag om mål, praktik og helbred i jobafklaringsforløbet.",
			c.t("{navn} oplever samtalerne som støttende. De har hjulpet {hende} med at formulere et realistisk jobmål uden for plejen.")},
	} {
		n := ti.el("TidligereIndsats")
		periode(n, x.from, x.to)
		n.text("Type", x.kind).text("Spor", x.spor).text("Beskrivelse", x.desc).text("Erfaring", x.learning)
	}
	ti.text("Sammenfatning", c.t("Jobafklaringsforløbet har vist, at {navn} kan udføre lettere administrative opgaver nogle få timer om ugen, men at smerter og depression indtil nu har forhindret en stabil optrapning."))

	lv := r.el("LaegensVurdering")
	lv.text("Attesttype", "LAE265").date("Attestdato", c.attestDate).text("Laege", c.p.GP.Name).
		text("Sammenfatning", c.t("Egen læge beskriver kroniske lænderygsmerter og en moderat depression i langsom bedring. Skånehensyn: ingen tunge løft, vekslende arbejdsstillinger og gradvis optrapning fra få timer om ugen. Lægen vurderer, at depressionen aktuelt er den væsentligste begrænsning, og at prognosen for en delvis arbejdsevne er god ved fortsat behandling."))
	attachment(lv.el("Attest"), "Lægeattest LÆ 265", c.attestDate, c.p.GP.Name, IDLaegeattest)

	t18 := r.el("Tilfoejelser2018")
	t18.text("Virksomhedsindsats", c.t("Jobcentrets virksomhedskonsulent har afdækket muligheder for praktik med administrative opgaver i sundhedssektoren tæt på {navn}s bopæl, fx i receptionen på et sundhedshus eller en lægeklinik."))
	t18.text("Borgerinddragelse", c.t("Den forberedende del er skrevet sammen med {navn} over to samtaler. {Hun} har læst og godkendt teksten og har selv formuleret afsnittet om mål og ønsker."))
	pf := t18.el("Progressionsfaktorer")
	for _, f := range [][2]string{
		{"Mødestabilitet", "Stabilt fremmøde i korte perioder; afbud hænger sammen med smerter og dårlig søvn."},
		{"Mestring af smerter", c.t("{navn} bruger øvelser og pauser aktivt og kender sine grænser bedre end for et år siden.")},
		{"Tro på egne evner", c.t("Svingende; {hun} er motiveret, men bange for at få et tilbagefald, hvis {hun} presses.")},
	} {
		pf.el("Faktor").text("Betegnelse", f[0]).text("Vurdering", f[1])
	}

	attachment(r.el("Bilag"), "Lægeattest LÆ 265", c.attestDate, c.p.GP.Name, IDLaegeattest)
	attachment(r.el("Bilag"), "Notat fra rygambulatoriet", c.ymd(-2, time.October, 3), "Rygambulatoriet, "+c.p.Region, "")
	if c.p.Large {
		c.scanningRef(r.el("Bilag"))
	}
	return d
}

// ---------------------------------------------------------------------------
// Resumé

func (c *caseData) resume() *document {
	d := newDocument("Resume", nsResume)
	c.header(d, c.caseworker)
	r := d.root
	r.date("Moededato", c.meeting)
	r.text("Formaal", c.t("Rehabiliteringsteamet bedes tage stilling til, om {navn} skal tilbydes et ressourceforløb, og hvilke indsatser der kan udvikle {hendes} arbejdsevne."))
	r.text("Baggrund", c.t("{alder}-årig tidligere social- og sundhedsassistent med knap 20 års erfaring fra plejecenter og hjemmepleje. Sygemeldt siden {sygemeldt}, afskediget i {afsked} og i jobafklaringsforløb siden {jobafklaring}. En virksomhedspraktik med administrative opgaver i {Y-1} gik godt fagligt, men kunne ikke optrappes ud over seks timer om ugen. {navn} er motiveret for et job med lettere opgaver på nedsat tid."))
	r.text("HelbredKort", c.t("Kroniske lænderygsmerter (diskusprolaps L5/S1, ikke operationskrævende) og moderat depression i medicinsk behandling, efter psykologforløb i delvis bedring. LÆ 265 fra {laege} af {attestdato} vurderer depressionen som den væsentligste begrænsning, mens rygambulatoriets notat fra oktober {Y-2} lægger vægt på smerterne. Henvisning til tværfagligt smertecenter afventer."))
	for i, q := range []string{
		"Er den foreliggende helbredsdokumentation tilstrækkelig til, at teamet kan tage stilling til et ressourceforløb?",
		"Hvilke skånehensyn bør indgå ved en virksomhedspraktik med administrative opgaver?",
		"Bør der indhentes yderligere helbredsoplysninger, eventuelt en vurdering i klinisk funktion, og kan det ske sideløbende med et forløb?",
	} {
		r.el("Spoergsmaal").attr("nr", fmt.Sprint(i+1)).e.SetText(q)
	}
	attachment(r.el("Bilag"), "Lægeattest LÆ 265", c.attestDate, c.p.GP.Name, IDLaegeattest)
	attachment(r.el("Bilag"), "Notat fra rygambulatoriet", c.ymd(-2, time.October, 3), "Rygambulatoriet, "+c.p.Region, "")
	attachment(r.el("Bilag"), "Afslutningsnotat fra psykolog", c.ymd(-1, time.January, 20), "Privatpraktiserende psykolog", "")
	attachment(r.el("Bilag"), "Evaluering af virksomhedspraktik", c.ymd(-1, time.April, 30), c.jobcenter, "")
	if c.p.Large {
		c.scanningRef(r.el("Bilag"))
		c.journalRefs(r, "Bilag", largeRefs)
	}
	return d
}

// ---------------------------------------------------------------------------
// Sundhedskoordinatorens udtalelse

func (c *caseData) skUdtalelse() *document {
	d := newDocument("SundhedskoordinatorUdtalelse", nsSKUdtalelse)
	c.header(d, c.sk)
	r := d.root
	r.date("Moededato", c.meeting)
	gm := r.el("GennemgaaetMateriale")
	attachment(gm.el("Materiale"), "Rehabiliteringsplanens forberedende del", time.Time{}, c.jobcenter, "")
	attachment(gm.el("Materiale"), "Resumé", time.Time{}, c.jobcenter, "")
	attachment(gm.el("Materiale"), "Lægeattest LÆ 265", c.attestDate, c.p.GP.Name, "")
	attachment(gm.el("Materiale"), "Notat fra rygambulatoriet", c.ymd(-2, time.October, 3), "Rygambulatoriet, "+c.p.Region, "")
	attachment(gm.el("Materiale"), "Afslutningsnotat fra psykolog", c.ymd(-1, time.January, 20), "Privatpraktiserende psykolog", "")
	if c.p.Large {
		c.scanningRef(gm.el("Materiale"))
		c.journalRefs(gm, "Materiale", largeRefs)
	}
	r.el("Funktionsevne").
		text("Biologisk", "Kroniske lænderygsmerter efter diskusprolaps L5/S1 uden neurologiske udfald. Smerterne begrænser tunge løft, vrid og længerevarende stående eller foroverbøjet arbejde. Siddende arbejde er muligt i perioder på 30-45 minutter, når der er mulighed for stillingsskift.").
		text("Psykologisk", c.t("Moderat depression siden foråret {Y-2}, i medicinsk behandling og efter psykologforløb i delvis bedring. Fortsat nedsat energi, koncentration og søvnkvalitet; {navn} bliver udtrættet efter to til tre timers aktivitet.")).
		text("Social", c.t("Stabilt familienetværk og god støtte fra søster og ægtefælle. Økonomisk pres og social tilbagetrækning. {navn} er motiveret for at komme i arbejde, men frygter tilbagefald.")).
		text("Samlet", "Arbejdsevnen er aktuelt nedsat til få timer om ugen i skånsomme funktioner. Der er udviklingsmuligheder ved en koordineret, tværfaglig indsats over længere tid.")
	r.text("DokumentationensRelevans", "LÆ 265 er aktuel og relevant og beskriver begge lidelser. Der er dog uoverensstemmelse mellem egen læges og rygambulatoriets vurdering af, hvilken lidelse der primært begrænser funktionsevnen, og der foreligger ingen aktuel speciallægevurdering af depressionen.")
	r.el("ManglendeDokumentation").
		text("Beskrivelse", "Status fra tværfagligt smertecenter, når forsamtalen har fundet sted.").
		text("Kilde", "hospital").text("Attest", "Statusnotat fra smertecenter")
	r.el("ManglendeDokumentation").
		text("Beskrivelse", "Samlet speciallægevurdering af samspillet mellem smerter og depression og af betydningen for arbejdsevnen.").
		text("Kilde", "klinisk-funktion").text("Attest", "Speciallægeattest fra klinisk funktion")
	r.el("KliniskFunktion").
		text("AnbefalerHenvisning", "true").
		text("Begrundelse", c.t("Helbredsoplysningerne er modstridende: egen læge vurderer depressionen som den væsentligste begrænsning, rygambulatoriet smerterne. Sundhedskoordinator anbefaler henvisning til klinisk funktion med henblik på en samlet socialmedicinsk vurdering. Afklaringen bør ikke udskyde et ressourceforløb, men kan indgå i det som en helbredsindsats."))
	r.text("Prognose", c.t("Prognosen for at opnå en delvis arbejdsevne vurderes som god til moderat. Med fortsat behandling af depressionen, smertehåndtering og gradvis optrapning er det sandsynligt, at {navn} inden for et til to år kan arbejde 10-15 timer om ugen i skånsomme funktioner."))
	r.text("Skaanehensyn", "Ingen løft over 5-10 kg, undgå vrid og foroverbøjede arbejdsstillinger, mulighed for stillingsskift og pauser, forudsigelige opgaver uden tidspres og gradvis optrapning fra cirka seks timer om ugen.")
	contact(r.el("Sundhedskoordinator"), c.sk).text("Faggruppe", "laege").text("Organisation", c.sk.Organisation)
	return d
}

// ---------------------------------------------------------------------------
// Indstilling

func (c *caseData) indstilling() *document {
	d := newDocument("Indstilling", nsIndstilling)
	c.header(d, c.caseworker)
	r := d.root
	m := r.el("Moede")
	m.date("Dato", c.meeting)
	for _, x := range [][3]string{
		{"beskaeftigelse", "Lars Møller", c.jobcenter},
		{"sundhed", "Susanne Dahl", "Sundhed og Omsorg, " + c.p.Municipality},
		{"social", "Ahmed Yilmaz", "Socialforvaltningen, " + c.p.Municipality},
		{"region-sundhedskoordinator", c.sk.Name, c.p.Region},
	} {
		m.el("Deltager").text("Rolle", x[0]).text("Navn", x[1]).text("Organisation", x[2])
	}
	m.text("BorgerDeltog", "true").text("Bisidder", "true")
	r.text("Indstillingstype", "ressourceforloeb")
	r.text("Begrundelse", c.t("Rehabiliteringsteamet vurderer, at {navn} har ressourcer og motivation for at udvikle sin arbejdsevne, men at smerter og depression kræver en længerevarende, helhedsorienteret og koordineret indsats, før {hun} kan komme i job. Jobafklaringsforløbet har vist, at {hun} kan løse administrative opgaver, men ikke optrappe uden samtidig behandling og støtte. Mulighederne for at udvikle arbejdsevnen er ikke udtømt, og et ressourceforløb på 24 måneder giver tid til behandling, afklaring i klinisk funktion og gradvis optrapning i praktik."))
	r.el("RessourceforloebDetaljer").text("VarighedMaaneder", "24")
	r.el("Maal").text("Type", "job").
		text("Beskrivelse", "Job på nedsat tid med administrative opgaver, fx reception, booking eller lægesekretærlignende opgaver i sundhedssektoren.").
		text("Delmaal", "Stabilt fremmøde i virksomhedspraktik seks timer om ugen inden for de første tre måneder").
		text("Delmaal", "Optrapning til 12 timer om ugen inden for 12 måneder").
		text("Delmaal", "Afklaret, hvilke skånehensyn et kommende job skal tage")
	r.el("Maal").text("Type", "uddannelse").
		text("Beskrivelse", "Kompetencer i kontorarbejde og IT på et niveau, der svarer til et job i en reception.").
		text("Delmaal", "Gennemført to AMU-kurser i kontorfunktioner og IT")
	ind := r.el("Indsatser")
	for _, x := range [][4]string{
		{"beskaeftigelse", "Virksomhedspraktik med administrative opgaver i et sundhedshus eller en lægeklinik, med start på seks timer om ugen fordelt på tre dage og optrapning efter aftale med " + c.first + ".", "Virksomhedskonsulent, " + c.jobcenter, "6-12 timer pr. uge"},
		{"beskaeftigelse", "AMU-kurser i grundlæggende IT og kontorfunktioner, tilrettelagt med pauser.", "Koordinerende sagsbehandler", "2 kurser à 5 dage"},
		{"social", "Støtte fra socialrådgiver til overblik over økonomien og til at planlægge hverdagen med energiforvaltning.", "Socialforvaltningen, " + c.p.Municipality, "1 samtale hver 14. dag i 6 måneder"},
		{"helbred", "Fortsat medicinsk behandling og opfølgning af depressionen hos egen læge.", c.p.GP.Name, "Hver 6.-8. uge"},
		{"helbred", "Fortsat fysioterapeutisk træning med fokus på ryg og smertehåndtering.", "Fysioterapi, " + c.p.Municipality, "2 gange pr. uge"},
		{"helbred", "Henvisning til klinisk funktion med henblik på en samlet speciallægevurdering af samspillet mellem smerter og depression.", "Koordinerende sagsbehandler", "Én vurdering"},
		{"helbred", "Forløb på tværfagligt smertecenter; henvisning foreligger.", "Tværfagligt smertecenter, " + c.p.Region, "Efter smertecentrets plan"},
	} {
		ind.el("Indsats").text("Spor", x[0]).text("Beskrivelse", c.t(x[1])).text("Ansvarlig", x[2]).text("Omfang", x[3])
	}
	if c.p.Large {
		spor := [...]string{"beskaeftigelse", "social", "helbred"}
		who := [...]string{"Koordinerende sagsbehandler", "Mentor", c.p.GP.Name}
		start := c.meeting.AddDate(0, 0, 14)
		for i := range largeIndsatser {
			wk := start.AddDate(0, 0, 7*(i/3))
			y, w := wk.ISOWeek()
			ind.el("Indsats").text("Spor", spor[i%3]).
				text("Beskrivelse", fmt.Sprintf("Planlagt opfølgning nr. %d i sporet %s, uge %d/%d: status på mål og delmål, justering af indsatsen og aftale om næste skridt med %s.", i+1, spor[i%3], w, y, c.first)).
				text("Ansvarlig", who[i%3]).text("Omfang", "1 samtale")
		}
	}
	r.el("Mentor").text("TimerPrUge", "3").
		text("Formaal", "Støtte i opstarten af virksomhedspraktikken, til struktur i hverdagen og til at fastholde fremmødet i perioder med mange smerter.")
	r.text("Skaanehensyn", "Ingen løft over 5-10 kg, undgå vrid og foroverbøjede arbejdsstillinger, mulighed for stillingsskift og pauser, forudsigelige opgaver uden tidspres.")
	r.text("BorgerensBemaerkninger", c.t("{navn} er enig i indstillingen og glad for, at der er tid til at opbygge arbejdsevnen gradvist. {Hun} ønsker, at praktikken ligger tæt på bopælen."))
	contact(r.el("KontaktPerson"), c.caseworker)
	return d
}

// ---------------------------------------------------------------------------
// Henvisning til klinisk funktion

// henvisningQuestions are the questions of the henvisning; the
// speciallægeattest answers them by number.
var henvisningQuestions = []string{
	"Hvilke helbredsmæssige forhold begrænser {navn}s arbejdsevne mest, og hvordan påvirker smerterne og depressionen hinanden?",
	"Hvilke skånehensyn bør indgå i en virksomhedspraktik og i et kommende job (fysiske belastninger, arbejdstid, pauser)?",
	"Er den aktuelle behandling tilstrækkelig, eller er der yderligere behandlingsmuligheder, der kan forbedre funktionsevnen?",
	"Hvad er prognosen for arbejdsevnen på et til to års sigt?",
}

func (c *caseData) henvisning() *document {
	d := newDocument("Henvisning", nsHenvisning)
	c.header(d, c.caseworker)
	r := d.root
	r.el("Modtager").text("Navn", c.kfUnit)
	r.text("Prioritet", "normal")
	r.text("AnbefaletAf", "sundhedskoordinator")
	r.el("Henvisningsaarsag").text("Kriterium", "modstridende-helbredsoplysninger").
		text("Uddybning", c.t("Egen læges attest (LÆ 265 af {attestdato}) vurderer depressionen som den væsentligste begrænsning, mens rygambulatoriet lægger vægt på lænderygsmerterne. Sundhedskoordinatoren har anbefalet en samlet vurdering i klinisk funktion, og rehabiliteringsteamet har den {moede} indstillet til et ressourceforløb, hvor vurderingen indgår som helbredsindsats."))
	r.text("Helbredsoplysninger", c.t("Lænderygsmerter siden {Y-5}; MR-scanning i {Y-2} med diskusprolaps L5/S1 uden nerverodspåvirkning, ikke operationskrævende. Moderat depression diagnosticeret i foråret {Y-2}, behandlet med sertralin og psykologforløb med delvis bedring. Fysioterapeutisk træning to gange om ugen. Henvist til tværfagligt smertecenter."))
	dg := r.el("Diagnoser")
	dg.el("Diagnose").text("Kode", "DM54.5").text("Tekst", "Lændesmerter")
	dg.el("Diagnose").text("Kode", "DF32.1").text("Tekst", "Depressiv enkeltepisode af moderat grad")
	for i, q := range henvisningQuestions {
		r.el("Spoergsmaal").attr("nr", fmt.Sprint(i+1)).e.SetText(c.t(q))
	}
	r.el("Samtykke").text("Givet", "true").date("Dato", c.meeting)
	attachment(r.el("Bilag"), "Lægeattest LÆ 265", c.attestDate, c.p.GP.Name, IDLaegeattest)
	attachment(r.el("Bilag"), "Rehabiliteringsteamets indstilling", c.meeting, c.jobcenter, "")
	attachment(r.el("Bilag"), "Sundhedskoordinatorens udtalelse", c.skDate, c.skUnit, "")
	attachment(r.el("Bilag"), "Notat fra rygambulatoriet", c.ymd(-2, time.October, 3), "Rygambulatoriet, "+c.p.Region, "")
	if c.p.Large {
		c.scanningRef(r.el("Bilag"))
		c.journalRefs(r, "Bilag", largeRefs)
	}
	contact(r.el("KontaktPerson"), c.caseworker)
	return d
}

// ---------------------------------------------------------------------------
// Speciallægeattest fra klinisk funktion

func (c *caseData) speciallaegeattest() *document {
	d := newDocument("Speciallaegeattest", nsSpeciallaege)
	c.header(d, c.kf)
	r := d.root
	r.date("Konsultationsdato", c.consultDate)
	r.text("Speciale", "Samfundsmedicin (socialmedicin)")
	gm := r.el("GennemgaaetMateriale")
	attachment(gm.el("Materiale"), "Henvisning til klinisk funktion", time.Time{}, c.jobcenter, "")
	attachment(gm.el("Materiale"), "Lægeattest LÆ 265", c.attestDate, c.p.GP.Name, "")
	attachment(gm.el("Materiale"), "Sundhedskoordinatorens udtalelse", c.skDate, c.skUnit, "")
	attachment(gm.el("Materiale"), "Journaloplysninger fra egen læge", time.Time{}, c.p.GP.Name, "")
	if c.p.Large {
		c.scanningRef(gm.el("Materiale"))
		c.journalRefs(gm, "Materiale", largeRefs)
	}
	r.text("Anamnese", c.t("{alder}-årig tidligere social- og sundhedsassistent, sygemeldt siden {sygemeldt}. Lænderygsmerter siden {Y-5} uden udstråling til benene; diskusprolaps L5/S1 påvist ved MR-scanning i {Y-2}, ikke operationskrævende. Depressive symptomer siden vinteren {Y-3} med tristhed, søvnforstyrrelser, nedsat energi og koncentration; i behandling med sertralin 100 mg dagligt siden foråret {Y-2} og efter 12 psykologsamtaler i delvis bedring. {navn} beskriver, at smerterne forværres, når {hun} er træt og nedtrykt, og at dårlig søvn på grund af smerter forværrer humøret."))
	r.text("ObjektiveFund", c.t("Velorienteret, samarbejdende, let nedtrykt stemningsleje, affektivt afdæmpet men modulerbar. Ingen psykotiske symptomer, ingen aktuelle selvmordstanker. Ryggen: let nedsat fleksion, ømhed paravertebralt lumbalt, ingen neurologiske udfald i underekstremiteterne, negativ Lasègues prøve. Major Depression Inventory (MDI) 24 point, svarende til let depression."))
	dg := r.el("Diagnoser")
	dg.el("Diagnose").text("Kode", "DF32.1").text("Tekst", "Depressiv enkeltepisode af moderat grad, i delvis remission")
	dg.el("Diagnose").text("Kode", "DM54.5").text("Tekst", "Lændesmerter")
	dg.el("Diagnose").text("Kode", "DR52.2").text("Tekst", "Anden kronisk smerte")
	r.text("Funktionsevnevurdering", c.t("Smerter og depression forstærker hinanden og skal behandles samtidig; ingen af dem kan alene forklare funktionsnedsættelsen. {navn} kan aktuelt udføre lette, overvejende siddende opgaver med mulighed for stillingsskift i tre til fire timer ad gangen, to til tre dage om ugen. Koncentration og tempo er nedsat ved travlhed og afbrydelser."))
	r.text("Prognose", c.t("Prognosen er god til moderat. Med fortsat antidepressiv behandling, smertehåndtering og gradvis optrapning forventes arbejdsevnen inden for et til to år at kunne udvikles til 12-15 timer om ugen i skånsomme funktioner. Prognosen for ordinær fuldtidsbeskæftigelse vurderes som dårlig."))
	r.text("Skaanehensyn", "Ingen løft over 5-10 kg, ingen vrid eller længerevarende foroverbøjet arbejde, mulighed for stillingsskift hvert 30.-45. minut, forudsigelige opgaver uden tidspres, optrapning med højst to timer om ugen ad gangen.")
	answers := []string{
		"Funktionsnedsættelsen skyldes samspillet mellem kroniske lænderygsmerter og en depression i delvis remission. Dårlig søvn og udtrætning er fælles mekanismer; ingen af lidelserne er alene den væsentligste begrænsning.",
		"Ingen løft over 5-10 kg, vekslende arbejdsstillinger, pauser efter behov, forudsigelige opgaver og gradvis optrapning med højst to timer om ugen ad gangen.",
		"Den antidepressive behandling bør fortsætte mindst et år efter bedring. Smertecenterforløbet anbefales gennemført, og søvnen bør behandles som selvstændigt mål. Yderligere rygkirurgisk udredning er ikke indiceret.",
		"God til moderat for en arbejdsevne på 12-15 timer om ugen i skånsomme funktioner inden for et til to år; dårlig for ordinær fuldtidsbeskæftigelse.",
	}
	for i, a := range answers {
		r.el("Svar").attr("spoergsmaal", fmt.Sprint(i+1)).e.SetText(a)
	}
	contact(r.el("Speciallaege"), c.kf).text("AutorisationsID", "4KX7R").text("Organisation", c.kf.Organisation)
	return d
}
