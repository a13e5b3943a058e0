// Package nsroot carries out a plan (package spec): a new mount namespace,
// the view assembled on a tmpfs, the root switch, the caller's credentials,
// the working directory and the exec. It is the only package of chos that
// makes namespace, mount, root and credential system calls; what to mount
// and why is decided elsewhere (packages plan and launch), as data. What
// only the launch that builds a view may read (an image's entries, the
// devices' specs) is a step it has expanded first, by spec.ExpandEntries
// and devices.Complete. It prints nothing: what the person launching should know comes back as
// notes (spec.Note), for the entry path to show.
package nsroot
