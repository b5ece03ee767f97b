# boxrun — build, install and test.
#
#   make install   build and install boxrun into $(go env GOPATH)/bin
#   make test      vet, unit tests and the real-kernel integration suite (QEMU)
#   make unit      unit tests only (no VM)
#   make soak      the long soak: 1000 runs in each mode of the VM
GO      ?= go
BIN     ?= bin/boxrun
export CGO_ENABLED = 0
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Keep test output to results and summaries; the full log is in test.log.
FILTER  := grep -E --line-buffered '^(--- |    --- FAIL|ok |FAIL|PASS$$|panic:)|passed, [0-9]+ failed|figures: '

.PHONY: all build install test unit vet lint vulncheck integration bench soak clean

# Linters, fetched at a pinned version from the Go module proxy.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0

all: build

build:
	$(GO) build -o $(BIN) ./cmd/boxrun

install:
	$(GO) install ./cmd/boxrun

# The guest scenarios build only with the boxrunguest tag (they run inside
# the VM, started by ./integration); vet them too.
vet:
	$(GO) vet ./...
	$(GO) vet -tags boxrunguest ./integration/guest/

# staticcheck over all code, the guest scenarios included.
lint:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags boxrunguest ./integration/guest/

# Known vulnerabilities in the dependencies. Needs vuln.go.dev, which the
# development and CI machines cannot reach, so make test does not run it.
vulncheck:
	$(GO) run $(GOVULNCHECK) ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /integration)

integration:
	$(GO) test -p 1 -count=1 -timeout 40m -v ./integration/... 2>&1 | tee test.log | $(FILTER)

# -p 1: one package at a time, so that no two emulated guests share the
# host's cores while the scenarios compare wall times.
test: vet lint
	$(GO) test -p 1 -count=1 -timeout 40m -v ./... 2>&1 | tee test.log | $(FILTER)

clean:
	rm -rf bin test.log

# Real-kernel benchmarks (see bench/): prints a table, writes bench/results/latest.json.
bench:
	bench/run.sh

# The long soak (issue 7): 1000 sequential runs and 10 x 10 concurrent ones
# in every mode of the real-kernel VM; make test runs 100.
soak:
	BOXRUN_IT_SOAK=1000 BOXRUN_IT_RUN=TestSoak $(GO) test -p 1 -count=1 -timeout 60m -v -run RealKernel ./integration/ 2>&1 | tee soak.log | $(FILTER)
