# boxrun — build, install and test.
#
#   make install   build and install boxrun into $(go env GOPATH)/bin
#   make test      vet, unit tests and the real-kernel integration suite (QEMU)
#   make unit      unit tests only (no VM)
#   make soak      the long soak: 1000 runs in each mode of the VM
#   make package   a .deb and an .rpm of boxrun in dist/ (packaging/nfpm.yaml):
#                  the binary, boxrun(1), the bash/zsh/fish completions and
#                  the protect user unit, versioned by packaging/version
GO      ?= go
BIN     ?= bin/boxrun
export CGO_ENABLED = 0
SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
# Keep test output to results and summaries; the full log is in test.log.
FILTER  := grep -E --line-buffered '^(--- |    --- FAIL|ok |FAIL|PASS$$|panic:)|passed, [0-9]+ failed|figures: '

.PHONY: all build install test unit vet lint vulncheck integration bench soak clean package

# The VM tests boot the guests of BOXRUN_IT_GUEST (debian12 when unset) one
# after the other: with both (all) they take twice as long.
TEST_TIMEOUT := $(if $(filter all,$(BOXRUN_IT_GUEST)),80m,40m)

# Linters, fetched at a pinned version from the Go module proxy.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0
# The packager, the same way.
NFPM        := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0

# Where make package puts what it makes; packaging/packaging_test.go sets a
# temporary one on the command line. Not taken from the environment, where
# DIST often names a Debian release (pbuilder's DIST=bookworm).
DIST    := dist

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
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) -v ./integration/... 2>&1 | tee test.log | $(FILTER)

# -p 1: one package at a time, so that no two emulated guests share the
# host's cores while the scenarios compare wall times.
test: vet lint
	$(GO) test -p 1 -count=1 -timeout $(TEST_TIMEOUT) -v ./... 2>&1 | tee test.log | $(FILTER)

clean:
	rm -rf bin test.log dist

# The packages, from one native build: the man page and the completions are
# what the packaged binary itself prints, so the build cannot be for another
# architecture. The version (packaging/version: git describe made valid for
# dpkg and rpm) is linked into the binary with -X main.linkedVersion, so that
# boxrun --version says what dpkg and rpm say; the build info cannot carry
# it (an untagged commit only has a pseudo-version, and -buildvcs may be
# off). SOURCE_DATE_EPOCH, the commit's time, is the time of every file in
# the packages. The units' ExecStart is moved to /usr/bin/boxrun, where the
# packages put the binary. Only what this target makes is removed first.
package:
	rm -rf $(DIST)/files $(DIST)/VERSION $(DIST)/*.deb $(DIST)/*.rpm
	mkdir -p $(DIST)/files
	packaging/version > $(DIST)/VERSION
	$(GO) build -trimpath -ldflags "-X main.linkedVersion=$$(cat $(DIST)/VERSION)" -o $(DIST)/files/boxrun ./cmd/boxrun
	$(DIST)/files/boxrun help --man | gzip -9n > $(DIST)/files/boxrun.1.gz
	$(DIST)/files/boxrun completion bash > $(DIST)/files/boxrun.bash
	$(DIST)/files/boxrun completion zsh > $(DIST)/files/_boxrun
	$(DIST)/files/boxrun completion fish > $(DIST)/files/boxrun.fish
	for u in boxrun-protect boxrun-signals; do \
	  sed 's|^ExecStart=/usr/local/bin/boxrun |ExecStart=/usr/bin/boxrun |' contrib/systemd/$$u.service > $(DIST)/files/$$u.service && \
	  grep -q '^ExecStart=/usr/bin/boxrun ' $(DIST)/files/$$u.service || exit; \
	done
	for p in deb rpm; do \
	  BOXRUN_VERSION=$$(cat $(DIST)/VERSION) BOXRUN_FILES=$(DIST)/files GOARCH=$$($(GO) env GOARCH) \
	  SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct) \
	  $(GO) run $(NFPM) package --config packaging/nfpm.yaml --packager $$p --target $(DIST)/ || exit; \
	done

# Real-kernel benchmarks (see bench/): prints a table, writes bench/results/latest.json.
bench:
	bench/run.sh

# The long soak (issue 7): 1000 sequential runs and 10 x 10 concurrent ones
# in every mode of the real-kernel VM; make test runs 100.
soak:
	BOXRUN_IT_SOAK=1000 BOXRUN_IT_RUN=TestSoak $(GO) test -p 1 -count=1 -timeout 60m -v -run RealKernel ./integration/ 2>&1 | tee soak.log | $(FILTER)
