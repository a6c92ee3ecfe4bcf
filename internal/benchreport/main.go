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
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
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
		for k, v := range vals {
			if k.name == n && !slices.Contains([]string{"ns/op", "MB/s", "B/op", "allocs/op"}, k.unit) {
				fmt.Printf("    %-54s %s = %.3f\n", "", k.unit, median(v))
			}
		}
	}
	// Ratios: BenchmarkX/a vs BenchmarkX/b pairs named in ratios.
	for _, r := range ratios {
		a, b := med[r[0]], med[r[1]]
		if a > 0 && b > 0 {
			fmt.Printf("ratio %s / %s = %.2f  (%s)\n", short(r[0]), short(r[1]), a/b, r[2])
		}
	}
}

// ratios lists the comparisons the issues state goals in.
var ratios = [][3]string{
	{"BenchmarkBundleCost/verify+validate/large", "BenchmarkBundleCost/verify+validate/typical", "large bundle cost relative to a typical one"},
	{"BenchmarkBundleCost/sign/typical", "BenchmarkBundleCost/verify-signature/typical", "signing relative to verifying a manifest"},
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
