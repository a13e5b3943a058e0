# Makefile for chos (GNU make).
#
#   make                 build bin/chos and bin/chos-cdi, and the PAM module and Slurm plugin where their headers are installed
#   make pam             build bin/pam_chos.so (needs libpam0g-dev / pam-devel)
#   make spank           build bin/chos_spank.so (needs libslurm-dev / slurm-devel)
#   make install         install (as root: setuid root) under $(DESTDIR)$(PREFIX)
#   make test            vet, unit tests, fuzz smoke run, integration tests (root)
#   make test-integration  the integration tests alone (RUN=regexp: only those)
#   make test-trees      as root: build (once per machine) the Debian trees the tests share
#   make demo            as root on Debian/Ubuntu: build a busybox tree and run chos in it
#   make bench           as root on Debian/Ubuntu: benchmark against bwrap & co, write docs/PERFORMANCE.md
#   make deb             Debian packages chos, libpam-chos, slurm-chos-plugin in build/deb
#   make rpm             RPM packages chos, chos-pam, chos-slurm (chos.spec) in build/rpm/RPMS
#
# The configuration directory and the view directory are compiled into the
# binary: SYSCONFDIR (config is $(SYSCONFDIR)/chos) and CHOSROOT. The PAM
# module and the Slurm plugin have the installed chos, $(BINDIR)/chos,
# compiled in.

SHELL := /bin/bash
.SHELLFLAGS := -e -o pipefail -c
.DEFAULT_GOAL := all

PREFIX     ?= /usr/local
DESTDIR    ?=
SYSCONFDIR ?= /etc
CHOSROOT   ?= /chos
CACHEDIR   ?= /run/chos
# Go: the one on PATH, else the official install's (a newcomer's root shell
# may not have /usr/local/go/bin on PATH)
GO         ?= $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go),go)
CC         ?= cc
CFLAGS     ?= -O2 -g

BINDIR  = $(PREFIX)/bin
# The CDI helper (cmd/chos-cdi), which chos runs for launches that ask for
# devices: outside PATH, its path compiled into chos.
LIBEXECDIR ?= $(PREFIX)/libexec
CDIHELPER   = $(LIBEXECDIR)/chos/chos-cdi
MANDIR  = $(PREFIX)/share/man
DOCDIR  = $(PREFIX)/share/doc/chos
# The login profile hooks, for the admin to link into /etc/profile.d (sh) and
# /etc/profile.d or /etc/csh/login.d (csh).
HOOKDIR = $(PREFIX)/share/chos/profile.d
# Shell completion, where each shell looks for it under PREFIX (Debian's zsh
# reads /usr/share/zsh/vendor-completions instead of PREFIX=/usr's
# site-functions; fish reads PREFIX=/usr/local's only through XDG_DATA_DIRS).
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

