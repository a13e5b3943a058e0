package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

type passwdEntry struct{ name, home, shell string }

// lookupPasswd finds a uid in a passwd file. os/user cannot be used for the
// shell, and a static binary reads the files anyway.
func lookupPasswd(file string, uid int) (passwdEntry, bool) {
	f, err := os.Open(file)
	if err != nil {
		return passwdEntry{}, false
	}
	defer f.Close()
	want := strconv.Itoa(uid)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) == 7 && fields[2] == want {
			return passwdEntry{name: fields[0], home: fields[5], shell: fields[6]}, true
		}
	}
	return passwdEntry{}, false
}

// groupNames maps gids to names from a group file.
func groupNames(file string) map[int]string {
	names := map[int]string{}
	f, err := os.Open(file)
	if err != nil {
		return names
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 {
			if gid, err := strconv.Atoi(fields[2]); err == nil {
				names[gid] = fields[0]
			}
		}
	}
	return names
}
