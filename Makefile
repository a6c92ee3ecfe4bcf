# Rehabilitation-case gateway. `make run` and `make test` do all set-up on a
# fresh Debian machine (Go >= 1.26.6 and gcc must be there; system packages
# are installed when missing, with apt-get when running as root).

GO        ?= go
BIN       := bin
FUZZTIME  ?= 30s
# Go minimizes every new interesting input for up to 60 s by default, during
# which no new inputs run; keep that short so a brief run still explores.
FUZZMIN   ?= 2s
BENCHTIME ?= 1s
PKGS      := ./...
DEB_PKGS  := libxml2-dev xmlsec1 libxml2-utils pkg-config

.PHONY: all build run test bench lint fuzz deps examples clean help

all: build

help:
	@echo "make run      start gatewayd on embedded defaults (data in var/)"
	@echo "make test     all tests (installs libxml2-dev, xmlsec1, libxml2-utils if missing)"
	@echo "make bench    benchmarks, with figures printed"
	@echo "make lint     go vet + staticcheck (pinned in go.mod, config in staticcheck.conf)"
	@echo "make fuzz     each fuzz target for FUZZTIME (default $(FUZZTIME))"
	@echo "make build    bin/gatewayd and bin/gwctl"
	@echo "make examples regenerate examples/ (signed with the throw-away testdata/pki)"

# deps installs the system packages the build (libxml2 via cgo) and the
# independent checkers in the tests (xmllint, xmlsec1) need.
deps:
	@missing=""; \
	pkg-config --exists libxml-2.0 2>/dev/null || missing="$$missing libxml2-dev pkg-config"; \
	command -v xmllint >/dev/null 2>&1 || missing="$$missing libxml2-utils"; \
	command -v xmlsec1 >/dev/null 2>&1 || missing="$$missing xmlsec1"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	  else \
	    echo "missing system packages; run: sudo apt-get install -y $(DEB_PKGS)"; exit 1; \
	  fi; \
	fi

build: deps
	$(GO) build -o $(BIN)/gatewayd ./cmd/gatewayd
	$(GO) build -o $(BIN)/gwctl ./cmd/gwctl

run: build
	$(BIN)/gatewayd

test: deps
	$(GO) vet $(PKGS)
	$(GO) test -count=1 $(PKGS)

# The end-to-end benchmarks (internal/bench) run a fixed number of pushes:
# 20 typical bundles per run (plus one untimed warm-up), and one 200 MiB
# attachment per run, each to a fresh gatewayd process. Their PostgreSQL and
# MinIO variants need REHABGW_TEST_PG (or the local server) and MinIO
# (REHABGW_TEST_S3, or `scripts/minio.sh install`); they are skipped without.
bench: deps
	$(GO) test -run='^$$' -bench=. -benchmem -benchtime=$(BENCHTIME) -count=5 ./gateway/... | tee bench.out
	$(GO) test -run='^$$' -v -bench='^Benchmark(Ingest|PlainPut|IngestVsPut)$$' -benchmem -benchtime=20x -count=5 ./internal/bench | tee -a bench.out
	$(GO) test -run='^$$' -v -bench='^BenchmarkLargeAttachment$$' -benchmem -benchtime=1x -count=5 -timeout=30m ./internal/bench | tee -a bench.out
	@$(GO) run ./internal/benchreport < bench.out

lint: deps
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

fuzz: deps
	@set -e; for t in \
	  ./gateway/xmlsafe:FuzzCheck \
	  ./gateway/xmlsig:FuzzVerify \
	  ./gateway/bundle:FuzzManifest; do \
	  pkg=$${t%%:*}; fn=$${t##*:}; \
	  echo "== $$pkg $$fn ($(FUZZTIME))"; \
	  $(GO) test -run='^$$' -fuzz="^$$fn$$" -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMIN) $$pkg; \
	done

examples: build
	@for p in forberedelse indstilling henvisning sundhedskoordinator-udtalelse klinisk-funktion-attest; do \
	  case $$p in sundhedskoordinator-udtalelse|klinisk-funktion-attest) who=region-1084;; *) who=kommune-101;; esac; \
	  rm -rf examples/$$p; \
	  $(BIN)/gwctl example --fixed --purpose $$p --out examples/$$p \
	    --cert testdata/pki/$$who.crt --key testdata/pki/$$who.key || exit 1; \
	done

clean:
	rm -rf $(BIN) bench.out