# The modules go where the system keeps its own, so that PAM configuration
# and plugstack.conf name them as they name any other: the directory of
# pam_unix.so and of Slurm's own plugins (Debian: /usr/lib/<triplet>/security
# and /usr/lib/<triplet>/slurm-wlm). Override for staged or private installs.
PAMDIR   ?= $(patsubst %/,%,$(dir $(firstword $(wildcard /usr/lib/*/security/pam_unix.so /lib/*/security/pam_unix.so /usr/lib64/security/pam_unix.so /lib64/security/pam_unix.so /usr/lib/security/pam_unix.so) $(PREFIX)/lib/security/)))
SPANKDIR ?= $(patsubst %/,%,$(dir $(firstword $(wildcard /usr/lib/*/slurm-wlm/job_container_tmpfs.so /usr/lib64/slurm/job_container_tmpfs.so /usr/lib/slurm/job_container_tmpfs.so) $(PREFIX)/lib/slurm/)))

PAM_H   ?= /usr/include/security/pam_modules.h
SPANK_H ?= /usr/include/slurm/spank.h
HAVE_PAM_H   := $(wildcard $(PAM_H))
HAVE_SPANK_H := $(wildcard $(SPANK_H))
# The modules `make` builds: those whose headers are installed.
MODULES := $(if $(HAVE_PAM_H),pam) $(if $(HAVE_SPANK_H),spank)

ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0-dev)
endif
ifeq ($(strip $(VERSION)),)
VERSION := 0.1.0-dev
endif

BUILDPKG = github.com/chos-hpc/chos/pkg/build
# chos_linkname: chos reads the signal dispositions and mask it was started
# with from the Go runtime, which the linker allows with -checklinkname=0
# (pkg/nsroot/startsig_linkname_linux.go).
GOTAGS   = urfave_cli_no_docs,urfave_cli_no_template,chos_linkname
GO_LDFLAGS = -s -w -checklinkname=0 \
	-X $(BUILDPKG).Version=$(VERSION) \
	-X $(BUILDPKG).SysconfDir=$(SYSCONFDIR) \
	-X $(BUILDPKG).ChosRoot=$(CHOSROOT) \
	-X $(BUILDPKG).CacheDir=$(CACHEDIR) \
	-X $(BUILDPKG).CDIHelper=$(CDIHELPER)

# fuzzing
FUZZTIME  ?= 5m
FUZZFUNC  ?= FuzzParse
FUZZPKG   ?= ./pkg/config
# The fuzz run of make test: a count of executions, not a time (Go 1.26's
# coordinator can fail a timed run at its deadline with nothing found:
# golang/go#75804); about 20 s on a 2-core machine.
FUZZSMOKE ?= 300000x
# output of the integration tests is also kept here
TESTLOG   ?= test-integration.log

.PHONY: all build bin/chos bin/chos-cdi pam spank modules-note install uninstall test test-integration test-trees fuzz bench demo clean deb rpm

all: build

build: bin/chos bin/chos-cdi $(MODULES) modules-note

# Phony on purpose: the go build cache keeps this fast, and a change of
# SYSCONFDIR/CHOSROOT/VERSION always reaches the binary.
bin/chos:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(GOTAGS) -ldflags "$(GO_LDFLAGS)" -o bin/chos ./cmd/chos

# The spec reader: the CNCF CDI library and its YAML decoder live here, so
# that launches without devices never start them.
bin/chos-cdi:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o bin/chos-cdi ./cmd/chos-cdi

# The C shims (PAM module, SPANK plugin): phony for the same reason, as
# $(BINDIR) is compiled in. The SPANK plugin runs only with the Slurm
# release whose headers it was built with.
# (CPPFLAGS, CFLAGS and LDFLAGS from the environment: a distribution's
# hardening flags, as dpkg-buildflags and %optflags give them)
# Both run chos prepare through one client of its protocol (prepare/).
MODULE_CC = $(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -shared -fPIC -Wall -Wextra -Werror -DCHOS_PATH='"$(BINDIR)/chos"' -Iprepare
PREPARE_CLIENT = prepare/prepare_client.c

pam:
	@if [ ! -f $(PAM_H) ]; then echo "make pam: $(PAM_H) not found: install libpam0g-dev (Debian) or pam-devel (RHEL)" >&2; exit 1; fi
	@mkdir -p bin
	$(MODULE_CC) -Wl,--version-script=pam/pam_chos.map -o bin/pam_chos.so pam/pam_chos.c $(PREPARE_CLIENT) -lpam

spank:
	@if [ ! -f $(SPANK_H) ]; then echo "make spank: $(SPANK_H) not found: install libslurm-dev (Debian) or slurm-devel (RHEL)" >&2; exit 1; fi
	@mkdir -p bin
	$(MODULE_CC) -Wl,--version-script=spank/chos_spank.map -o bin/chos_spank.so spank/chos_spank.c $(PREPARE_CLIENT)

# What is not built is said, and never installed stale.
modules-note:
	@$(if $(HAVE_PAM_H),true,rm -f bin/pam_chos.so; echo "note: $(PAM_H) not found: not building the PAM module (install libpam0g-dev, then make pam)")
	@$(if $(HAVE_SPANK_H),true,rm -f bin/chos_spank.so; echo "note: $(SPANK_H) not found: not building the Slurm plugin (install libslurm-dev, then make spank)")

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
	umask 022 && install -d -m 0755 $(DESTDIR)$(dir $(CDIHELPER))
	install -m 0755 bin/chos-cdi $(DESTDIR)$(CDIHELPER)
	umask 022 && install -d -m 0755 $(DESTDIR)$(MANDIR)/man1
	install -m 0644 docs/chos.1 $(DESTDIR)$(MANDIR)/man1/chos.1
	umask 022 && install -d -m 0755 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 docs/pam_chos.8 $(DESTDIR)$(MANDIR)/man8/pam_chos.8
	install -m 0644 docs/chos_spank.8 $(DESTDIR)$(MANDIR)/man8/chos_spank.8
ifneq ($(HAVE_PAM_H),)
	umask 022 && install -d -m 0755 $(DESTDIR)$(PAMDIR)
	install -m 0644 bin/pam_chos.so $(DESTDIR)$(PAMDIR)/pam_chos.so
endif
ifneq ($(HAVE_SPANK_H),)
	umask 022 && install -d -m 0755 $(DESTDIR)$(SPANKDIR)
	install -m 0644 bin/chos_spank.so $(DESTDIR)$(SPANKDIR)/chos_spank.so
endif
	umask 022 && install -d -m 0755 $(DESTDIR)$(HOOKDIR)
	for f in chos.sh chos.csh; do \
		sed 's|/usr/local/bin/chos # make install|$(BINDIR)/chos # make install|' etc/profile.d/$$f >$(DESTDIR)$(HOOKDIR)/$$f; \
		chmod 0644 $(DESTDIR)$(HOOKDIR)/$$f; \
	done
	umask 022 && install -d -m 0755 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0644 etc/completion/chos.bash $(DESTDIR)$(BASHCOMPDIR)/chos
	install -m 0644 etc/completion/_chos $(DESTDIR)$(ZSHCOMPDIR)/_chos
	install -m 0644 etc/completion/chos.fish $(DESTDIR)$(FISHCOMPDIR)/chos.fish
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
	rm -f $(DESTDIR)$(CDIHELPER)
	-rmdir $(DESTDIR)$(dir $(CDIHELPER)) 2>/dev/null
	rm -f $(DESTDIR)$(SPANKDIR)/chos_spank.so
	rm -f $(DESTDIR)$(MANDIR)/man1/chos.1
	rm -f $(DESTDIR)$(MANDIR)/man8/pam_chos.8
	rm -f $(DESTDIR)$(MANDIR)/man8/chos_spank.8
	rm -f $(DESTDIR)$(PAMDIR)/pam_chos.so
	rm -f $(DESTDIR)$(HOOKDIR)/chos.sh $(DESTDIR)$(HOOKDIR)/chos.csh
	rm -f $(DESTDIR)$(BASHCOMPDIR)/chos $(DESTDIR)$(ZSHCOMPDIR)/_chos $(DESTDIR)$(FISHCOMPDIR)/chos.fish
	-rmdir $(DESTDIR)$(HOOKDIR) $(DESTDIR)$(PREFIX)/share/chos 2>/dev/null
	rm -f $(DESTDIR)$(DOCDIR)/chos.example
	-rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null
	@echo "note: left in place: $(DESTDIR)$(SYSCONFDIR)/chos, $(DESTDIR)$(SYSCONFDIR)/chos.d, $(DESTDIR)$(CHOSROOT)"

# Each goal that needs packages installs them first, from the one list in
# scripts/deps (quiet when all are there; as root only).
DEPS = bash scripts/deps

test:
	$(DEPS) test
	$(GO) vet ./...
	$(GO) test -count=1 ./pkg/... ./cmd/...
	$(GO) test -count=1 -tags $(GOTAGS) -ldflags=-checklinkname=0 ./pkg/nsroot
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZSMOKE) ./pkg/config
	$(GO) test -count=1 -p 1 -timeout 30m -v ./test/integration/... 2>&1 | tee $(TESTLOG)

# The integration tests alone, or those RUN matches (go test -run).
RUN ?= .
test-integration:
	$(DEPS) test
	$(GO) test -count=1 -p 1 -timeout 30m -v -run '$(RUN)' ./test/integration/... 2>&1 | tee $(TESTLOG)

# The debootstrapped Debian 11 trees that integration tests share, built once
# per machine under /var/cache/chos-test (scripts/mkdebiantree, one per
# recipe of scripts/recipes; the tests build them themselves when missing or
# when their recipe changed).
test-trees:
	@if [ "$$(id -u)" != 0 ]; then echo "make test-trees: must be run as root" >&2; exit 1; fi
	bash scripts/mkdebiantree
	bash scripts/mkdebiantree --recipe scripts/recipes/bullseye-mpi

fuzz:
	$(GO) test -run '^$$' -fuzz '^$(FUZZFUNC)$$' -fuzztime $(FUZZTIME) $(FUZZPKG)

# As root on Debian/Ubuntu: installs the peers (bubblewrap, ch-run, schroot,
# hyperfine...), builds a Debian 11 tree once under /var/lib/chos-bench,
# measures chos against them and writes docs/PERFORMANCE.md and its plots
# (docs/perf-*.png). The Go micro-benchmarks (go test -bench ./pkg/...) run
# as its last step. BENCH_QUICK=1: a quicker smoke test.
# (bench/run runs `make install`; $(MAKE) is deliberately not named here, as
# for demo)
bench:
	@if [ "$$(id -u)" != 0 ]; then echo "make bench: must be run as root" >&2; exit 1; fi
	$(DEPS) bench
	GO="$(GO)" bash bench/run

# (demo.sh runs `make install`; $(MAKE) is deliberately not named here, so
# that `make -n demo` does not run the script)
demo:
	@if [ "$$(id -u)" != 0 ]; then echo "make demo: must be run as root" >&2; exit 1; fi
	$(DEPS) demo
	GO="$(GO)" bash scripts/demo.sh

# Packages are built from a copy of the working tree (what git would not
# track left out), with the Go toolchain and caches of this make.
PKG_VERSION := 0.1.0
PKG_SOURCES = tar -c --exclude=./.git --exclude=./build --exclude=./bin --exclude=./$(TESTLOG) .
GO_ENV = GO="$$(command -v $(GO))" GOCACHE="$$($(GO) env GOCACHE)" GOMODCACHE="$$($(GO) env GOMODCACHE)" GOTOOLCHAIN=local

# Debian: debian/ (debhelper, dpkg-dev). -d: Go >= 1.26 comes from PATH, not
# from a Debian package. noddebs: no -dbgsym packages.
deb:
	$(DEPS) deb
	rm -rf build/deb && mkdir -p build/deb/chos-$(PKG_VERSION)
	$(PKG_SOURCES) | tar -x -C build/deb/chos-$(PKG_VERSION)
	cd build/deb/chos-$(PKG_VERSION) && $(GO_ENV) VERSION="$(VERSION)" DEB_BUILD_OPTIONS="noddebs $(DEB_BUILD_OPTIONS)" \
		dpkg-buildpackage -b -us -uc -d
	@ls -1 build/deb/*.deb

# RPM: chos.spec. --nodeps: its BuildRequires name EL packages, which a
# Debian machine's rpm database does not know.
rpm:
	$(DEPS) rpm
	rm -rf build/rpm && mkdir -p build/rpm/SOURCES
	$(PKG_SOURCES) --transform 's,^\.,chos-$(PKG_VERSION),' | gzip >build/rpm/SOURCES/chos-$(PKG_VERSION).tar.gz
	N=$$(sed -n 's/^#define SLURM_VERSION_NUMBER //p' $(dir $(SPANK_H))slurm_version.h 2>/dev/null); \
	if [ -n "$$N" ]; then SLURM=$$((N >> 16)).$$(printf %02d $$(((N >> 8) & 255))); NEXT=$$((N >> 16)).$$(printf %02d $$((((N >> 8) & 255) + 1))); fi; \
	$(GO_ENV) rpmbuild -bb --nodeps --define "_topdir $(CURDIR)/build/rpm" \
		--define "chos_version $(PKG_VERSION)" --define "chos_gitversion $(VERSION)" --define "go_cmd $$(command -v $(GO))" \
		$${SLURM:+--define "slurm_version $$SLURM" --define "slurm_next $$NEXT"} chos.spec
	@find build/rpm/RPMS -name '*.rpm'

clean:
	rm -rf bin build
	rm -f $(TESTLOG)
