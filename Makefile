# Makefile for chos (GNU make).
#
#   make                 build bin/chos, and bin/pam_chos.so where the PAM headers are installed
#   make pam             build bin/pam_chos.so (needs libpam0g-dev / pam-devel)
#   make install         install (as root: setuid root) under $(DESTDIR)$(PREFIX)
#   make test            vet, unit tests, fuzz smoke run, integration tests (root)
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
CC         ?= cc
CFLAGS     ?= -O2 -g

BINDIR  = $(PREFIX)/bin
MANDIR  = $(PREFIX)/share/man
DOCDIR  = $(PREFIX)/share/doc/chos
# PAM configuration names a module outside the system's module directory by
# its absolute path (pam_chos(8)).
PAMDIR ?= $(PREFIX)/lib/security
# The login profile hooks, for the admin to link into /etc/profile.d (sh) and
# /etc/profile.d or /etc/csh/login.d (csh).
HOOKDIR = $(PREFIX)/share/chos/profile.d

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

.PHONY: all build bin/chos pam pam-if-headers install uninstall test fuzz bench demo clean

all: build

build: bin/chos pam-if-headers

# Phony on purpose: the go build cache keeps this fast, and a change of
# SYSCONFDIR/CHOSROOT/VERSION always reaches the binary.
bin/chos:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -tags urfave_cli_no_docs -ldflags "$(LDFLAGS)" -o bin/chos ./cmd/chos

# The PAM session module: C, as it is loaded into sshd, su and login. It
# runs $(BINDIR)/chos unless its chos= option says otherwise.
PAM_CHECK = printf '\#include <security/pam_modules.h>\n' | $(CC) -E -x c - >/dev/null 2>&1
PAM_BUILD = $(CC) $(CFLAGS) -shared -fPIC -Wall -Wextra -Werror -DCHOS_PATH='"$(BINDIR)/chos"' \
	-Wl,--version-script=pam/pam_chos.map -o bin/pam_chos.so pam/pam_chos.c -lpam

pam:
	@mkdir -p bin
	@$(PAM_CHECK) || { echo "make pam: security/pam_modules.h not found: install libpam0g-dev (Debian) or pam-devel (RHEL)" >&2; exit 1; }
	$(PAM_BUILD)

# `make` builds the module where it can; a stale one is never installed.
pam-if-headers:
	@mkdir -p bin
	$(if $(shell $(PAM_CHECK) && echo yes),$(PAM_BUILD),@rm -f bin/pam_chos.so; \
		echo "note: security/pam_modules.h not found: not building the PAM module (install libpam0g-dev, then make pam)")

# An existing $(SYSCONFDIR)/chos is never touched; a missing one is created
# from the sample (which only declares the host, local:/).
install: build
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
	umask 022 && install -d -m 0755 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 docs/pam_chos.8 $(DESTDIR)$(MANDIR)/man8/pam_chos.8
	@if [ -f bin/pam_chos.so ]; then \
		echo "install -m 0644 bin/pam_chos.so $(DESTDIR)$(PAMDIR)/pam_chos.so"; \
		umask 022 && install -d -m 0755 $(DESTDIR)$(PAMDIR); \
		install -m 0644 bin/pam_chos.so $(DESTDIR)$(PAMDIR)/pam_chos.so; \
	fi
	umask 022 && install -d -m 0755 $(DESTDIR)$(HOOKDIR)
	for f in chos.sh chos.csh; do \
		sed 's|/usr/local/bin/chos # make install|$(BINDIR)/chos # make install|' etc/profile.d/$$f >$(DESTDIR)$(HOOKDIR)/$$f; \
		chmod 0644 $(DESTDIR)$(HOOKDIR)/$$f; \
	done
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
	rm -f $(DESTDIR)$(MANDIR)/man1/chos.1
	rm -f $(DESTDIR)$(MANDIR)/man8/pam_chos.8
	rm -f $(DESTDIR)$(PAMDIR)/pam_chos.so
	rm -f $(DESTDIR)$(HOOKDIR)/chos.sh $(DESTDIR)$(HOOKDIR)/chos.csh
	-rmdir $(DESTDIR)$(HOOKDIR) $(DESTDIR)$(PREFIX)/share/chos 2>/dev/null
	rm -f $(DESTDIR)$(DOCDIR)/chos.example
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "note: left in place: $(DESTDIR)$(SYSCONFDIR)/chos, $(DESTDIR)$(SYSCONFDIR)/chos.d, $(DESTDIR)$(CHOSROOT)"

test:
	$(GO) vet ./...
	$(GO) test -count=1 ./pkg/... ./cmd/...
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 20s ./pkg/config
	$(GO) test -count=1 -p 1 -timeout 30m -v ./test/integration/... 2>&1 | tee $(TESTLOG)

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
