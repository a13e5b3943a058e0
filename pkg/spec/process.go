package spec

// Layer is what a view's /etc/passwd and /etc/group lack of the caller (a
// user known only to a directory service: LDAP, sssd, NIS): the lines
// added, in a mount namespace of this user's own on top of the view, so
// that names resolve in trees without a directory client, and never in
// another user's launch.
type Layer struct {
	UID int
	// Key names the user's layer in the cache: it covers the ids and
	// every line, so that changed groups or names give a new layer.
	Key    string
	Passwd []string // lines added to /etc/passwd
	Group  []string // lines added to /etc/group
}

// Credentials are what the command runs as.
type Credentials struct {
	UID    int
	GID    int
	Groups []int
	// KeepCaps keeps root's capabilities: only for a caller who is root.
	KeepCaps bool
	// KeepBounding leaves the capability bounding set as it is, so that a
	// setuid-root program the command runs gets root's capabilities, as on
	// the host: only in trees whose admin allowed setuid programs.
	KeepBounding bool
	// NoNewPrivs forbids any gain of privilege through exec (setuid, file
	// capabilities) for the command and all its children.
	NoNewPrivs bool
}

// Process is what is applied per process on top of a view and its layer:
// who the command runs as, where, and what it is.
type Process struct {
	Creds Credentials
	// Dir is the working directory; DirFallback are tried in order when it
	// does not exist in the view (login shells only).
	Dir         string
	DirFallback []string
	// DirID, when set, is the caller's working directory itself: Dir in
	// the view must be that very directory (a host directory bound at its
	// own place), not another one of the same name.
	DirID *FileID
	// Path is the program: absolute, or looked up in the PATH of Env inside
	// the view.
	Path string
	Argv []string
	Env  []string
}

// FileID names a file by device and inode.
type FileID struct{ Dev, Ino uint64 }
