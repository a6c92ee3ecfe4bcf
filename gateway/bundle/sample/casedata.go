package sample

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// person is a fictional professional of the case.
type person struct {
	Name, Role, Email, Organisation string
}

// caseData is the derived, consistent picture of one case: the timeline is
// anchored on the meeting date, the pronouns and age come from the CPR
// number, and the places from the municipality and region.
type caseData struct {
	p       Params
	meeting time.Time // meeting date, 00:00 UTC
	created time.Time
	first   string // the citizen's first name
	female  bool
	age     int
	rep     *strings.Replacer

	// The timeline.
	sick        time.Time // sygemeldt
	jobafkl     time.Time // jobafklaringsforløb started
	dismissed   time.Time // employment ended
	attestDate  time.Time // LÆ 265
	skDate      time.Time // sundhedskoordinatorens udtalelse
	consultDate time.Time // consultation at klinisk funktion

	jobcenter, kfUnit, skUnit string
	caseworker, sk, kf        person
}

func newCaseData(p Params) *caseData {
	y, mo, d := p.MeetingDate.Date()
	c := &caseData{
		p:       p,
		meeting: time.Date(y, mo, d, 0, 0, 0, 0, time.UTC),
		created: p.Created,
		first:   strings.Fields(p.Name)[0],
		female:  (p.CPR[9]-'0')%2 == 0,
	}
	c.age = ageAt(p.CPR, c.meeting)
	c.sick = c.ymd(-2, time.January, 8)
	c.jobafkl = c.ymd(-2, time.June, 10)
	c.dismissed = c.ymd(-2, time.August, 31)
	c.attestDate = c.meeting.AddDate(0, 0, -42)
	c.skDate = c.meeting.AddDate(0, 0, -4)
	cy, cm, cd := p.Created.Date()
	c.consultDate = time.Date(cy, cm, cd, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -8)

	c.jobcenter = "Jobcenter, " + p.Municipality
	c.kfUnit = "Klinisk Funktion, " + p.Region
	c.skUnit = "Sundhedskoordinatorfunktionen, " + p.Region
	c.caseworker = person{"Louise Bach Nielsen", "Koordinerende sagsbehandler", "louise.bach.nielsen@jobcenter.example", c.jobcenter}
	c.sk = person{"Henrik Vestergaard", "Sundhedskoordinator, speciallæge i almen medicin", "henrik.vestergaard@sundhedskoordinator.example", c.skUnit}
	c.kf = person{"Karen Munk", "Overlæge, speciallæge i samfundsmedicin", "karen.munk@klinisk-funktion.example", c.kfUnit}

	hun, hende, hendes := "hun", "hende", "hendes"
	if !c.female {
		hun, hende, hendes = "han", "ham", "hans"
	}
	pairs := []string{
		"{navn}", c.first,
		"{fulde}", p.Name,
		"{alder}", strconv.Itoa(c.age),
		"{hun}", hun, "{Hun}", capitalise(hun),
		"{hende}", hende,
		"{hendes}", hendes, "{Hendes}", capitalise(hendes),
		"{kommune}", p.Municipality,
		"{region}", p.Region,
		"{laege}", p.GP.Name,
		"{jobcenter}", c.jobcenter,
		"{moede}", danishDate(c.meeting),
		"{attestdato}", danishDate(c.attestDate),
		"{sygemeldt}", danishMonthYear(c.sick),
		"{jobafklaring}", danishMonthYear(c.jobafkl),
		"{afsked}", danishMonthYear(c.dismissed),
	}
	for dy := 0; dy <= 30; dy++ {
		pairs = append(pairs, fmt.Sprintf("{Y-%d}", dy), strconv.Itoa(y-dy))
	}
	c.rep = strings.NewReplacer(pairs...)
	return c
}

// t fills in the case's placeholders.
func (c *caseData) t(s string) string { return c.rep.Replace(s) }

// ymd is a date dy years from the meeting's year.
func (c *caseData) ymd(dy int, m time.Month, d int) time.Time {
	return time.Date(c.meeting.Year()+dy, m, d, 0, 0, 0, 0, time.UTC)
}

// ageAt is the age on day of the person with the CPR number, using the CPR
// register's century rule (digit 7 and the year).
func ageAt(cpr string, day time.Time) int {
	n := func(i int) int { v, _ := strconv.Atoi(cpr[i : i+2]); return v }
	dd, mm, yy := n(0), n(2), n(4)
	century := 1900
	switch d7 := cpr[6] - '0'; {
	case d7 == 4 || d7 == 9:
		if yy <= 36 {
			century = 2000
		}
	case d7 >= 5 && d7 <= 8:
		if yy <= 57 {
			century = 2000
		} else {
			century = 1800
		}
	}
	birth := time.Date(century+yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	age := day.Year() - birth.Year()
	if day.Month() < birth.Month() || (day.Month() == birth.Month() && day.Day() < birth.Day()) {
		age--
	}
	return age
}

var danishMonths = [...]string{"januar", "februar", "marts", "april", "maj", "juni", "juli", "august", "september", "oktober", "november", "december"}

func danishDate(t time.Time) string {
	return fmt.Sprintf("%d. %s %d", t.Day(), danishMonths[t.Month()-1], t.Year())
}

func danishMonthYear(t time.Time) string {
	return fmt.Sprintf("%s %d", danishMonths[t.Month()-1], t.Year())
}

func capitalise(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// formatCPR renders DDMMYY-SSSS.
func formatCPR(cpr string) string { return cpr[:6] + "-" + cpr[6:] }
