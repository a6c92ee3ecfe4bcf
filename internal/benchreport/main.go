// Command benchreport reads `go test -bench` output on stdin and prints, for
// each benchmark, the median of its runs (go test -count=N) for every
// reported unit, and the ratios the project's goals are stated in. Shared,
// noisy machines make single runs meaningless; medians and ratios are what
// `make bench` reports.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+(\d+)\s+(.*)$`)

func main() {
	type key struct{ name, unit string }
	vals := map[key][]float64{}
	var order []string
	seen := map[string]bool{}
	var failed, skipped []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	// The reason b.Skip logs is the indented line before "--- SKIP" (go
	// test -v) or after it.
	lastLog, afterSkip := "", false
	for sc.Scan() {
		raw := sc.Text()
		text := strings.TrimSpace(raw)
		indented := text != "" && (strings.HasPrefix(raw, " ") || strings.HasPrefix(raw, "\t"))
		if afterSkip && indented {
			skipped[len(skipped)-1] += ": " + text
		}
		afterSkip = false
		switch {
		case strings.HasPrefix(text, "--- FAIL"), strings.HasPrefix(text, "FAIL\t"), strings.HasPrefix(text, "panic:"):
			failed = append(failed, text)
		case strings.HasPrefix(text, "--- SKIP"):
			name, _, _ := strings.Cut(strings.TrimPrefix(text, "--- SKIP: "), " ")
			if lastLog != "" {
				name += ": " + lastLog
			} else {
				afterSkip = true
			}
			skipped = append(skipped, name)
		}
		if indented {
			lastLog = text
		} else {
			lastLog = ""
		}
		m := line.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		name := m[1]
		if !seen[name] {
			seen[name] = true
			order = append(order, name)
		}
		f := strings.Fields(m[3])
		for i := 0; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			vals[key{name, f[i+1]}] = append(vals[key{name, f[i+1]}], v)
		}
	}
	if len(order) == 0 {
		fmt.Println("benchreport: no benchmark lines on stdin")
		os.Exit(1)
	}
	median := func(xs []float64) float64 {
		s := slices.Clone(xs)
		sort.Float64s(s)
		n := len(s)
		if n%2 == 1 {
			return s[n/2]
		}
		return (s[n/2-1] + s[n/2]) / 2
	}
	fmt.Println()
	fmt.Println("Medians over runs (go test -count):")
	fmt.Printf("%-58s %5s %14s %12s %12s %12s\n", "benchmark", "runs", "time/op", "MB/s", "B/op", "allocs/op")
	med := map[string]float64{}
	for _, n := range order {
		ns := vals[key{n, "ns/op"}]
		med[n] = median(ns)
		cell := func(unit string, format string) string {
			if v, ok := vals[key{n, unit}]; ok {
				return fmt.Sprintf(format, median(v))
			}
			return "-"
		}
		fmt.Printf("%-58s %5d %14s %12s %12s %12s\n", n, len(ns), human(med[n]), cell("MB/s", "%.1f"), cell("B/op", "%.0f"), cell("allocs/op", "%.0f"))
		var units []string
		for k := range vals {
			if k.name == n && !slices.Contains([]string{"ns/op", "MB/s", "B/op", "allocs/op"}, k.unit) {
				units = append(units, k.unit)
			}
		}
		sort.Strings(units)
		for _, u := range units {
			fmt.Printf("    %-54s %s = %.3f\n", "", u, median(vals[key{n, u}]))
		}
	}
	// Ratios: BenchmarkX/a vs BenchmarkX/b pairs named in ratios.
	for _, r := range ratios {
		a, b := med[r[0]], med[r[1]]
		goal, hasGoal := ratioGoals[[2]string{r[0], r[1]}]
		switch {
		case a > 0 && b > 0 && hasGoal:
			fmt.Printf("ratio %s / %s = %.2f  (%s)  goal <= %.2f: %s\n", short(r[0]), short(r[1]), a/b, r[2], goal, verdict(a/b <= goal))
		case a > 0 && b > 0:
			fmt.Printf("ratio %s / %s = %.2f  (%s)\n", short(r[0]), short(r[1]), a/b, r[2])
		case hasGoal && (anyOf(order, family(r[0])) || anyOf(order, family(r[1]))):
			fmt.Printf("ratio %s / %s: not measured (a benchmark is missing or was skipped)  goal <= %.2f: unknown\n", short(r[0]), short(r[1]), goal)
		}
	}
	// Goals on one benchmark's own metric (the median over runs).
	for _, g := range metricGoals {
		xs, ok := vals[key{g.bench, g.unit}]
		switch {
		case ok:
			v := median(xs)
			fmt.Printf("goal %s %s = %.2f  (%s)  goal <= %.0f: %s\n", short(g.bench), g.unit, v, g.what, g.max, verdict(v <= g.max))
		case anyOf(order, g.family):
			fmt.Printf("goal %s %s: not measured (the benchmark is missing or was skipped)  goal <= %.0f: unknown\n", short(g.bench), g.unit, g.max)
		}
	}
	if len(skipped) > 0 {
		fmt.Println()
		for i, l := range skipped {
			if !slices.Contains(skipped[:i], l) { // once, not once per -count run
				fmt.Println("skipped:", l)
			}
		}
	}
	if len(failed) > 0 {
		fmt.Println()
		for _, l := range failed {
			fmt.Println("FAILED:", l)
		}
		os.Exit(1)
	}
}

