# Makefile for chos (GNU make).
#
#   make                 build bin/chos, and bin/chos_spank.so if Slurm's spank.h is installed
#   make spank           build the Slurm SPANK plugin bin/chos_spank.so (needs libslurm-dev)
#   make install         install (as root: setuid root) under $(DESTDIR)$(PREFIX)
#   make test            vet, unit tests, fuzz smoke run, integration tests (root)
#   make test-trees      as root: build (once per machine) the Debian tree the tests share
#   make demo            as root on Debian/Ubuntu: build a busybox tree and run chos in it
#   make bench           as root on Debian/Ubuntu: benchmark against bwrap & co, write docs/PERFORMANCE.md
#
# The configuration directory and the view directory are compiled into the
# binary: SYSCONFDIR (config is $(SYSCONFDIR)/chos) and CHOSROOT.

SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
.DEFAULT_GOAL := all

PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
CHOSROOT   ?= /chos
CACHEDIR   ?= /run/chos
GO         ?= go

BINDIR  = $(PREFIX)/bin
LIBDIR  = $(PREFIX)/lib/chos
MANDIR  = $(PREFIX)/share/man
DOCDIR  = $(PREFIX)/share/doc/chos

ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
endif
ifeq ($(strip $(VERSION)),)
VERSION := 0.1.0-dev
endif

BUILDPKG = github.com/chos-hpc/chos/pkg/build
LDFLAGS  = -s -w \
	-X $(BUILDPKG).Version=$(VERSION) \
	-X $(BUILDPKG).SysconfDir=$(SYSCONFDIR) \
	-X $(BUILDPKG).ChosRoot=$(CHOSROOT) \
	-X $(BUILDPKG).CacheDir=$(CACHEDIR)

# fuzzing
FUZZTIME  ?= 5m
FUZZFUNC  ?= FuzzParse
FUZZPKG   ?= ./pkg/config
# output of the integration tests is also kept here
TESTLOG   ?= test-integration.log

# The SPANK plugin: C, built against the installed Slurm's headers (a plugin
# runs only with the Slurm release it was built for), with the path of the
# installed chos compiled in.
SPANK_H      ?= /usr/include/slurm/spank.h
SPANK_CFLAGS ?= -O2 -g
HAVE_SPANK_H := $(wildcard $(SPANK_H))

.PHONY: all build bin/chos spank spank-note install uninstall test test-trees fuzz bench demo clean

all: build $(if $(HAVE_SPANK_H),spank,spank-note)

build: bin/chos

# Phony on purpose: the go build cache keeps this fast, and a change of
# SYSCONFDIR/CHOSROOT/VERSION always reaches the binary.
bin/chos:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o bin/chos ./cmd/chos

# Phony for the same reason as bin/chos (BINDIR is compiled in).
spank:
	@if [ ! -f $(SPANK_H) ]; then echo "make spank: $(SPANK_H) not found: install libslurm-dev" >&2; exit 1; fi
	@mkdir -p bin
	$(CC) -shared -fPIC -Wall -Wextra -Werror $(SPANK_CFLAGS) -DCHOS_PATH='"$(BINDIR)/chos"' \
		-Wl,--version-script=spank/chos_spank.map -o bin/chos_spank.so spank/chos_spank.c

spank-note:
	@echo "note: $(SPANK_H) not found (libslurm-dev): not building the Slurm plugin"

# An existing $(SYSCONFDIR)/chos is never touched; a missing one is created
# from the sample (which only declares the host, local:/).
install: bin/chos $(if $(HAVE_SPANK_H),spank,spank-note)
	umask 022 && install -d -m 0755 $(DESTDIR)$(BINDIR)
	@if [ "$$(id -u)" = 0 ]; then \
		echo "install -o root -g root -m 4755 bin/chos $(DESTDIR)$(BINDIR)/chos"; \
		install -o root -g root -m 4755 bin/chos $(DESTDIR)$(BINDIR)/chos; \
	else \
		echo "install -m 0755 bin/chos $(DESTDIR)$(BINDIR)/chos"; \
		install -m 0755 bin/chos $(DESTDIR)$(BINDIR)/chos; \
		echo "warning: not running as root: $(DESTDIR)$(BINDIR)/chos is NOT setuid root;" >&2; \
		echo "warning: run 'chown root:root $(DESTDIR)$(BINDIR)/chos && chmod 4755 $(DESTDIR)$(BINDIR)/chos' as root" >&2; \
	fi
	umask 022 && install -d -m 0755 $(DESTDIR)$(MANDIR)/man1
	install -m 0644 docs/chos.1 $(DESTDIR)$(MANDIR)/man1/chos.1
