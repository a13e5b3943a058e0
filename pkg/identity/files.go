package identity

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// parsePasswd reads one passwd line (name:pw:uid:gid:gecos:home:shell).
// Compat-mode lines (+name, -name) are NIS references, not entries.
func parsePasswd(line string) (User, bool) {
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] == "" || strings.HasPrefix(f[0], "+") || strings.HasPrefix(f[0], "-") {
		return User{}, false
	}
	uid, err1 := strconv.Atoi(f[2])
	gid, err2 := strconv.Atoi(f[3])
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return User{}, false
	}
	return User{Name: f[0], UID: uid, GID: gid, Gecos: f[4], Home: f[5], Shell: f[6]}, true
}

// parseGroup reads one group line (name:pw:gid:member,member).
func parseGroup(line string) (Group, bool) {
	f := strings.Split(line, ":")
	if len(f) != 4 || f[0] == "" || strings.HasPrefix(f[0], "+") || strings.HasPrefix(f[0], "-") {
		return Group{}, false
	}
	gid, err := strconv.Atoi(f[2])
	if err != nil || gid < 0 {
		return Group{}, false
	}
	g := Group{Name: f[0], GID: gid}
	if f[3] != "" {
		g.Members = strings.Split(f[3], ",")
	}
	return g, true
}

func scanPasswd(file string, match func(User) bool) (User, bool) {
	var found User
	ok := scanLines(file, func(l string) bool {
		u, valid := parsePasswd(l)
		if valid && match(u) {
			found = u
			return true
		}
		return false
	})
	return found, ok
}

func scanGroup(file string, match func(Group) bool) (Group, bool) {
	var found Group
	ok := scanLines(file, func(l string) bool {
		g, valid := parseGroup(l)
		if valid && match(g) {
			found = g
			return true
		}
		return false
	})
	return found, ok
}

// scanLines calls stop on each line until it says true.
func scanLines(file string, stop func(string) bool) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20) // group lines of big groups are long
	for sc.Scan() {
		if stop(sc.Text()) {
			return true
		}
	}
	return false
}

// ListsFiles says whether an nsswitch.conf (its content) has glibc read
// the files for db: listed, or no line for db, or no file at all.
func ListsFiles(conf []byte, db string) bool {
	for _, line := range strings.Split(string(conf), "\n") {
		line, _, _ = strings.Cut(line, "#")
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != db {
			continue
		}
		for _, src := range strings.Fields(v) {
			if src == "files" || src == "compat" {
				return true
			}
		}
		return len(strings.Fields(v)) == 0
	}
	return true
}

// filesFirst says whether nsswitch.conf lists the files first for db
// (passwd or group): then an entry found there is what NSS would answer.
// Without an nsswitch.conf glibc reads the files first too.
func (r *Resolver) filesFirst(db string) bool {
	data, err := os.ReadFile(r.NSSwitch)
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(data), "\n") {
		line, _, _ = strings.Cut(line, "#")
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) != db {
			continue
		}
		srcs := strings.Fields(v)
		return len(srcs) == 0 || srcs[0] == "files" || srcs[0] == "compat"
	}
	return true
}