func verdict(ok bool) string {
	if ok {
		return "goal met"
	}
	return "goal NOT met"
}

// family is a benchmark's top-level name.
func family(name string) string {
	top, _, _ := strings.Cut(name, "/")
	return top
}

// anyOf reports whether a benchmark of the family (a name prefix) ran.
func anyOf(names []string, family string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, family) {
			return true
		}
	}
	return false
}

// ratios lists the comparisons the issues state goals in.
var ratios = [][3]string{
	{"BenchmarkBundleCost/verify+validate/large", "BenchmarkBundleCost/verify+validate/typical", "large bundle cost relative to a typical one"},
	{"BenchmarkBundleCost/sign/typical", "BenchmarkBundleCost/verify-signature/typical", "signing relative to verifying a manifest"},
	{"BenchmarkIngest/tcp/sqlite", "BenchmarkPlainPut/embedded", "unpaired, informational: the medians are taken minutes apart; the goal is judged on BenchmarkIngestVsPut"},
	{"BenchmarkIngest/tcp/postgres", "BenchmarkPlainPut/minio", "unpaired, informational: the medians are taken minutes apart; the goal is judged on BenchmarkIngestVsPut"},
}

// ratioGoals are the upper bounds the issues set on some ratios.
var ratioGoals = map[[2]string]float64{}

// metricGoals are upper bounds on one benchmark's reported metric; family
// names the benchmarks whose presence means the metric should be there.
var metricGoals = []struct {
	bench, unit, family, what string
	max                       float64
}{
	{"BenchmarkIngestVsPut/sqlite+embedded", "ratio", "BenchmarkIngestVsPut", "full ingest over a plain PutObject of the same bytes to the same S3 server (paired)", 2},
	{"BenchmarkIngestVsPut/postgres+minio", "ratio", "BenchmarkIngestVsPut", "full ingest over a plain PutObject of the same bytes to the same S3 server (paired)", 2},
	{"BenchmarkLargeAttachment/embedded", "peak-rss-growth-MB", "BenchmarkLargeAttachment", "gatewayd's peak RSS growth in one 200 MiB push", 64},
	{"BenchmarkLargeAttachment/postgres", "peak-rss-growth-MB", "BenchmarkLargeAttachment", "gatewayd's peak RSS growth in one 200 MiB push", 64},
}

func short(s string) string { return strings.TrimPrefix(s, "Benchmark") }

func human(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2fs", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2fms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}
