# crproxy's build, tools and tests. `make test` is what CI runs.
SHELL := /usr/bin/env bash
GO ?= go
BIN := $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS := -X github.com/crproxy/crproxy/internal/version.Version=$(VERSION)
# crproxy's binary is static (no cgo: it runs on an empty base) and holds no
# path of the build machine, so two builds of one commit are the same.
BUILD_FLAGS := -trimpath -ldflags "$(LDFLAGS)"
# -race where it fits: the unit tests and the test processes (the clusters
# are separate binaries).
RACE ?= -race
# Per package: the e2e package alone runs about 29 minutes on CI's two
# cores; the bound catches a hang, not a slow run.
TEST_TIMEOUT ?= 45m
TEST_FLAGS ?=

# make soak: 20 target restarts (every 4th cycle kills crproxy instead).
SOAK_FLAGS ?= -soak.target-restarts=20 -soak.restart-interval=15s
# make soak, then: the linearizability check (porcupine) of consistent reads
# for this long, the target restarted every soak.restart-interval.
LINEARIZABILITY_SOAK_FLAGS ?= -soak.linearizability=5m -soak.restart-interval=15s

# make image: the image's name; empty: the Helm chart's default image, its
# values' image.repository and its appVersion. GOARCH=arm64 builds for arm64.
IMAGE ?=
IMAGE_TAG ?=
IMAGE_OUT ?= $(BIN)/image
# The image's created time and its files' mtimes: the commit's time.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

.PHONY: all build tools demo test test-unit test-e2e soak bench bench-plot image vet fmt clean

all: build

## build: build bin/crproxy
build:
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(BIN)/crproxy ./cmd/crproxy

## image: a reproducible OCI image of crproxy, no daemon needed: bin/image/crproxy-oci/ (OCI layout) and bin/image/crproxy.tar (docker load, crane push)
# The binary is for Linux on GOARCH (default: this machine's); the builder
# runs on this machine.
image:
	CGO_ENABLED=0 GOOS=linux $(GO) build $(BUILD_FLAGS) -o $(IMAGE_OUT)/crproxy ./cmd/crproxy
	GOOS=$$($(GO) env GOHOSTOS) GOARCH=$$($(GO) env GOHOSTARCH) $(GO) run ./hack/tools/image \
		-binary $(IMAGE_OUT)/crproxy -out $(IMAGE_OUT) -chart deploy/helm/crproxy \
		-repository "$(IMAGE)" -tag "$(IMAGE_TAG)" \
		-version "$(VERSION)" -revision "$(REVISION)" -epoch "$(SOURCE_DATE_EPOCH)"

## tools: build etcd, kube-apiserver, kube-controller-manager and kubectl from their Go modules into bin/ (no-op when current)
tools:
	hack/build-tools.sh

## demo: build everything, then run a target and two client clusters with crproxy (Ctrl-C stops)
demo: tools build
	@echo "[demo] tools and crproxy are built; starting the demo environment"
	$(BIN)/crproxy dev $(DEMO_FLAGS)

## vet: go vet and a gofmt check
vet:
	@out=$$(gofmt -l cmd internal pkg test hack/tools/image); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## test: everything CI checks: tools, vet, unit and end-to-end tests
test: tools vet build
	$(GO) test $(RACE) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...
	$(MAKE) --no-print-directory test-chart
	$(MAKE) --no-print-directory fuzz

## fuzz: each Go fuzz target of request parsing for FUZZTIME (their seeds also run in every go test); a crash fails and leaves its input in the package's testdata/fuzz
# A count, not a duration: Go 1.26's fuzz coordinator can fail a target
# with "context deadline exceeded" when a -fuzztime duration ends
# (golang/go#75804, fixed in Go 1.27); a count has no deadline.
FUZZTIME ?= 10000x
FUZZ_TARGETS := \
	pkg/server:FuzzParseReadOptions pkg/server:FuzzDecodeContinue \
	pkg/writethrough:FuzzStampJSONPatch pkg/writethrough:FuzzJSONPatchAsMergePatch \
	pkg/writethrough:FuzzStampMergePatch pkg/writethrough:FuzzApplyConfiguration \
	pkg/writethrough:FuzzDecodeObject pkg/writethrough:FuzzDeleteOptions \
	pkg/writethrough:FuzzWritePatch pkg/store:FuzzNewObject
.PHONY: fuzz
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) ./$$pkg; done

## test-chart: render the Helm chart (deploy/helm/crproxy) and apply it to a real apiserver; a module of its own, deploy/helm/test
# No -race here: the test's own code is sequential, and instrumenting Helm
# and its dependencies costs minutes on a cold cache. -mod=mod: the module
# follows crproxy's go.mod, so a dependency added there updates its go.sum
# instead of failing the build.
.PHONY: test-chart
test-chart: tools
	cd deploy/helm/test && out=$$(gofmt -l .) && if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	cd deploy/helm/test && $(GO) vet -mod=mod ./... && $(GO) test -mod=mod -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./...

## test-unit: the tests that need no cluster
test-unit:
	$(GO) test $(RACE) $(TEST_FLAGS) ./pkg/... ./internal/version/... ./internal/cli/...

## test-e2e: the end-to-end tests against real clusters (make tools first)
test-e2e: tools
	$(GO) test $(RACE) -timeout $(TEST_TIMEOUT) $(TEST_FLAGS) ./test/e2e/...

## soak: the reconnection soak test with 20 target restarts (about 15 minutes; prints a summary), then 5 minutes of linearizability check
soak: tools build
	$(GO) test -count=1 -timeout 90m -v ./test/soak -run 'TestSoak$$' $(SOAK_FLAGS)
	$(GO) test -count=1 -timeout 60m -v ./test/soak -run 'TestLinearizabilitySoak$$' $(LINEARIZABILITY_SOAK_FLAGS)

## bench: B1-B6 and B8 of docs/benchmarks.md, crproxy side by side with the target kube-apiserver; one table, bench.json and profiles (about 16 minutes)
BENCH_FLAGS ?= -bench.objects=10000
BENCH_OUT ?= $(CURDIR)/bench-out
bench: tools build
	mkdir -p $(BENCH_OUT)
	CRPROXY_BENCH=1 $(GO) test -count=1 -timeout 90m -v ./test/bench -run TestBench \
		-bench.json=$(BENCH_OUT)/bench.json -bench.profile-dir=$(BENCH_OUT) $(BENCH_FLAGS)

## bench-plot: the PNG plots of docs/benchmarks.md from $(BENCH_OUT)/bench.json
bench-plot:
	cd hack/tools/benchplot && $(GO) run . -in $(BENCH_OUT)/bench.json -out $(CURDIR)/docs/benchmarks

## fmt: format the code
fmt:
	gofmt -w cmd internal pkg test hack/tools/image

## clean: remove what the build and the tests wrote
clean:
	rm -rf $(BIN) .crproxy-dev
