// Package audit writes chos's audit trail: one syslog line for every launch
// that changes tree, and one for every refusal. It never fails or delays a
// launch: a line is a single non-blocking datagram to the syslog socket,
// sent once; a socket that is missing, full or not read loses the line.
//
// Go's log/syslog is not used: its writes block while the daemon's queue is
// full, and it reconnects and retries on errors.
package audit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// The defaults, when the configuration has no %AUDIT section.
const (
	DefaultFacility = "authpriv"
	DefaultSocket   = "/dev/log"
	// Off as the facility switches audit lines off.
	Off = "off"
	// Ident is the program name of every line (syslog's tag).
	Ident = "chos"
)

// facilities are the syslog facilities an audit line may go to, with their
// codes (RFC 5424, section 6.2.1).
var facilities = map[string]int{
	"user": 1, "daemon": 3, "auth": 4, "authpriv": 10,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// FacilityNames lists the facility names accepted, for error messages.
const FacilityNames = "authpriv, auth, daemon, user, local0 to local7, or off"

// ValidFacility says whether name is a facility name or "off".
func ValidFacility(name string) bool {
	_, ok := facilities[name]
	return ok || name == Off
}

// Severities (RFC 5424): launches are informational, refusals notices.
const (
	severityNotice = 5
	severityInfo   = 6
)

// Event is one launch, or one refusal, as the audit line tells it. Values
// not known are empty (written "-").
type Event struct {
	// Refused is the reason a launch was refused; empty for a launch.
	Refused string
	User    string // the user's name
	UID     int    // the user's real uid
	// Tree is the tree's canonical name; for a refusal of an unknown
	// tree, the name asked for.
	Tree string
	// Selected says how the tree was chosen: argument, env ($CHOS),
	// dotfile (~/.chos), plugin (the integration's default), default
	// (the tree aliased default) or none (no selection: the host).
	Selected string
	Mode     string // setuid or userns: how the tree is entered
	// View is cached (the tree's shared namespace, entered or built),
	// kept (a user-namespace view a process of the user's keeps, joined
	// or built), fresh (a private view built for this launch) or host.
	View string
	// Via is how chos was started: exec, shell, vsys, legacy, pam, slurm.
	Via   string
	Argv0 string // the command's argv[0] (never the environment)
	Argc  int    // the command's number of arguments, argv[0] included
	Cwd   string
	// Devices are the CDI devices the view shows, comma-separated (for a
	// refusal, those asked for); left out of the line when none.
	Devices string
	// Service is the PAM service (pam only); Job the job and step
	// (slurm only). Both are left out of the line when empty.
	Service string
	Job     string
	// Warning is what the user was warned of about the launch itself
	// (the cache could not be used: a private view instead); left out
	// when empty.
	Warning string
}

// Logger sends audit lines to a syslog socket.
type Logger struct {
	facility int // -1: off
	socket   string
	pid      int
	zone     *time.Location
}

// New returns a logger for a facility name (or "off") and a socket path.
func New(facility, socket string) (*Logger, error) {
	l := &Logger{facility: -1, socket: socket, pid: os.Getpid()}
	if facility != Off {
		code, ok := facilities[facility]
		if !ok {
			return nil, fmt.Errorf("unknown syslog facility %q (%s)", facility, FacilityNames)
		}
		l.facility = code
	}
	return l, nil
}

// Enabled says whether the logger writes anything.
func (l *Logger) Enabled() bool { return l != nil && l.facility >= 0 }

// Log writes the event's line. The error says why it was lost (no socket,
// queue full); chos goes on either way.
func (l *Logger) Log(e Event) error {
	if !l.Enabled() {
		return nil
	}
	return send(l.socket, l.line(e, time.Now()))
}

// line is the whole datagram: the traditional BSD syslog header of
// /dev/log (RFC 3164: <PRI>TIMESTAMP TAG[PID]: ) and the message.
func (l *Logger) line(e Event, now time.Time) []byte {
	sev := severityInfo
	if e.Refused != "" {
		sev = severityNotice
	}
	if l.zone == nil {
		l.zone = localZone()
	}
	// (no fmt: every launch logs, and fmt's first use costs a launch dearly)
	return []byte("<" + strconv.Itoa(int(l.facility)*8+int(sev)) + ">" + now.In(l.zone).Format(time.Stamp) + " " +
		Ident + "[" + strconv.Itoa(l.pid) + "]: " + Message(e))
}

// Message is the text of an audit line: the event word, launch or refuse,
// then key=value fields in a fixed order, values quoted (Go syntax) when
// they contain blanks, quotes, '=' or unprintable bytes:
//
//	launch user=alice uid=1000 tree=el7 selected=dotfile mode=setuid view=cached via=exec argv0=make argc=3 cwd=/home/alice/src
//	refuse user=bob uid=1001 tree=el9 selected=env mode=setuid view=- via=exec argv0=ls argc=1 cwd=/tmp reason="unknown OS tree \"el9\" ..."
//
// devices= (CDI devices), service= (pam), job= (slurm) and warning= come
// after cwd when set; reason= is last.
func Message(e Event) string {
	var b strings.Builder
	word := "launch"
	if e.Refused != "" {
		word = "refuse"
	}
	b.WriteString(word)
	field := func(k, v string, max int) {
		b.WriteString(" " + k + "=" + value(v, max))
	}
	field("user", e.User, 64)
	field("uid", strconv.Itoa(e.UID), 0)
	field("tree", e.Tree, 256)
	field("selected", e.Selected, 0)
	field("mode", e.Mode, 0)
	field("view", e.View, 0)
	field("via", e.Via, 0)
	field("argv0", e.Argv0, 256)
	field("argc", strconv.Itoa(e.Argc), 0)
	field("cwd", e.Cwd, 1024)
	if e.Devices != "" {
		field("devices", e.Devices, 1024)
	}
	if e.Service != "" {
		field("service", e.Service, 64)
	}
	if e.Job != "" {
		field("job", e.Job, 64)
	}
	if e.Warning != "" {
		field("warning", e.Warning, 1024)
	}
	if e.Refused != "" {
		field("reason", e.Refused, 1024)
	}
	return b.String()
}

// value renders a field's value: "-" when empty, cut to max bytes (0: no
// limit) with "..." appended, quoted when it needs quotes.
func value(v string, max int) string {
	if v == "" {
		return "-"
	}
	if max > 0 && len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut] + "..."
	}
	for _, r := range v {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r == 0x7f || r == utf8.RuneError || !strconv.IsPrint(r) {
			return strconv.Quote(v)
		}
	}
	return v
}

// localZone is the host's time zone from /etc/localtime: never $TZ, which
// the user of a setuid chos sets.
func localZone() *time.Location {
	data, err := os.ReadFile("/etc/localtime")
	if err != nil {
		return time.UTC
	}
	loc, err := time.LoadLocationFromTZData("Local", data)
	if err != nil {
		return time.UTC
	}
	return loc
}

// send writes one datagram to a unix datagram socket without waiting: a
// full queue (EAGAIN), a missing socket (ENOENT) or one nobody listens on
// (ECONNREFUSED) returns at once. It is not retried.
func send(socket string, msg []byte) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("audit: socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, msg, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, &unix.SockaddrUnix{Name: socket}); err != nil {
		return fmt.Errorf("audit: sending to %s: %w", socket, err)
	}
	return nil
}

// CheckSocket says whether path is a socket a line can be sent to, for
// `chos check`; it sends nothing.
func CheckSocket(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s is not a socket", path)
	}
	return nil
}
