// Package nsroot carries out a plan (package spec): a new mount namespace,
// the view assembled on a tmpfs, the root switch, the caller's credentials,
// the working directory and the exec. It is the only package of chos that
// makes namespace, mount, root and credential system calls; what to mount
// and why is decided elsewhere (packages plan and launch), as data. It
// prints nothing: what the person launching should know comes back as
// notes (spec.Note), for the entry path to show.
package nsroot