ifneq ($(HAVE_SPANK_H),)
	umask 022 && install -d -m 0755 $(DESTDIR)$(LIBDIR)
	install -m 0755 bin/chos_spank.so $(DESTDIR)$(LIBDIR)/chos_spank.so
endif
	umask 022 && install -d -m 0755 $(DESTDIR)$(DOCDIR)
	install -m 0644 etc/chos.example $(DESTDIR)$(DOCDIR)/chos.example
	umask 022 && install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/chos.d
	umask 022 && install -d -m 0755 $(DESTDIR)$(CHOSROOT)
	@if [ -e "$(DESTDIR)$(SYSCONFDIR)/chos" ] || [ -L "$(DESTDIR)$(SYSCONFDIR)/chos" ]; then \
		echo "keeping existing $(DESTDIR)$(SYSCONFDIR)/chos"; \
	else \
		echo "install -m 0644 etc/chos.example $(DESTDIR)$(SYSCONFDIR)/chos"; \
		install -m 0644 etc/chos.example $(DESTDIR)$(SYSCONFDIR)/chos; \
	fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/chos
	rm -f $(DESTDIR)$(LIBDIR)/chos_spank.so
	-rmdir $(DESTDIR)$(LIBDIR) 2>/dev/null
	rm -f $(DESTDIR)$(MANDIR)/man1/chos.1
	rm -f $(DESTDIR)$(DOCDIR)/chos.example
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "note: left in place: $(DESTDIR)$(SYSCONFDIR)/chos, $(DESTDIR)$(SYSCONFDIR)/chos.d, $(DESTDIR)$(CHOSROOT)"

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./pkg/... ./cmd/...
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20s ./pkg/config
	$(GO) test -count=1 -p 1 -timeout 30m -v ./test/integration/... 2>&1 | tee $(TESTLOG)

# The debootstrapped Debian 11 tree that integration tests share, built once
# per machine under /var/cache/chos-test (scripts/mkdebiantree; the tests
# build it themselves when it is missing or its recipe changed).
test-trees:
	@if [ "$$(id -u)" != 0 ]; then echo "make test-trees: must be run as root" >&2; exit 1; fi
	bash scripts/mkdebiantree

fuzz:
	$(GO) test -run '^$$' -fuzz '^$(FUZZFUNC)$$' -fuzztime $(FUZZTIME) $(FUZZPKG)

# As root on Debian/Ubuntu: installs the peers (bubblewrap, ch-run, schroot,
# hyperfine...), builds a Debian 11 tree once under /var/lib/chos-bench,
# measures chos against them and writes docs/PERFORMANCE.md. The Go
# micro-benchmarks (go test -bench ./pkg/...) run as its last step.
# (bench/run runs `make install`; $(MAKE) is deliberately not named here, as
# for demo)
bench:
	@if [ "$$(id -u)" != 0 ]; then echo "make bench: must be run as root" >&2; exit 1; fi
	GO="$(GO)" bash bench/run

# (demo.sh runs `make install`; $(MAKE) is deliberately not named here, so
# that `make -n demo` does not run the script)
demo:
	@if [ "$$(id -u)" != 0 ]; then echo "make demo: must be run as root" >&2; exit 1; fi
	@if [ ! -x /bin/busybox ]; then \
		echo "+ apt-get install -y --no-install-recommends busybox-static"; \
		export DEBIAN_FRONTEND=noninteractive; \
		if ! apt-get install -y --no-install-recommends busybox-static; then \
			echo "+ apt-get update -qq"; \
			apt-get update -qq; \
			echo "+ apt-get install -y --no-install-recommends busybox-static"; \
			apt-get install -y --no-install-recommends busybox-static; \
		fi; \
	fi
	GO="$(GO)" bash scripts/demo.sh

clean:
	rm -rf bin
	rm -f $(TESTLOG)
